"""Per-attempt cost of a workspace: ready, commit, merge, release; plait against plain git.

For each repository size (default about 5,000 and 50,000 files, generated with
`git fast-import`) the script runs the same attempts one after another, in four ways,
all in the same run on the same repository, interleaved round by round:

- git: what a user would script: `git worktree add -b` at the integration tip, the
  agent's change, `git add -A` + `git commit`, `git merge --no-ff` in a checkout of
  the integration branch, `git worktree remove` + `git branch -D`;
- plait cold: `WorktreeProvider.open` with no pool (a new worktree each time, its
  files written outside the repository lock), `collect` (commit and every check),
  `MergeQueue.merge` (merge-tree, commit-tree, compare-and-swap update-ref) and
  `close` (snapshot check, worktree and branch removed);
- plait warm: the same with a worktree pool of one: after one cold attempt each
  attempt takes the previous one's worktree, reset to its new start commit;
- plait next run: the same, but each attempt is the first of a new run (a new pool
  object, as a new `plait run` process makes): it adopts what the previous run
  parked and trusts the index copy through the record written at parking;
- sparse: a plain `git worktree add --no-checkout` + `sparse-checkout set --cone`
  of the one folder the agent edits + `read-tree -mu HEAD`; commit and merge as git.

It also times the two ways of moving a checkout to another commit that the pool
could use, `git read-tree -u --reset` and `git checkout -f`, on the same checkout.

    .venv/bin/python benchmarks/bench_workspace.py [--sizes 5000,50000] [--tasks 3]
        [--dir DIR] [--quick]

`--quick`: 5,000 files only. `--dir` puts the repositories on another disk (tmpfs
makes checkouts far cheaper). Prints a table of median seconds per attempt and step
and writes benchmarks/results/workspace.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from plait.git import Git  # noqa: E402
from plait.merge import MergeQueue  # noqa: E402
from plait.pool import POOL_DIR, WorktreePool  # noqa: E402
from plait.worktrees import WorktreeProvider  # noqa: E402

IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@plait.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@plait.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
FILES_PER_DIR = 100
#: The folder every attempt edits (the sparse worktree checks out only this one).
AGENT_DIR = "src/d0000"
STEPS = ("ready", "commit", "merge", "release", "total")
MODES = ("git", "plait cold", "plait warm", "plait next run", "sparse")

Steps = dict[str, list[float]]


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    """Plain git, hooks off like plait's (a fair comparison), output as text."""
    result = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().strip()


def make_repository(path: Path, files: int) -> str:
    """A repository of `files` small files in folders of 100, checked out; its HEAD."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    # fast-import writes the commit without touching the disk file by file
    stream = ["commit refs/heads/main", "committer bench <b@p> 0 +0000", "data 4", "base"]
    for i in range(files):
        body = f"# file {i}\nvalue = {i}\n"
        stream += [
            f"M 644 inline src/d{i // FILES_PER_DIR:04d}/f{i:06d}.py",
            f"data {len(body.encode())}",
            body.rstrip("\n") + "\n",
        ]
    data = "\n".join(stream).encode() + b"\n"
    git(path, "fast-import", "--quiet", stdin=data)
    git(path, "checkout", "-q", "-f", "main")
    return git(path, "rev-parse", "HEAD")


@contextmanager
def timed(into: Steps, step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into.setdefault(step, []).append(time.perf_counter() - started)


def agent_change(workspace: Path, label: str) -> None:
    """What the 'agent' does: one new file and one edited file, in one folder."""
    folder = workspace / AGENT_DIR
    (folder / f"task_{label}.txt").write_text(f"task {label}\n")
    edited = folder / "f000000.py"
    edited.write_text(edited.read_text() + f"# touched by task {label}\n")


class PlaitMode:
    """Attempts through plait's own API; `pool`: reuse the previous attempt's worktree;
    `new_runs`: each attempt with a new pool, adopting what the last one parked."""

    def __init__(self, repo: Path, base: str, *, pool: bool, new_runs: bool = False) -> None:
        self.repo, self.base, self.pool, self.new_runs = repo, base, pool, new_runs
        self.run_id = "bench-next" if new_runs else "bench-warm" if pool else "bench-cold"

    async def setup(self) -> None:
        self.git = await Git.discover(self.repo)
        branch = f"plait/{self.run_id}"
        await self.git.create_branch(branch, self.base, force=True)
        # a folder of its own per mode, so that no mode adopts another's pool
        self.worktrees = self.repo / ".git" / "plait" / f"worktrees-{self.run_id}"
        self._new_provider()
        self.queue = MergeQueue(self.git, branch)
        if self.pool:  # one cold attempt fills the pool; not counted
            await self.attempt("prime", {})

    def _new_provider(self) -> None:
        pool = WorktreePool(self.git, self.worktrees / POOL_DIR, 1) if self.pool else None
        self.parked = pool
        self.provider = WorktreeProvider(
            self.git, self.run_id, worktrees_dir=self.worktrees, pool=self.parked
        )

    async def attempt(self, label: str, steps: Steps) -> None:
        if self.new_runs:
            self._new_provider()  # what a new `plait run` process starts with
        started = time.perf_counter()
        with timed(steps, "ready"):
            ws = await self.provider.open(f"t{label}", 1, await self.queue.tip())
        agent_change(ws.path, f"{self.run_id}-{label}")
        with timed(steps, "commit"):
            change = await self.provider.collect(ws, writes=(), message=f"task {label}\n")
        assert change.commit is not None and change.ok, change
        with timed(steps, "merge"):
            merged = await self.queue.merge(change.commit, message=f"merge task {label}\n")
        assert merged.status == "merged", merged
        with timed(steps, "release"):
            await self.provider.close(ws, keep=False)
        steps.setdefault("total", []).append(time.perf_counter() - started)

    async def teardown(self, steps: Steps) -> None:
        if self.parked is not None:
            with timed(steps, "drain"):
                await self.parked.drain()


class GitMode:
    """The plain commands; the merge is `git merge --no-ff` in the repository's checkout."""

    target = "plain/integration"

    def __init__(self, repo: Path, base: str, *, sparse: bool) -> None:
        self.repo, self.base, self.sparse = repo, base, sparse
        self.who = "sparse" if sparse else "plain"

    async def setup(self) -> None:
        if git(self.repo, "branch", "--show-current") != self.target:
            git(self.repo, "checkout", "-q", "-f", "-B", self.target, self.base)

    async def attempt(self, label: str, steps: Steps) -> None:
        repo = self.repo
        started = time.perf_counter()
        path = repo / ".git" / f"{self.who}-worktrees" / f"t{label}"
        branch = f"{self.who}/t{label}"
        with timed(steps, "ready"):
            tip = git(repo, "rev-parse", self.target)
            if self.sparse:
                git(repo, "worktree", "add", "-q", "--no-checkout", "-b", branch, str(path), tip)
                git(path, "sparse-checkout", "set", "--cone", AGENT_DIR)
                git(path, "read-tree", "-mu", "HEAD")
            else:
                git(repo, "worktree", "add", "-q", "--no-track", "-b", branch, str(path), tip)
        agent_change(path, f"{self.who}-{label}")
        with timed(steps, "commit"):
            git(path, "add", "-A")
            git(path, "commit", "-q", "--no-verify", "-m", f"task {label}")
        with timed(steps, "merge"):
            git(repo, "merge", "-q", "--no-ff", "--no-edit", branch)
        with timed(steps, "release"):
            git(repo, "worktree", "remove", "--force", str(path))
            git(repo, "branch", "-q", "-D", branch)
        steps.setdefault("total", []).append(time.perf_counter() - started)

    async def teardown(self, steps: Steps) -> None:
        pass


async def bench_modes(
    repo: Path, base: str, tasks: int, say: Callable[[str], None]
) -> dict[str, Steps]:
    """Every mode's attempts, interleaved round by round (the disk's mood changes by the
    minute on a shared machine; blocks of one mode would measure that instead)."""
    modes: dict[str, PlaitMode | GitMode] = {
        "git": GitMode(repo, base, sparse=False),
        "plait cold": PlaitMode(repo, base, pool=False),
        "plait warm": PlaitMode(repo, base, pool=True),
        "plait next run": PlaitMode(repo, base, pool=True, new_runs=True),
        "sparse": GitMode(repo, base, sparse=True),
    }
    steps: dict[str, Steps] = {name: {} for name in modes}
    for mode in modes.values():
        await mode.setup()
    names = list(modes)
    for task in range(tasks):
        turn = names[task % len(names) :] + names[: task % len(names)]  # who goes first rotates
        for name in turn:
            await modes[name].attempt(str(task), steps[name])
        say(f"  round {task + 1}/{tasks}: " + ", ".join(
            f"{name} {steps[name]['ready'][-1]:.2f}s" for name in names))  # fmt: skip
    for name, mode in modes.items():
        await mode.teardown(steps[name])
    return steps


def bench_reset_methods(repo: Path, reps: int) -> dict[str, float]:
    """Move the checkout between two commits a few files apart, both ways; medians."""
    one = git(repo, "rev-parse", "HEAD")
    two = git(repo, "rev-parse", "HEAD~1")
    ways: dict[str, Callable[[str], object]] = {
        "read-tree -u --reset": lambda c: git(repo, "read-tree", "-u", "--reset", c),
        "checkout -f": lambda c: git(repo, "checkout", "-q", "-f", "--detach", c),
    }
    out: dict[str, float] = {}
    for name, move in ways.items():
        samples = []
        for rep in range(reps * 2):
            started = time.perf_counter()
            move(two if rep % 2 == 0 else one)
            samples.append(time.perf_counter() - started)
        out[name] = round(statistics.median(samples), 4)
    git(repo, "checkout", "-q", "-f", "--detach", one)
    return out


def medians(steps: Steps) -> dict[str, float]:
    return {name: round(statistics.median(values), 4) for name, values in steps.items()}


def run_size(parent: Path, files: int, tasks: int, say: Callable[[str], None]) -> dict[str, object]:
    repo = parent / f"repo-{files}"
    started = time.perf_counter()
    base = make_repository(repo, files)
    say(f"{files} files: repository made in {time.perf_counter() - started:.1f}s")
    # What `sparse-checkout set` would turn on in the shared config at its first use; on
    # from the start, or plait's guard would see the shared config change mid-attempt.
    git(repo, "config", "core.repositoryFormatVersion", "1")
    git(repo, "config", "extensions.worktreeConfig", "true")
    steps = asyncio.run(bench_modes(repo, base, tasks, say))
    modes = {name: medians(values) for name, values in steps.items()}
    resets = bench_reset_methods(repo, tasks)
    shutil.rmtree(repo)
    plain_ready = modes["git"]["ready"]
    goals = {
        "warm ready < 1 s": modes["plait warm"]["ready"] < 1.0,
        "next run's ready < 1 s": modes["plait next run"]["ready"] < 1.0,
        "cold ready / git worktree add": round(modes["plait cold"]["ready"] / plain_ready, 3),
        "cold ready <= 1.2x git worktree add": modes["plait cold"]["ready"] <= 1.2 * plain_ready,
    }
    return {"files": files, "tasks": tasks, "modes": modes, "reset_methods": resets,
            "goals": goals}  # fmt: skip


def table(rows: list[dict[str, object]]) -> str:
    lines = [f"{'files':>7}  {'mode':<14}" + "".join(f"{s:>9}" for s in STEPS)]
    for row in rows:
        modes = row["modes"]
        assert isinstance(modes, dict)
        for mode in MODES:
            values = modes[mode]
            lines.append(
                f"{row['files']:>7}  {mode:<14}" + "".join(f"{values[s]:>9.3f}" for s in STEPS)
            )
        resets = row["reset_methods"]
        assert isinstance(resets, dict)
        lines.append(
            f"{'':>7}  moving a checkout 2 files: "
            + ", ".join(f"{name} {value:.3f}" for name, value in resets.items())
        )
        lines.append(f"{'':>7}  goals: {json.dumps(row['goals'])}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000", help="file counts, comma-separated")
    parser.add_argument("--tasks", type=int, default=3, help="attempts per mode and size")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the repositories")
    parser.add_argument("--quick", action="store_true", help="5,000 files only")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "workspace.json")
    args = parser.parse_args()
    sizes = [5000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    os.environ.update(IDENTITY)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "PLAIT_HOME"):
        os.environ.pop(key, None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="plait-bench-ws-", dir=args.dir) as tmp:
        for files in sizes:
            rows.append(run_size(Path(tmp), files, args.tasks, print))
    print("median seconds per attempt, one attempt at a time")
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "git": git(HERE, "--version"),
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
        "dir": str(args.dir),
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
