"""Per-task cost of a workspace: create, commit, merge, remove; plait against plain git.

For each repository size (default about 5,000 and 50,000 files) the script makes a
repository, then runs the same steps for a few tasks one after another, twice:

- plait: `WorktreeProvider.open` (worktree at the integration tip, files checked
  out), the agent's one-file change, `collect` (commit and every check), the
  `MergeQueue.merge` (merge-tree, commit-tree, compare-and-swap update-ref), and
  `close` (snapshot check, worktree and branch removed);
- git: the plain commands doing the same steps: `git worktree add -b`, the same
  change, `git add -A` + `git commit`, `git merge-tree --write-tree` + `git
  commit-tree` + `git update-ref`, `git worktree remove` + `git branch -D`.

    .venv/bin/python benchmarks/bench_workspace.py [--files 5000 50000] [--tasks 5]
        [--dir DIR] [--quick]

`--dir` puts the repositories on another disk (tmpfs makes checkouts far cheaper).
Prints a table of median seconds per step and writes benchmarks/results/workspace.json.
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
from plait.workspace import WorktreeProvider  # noqa: E402

IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@plait.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@plait.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
FILES_PER_DIR = 100


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
def timed(into: dict[str, list[float]], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    into.setdefault(step, []).append(time.perf_counter() - started)


def agent_change(workspace: Path, task: int) -> None:
    """What the 'agent' does: one new file and one edited file."""
    (workspace / f"task_{task}.txt").write_text(f"task {task}\n")
    edited = workspace / "src" / "d0000" / f"f{task:06d}.py"
    edited.write_text(edited.read_text() + f"# touched by task {task}\n")


async def bench_plait(repo: Path, base: str, tasks: int) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = {}
    gitx = await Git.discover(repo)
    run_id = "bench-plait"
    branch = f"plait/{run_id}"
    await gitx.create_branch(branch, base, force=True)
    provider = WorktreeProvider(gitx, run_id, worktrees_dir=repo / ".git" / "plait" / "worktrees")
    queue = MergeQueue(gitx, branch)
    for task in range(tasks):
        started = time.perf_counter()
        with timed(steps, "create"):
            ws = await provider.open(f"t{task}", 1, await queue.tip())
        agent_change(ws.path, task)
        with timed(steps, "commit"):
            change = await provider.collect(ws, writes=[], message=f"task {task}\n")
        assert change.commit is not None and change.ok, change
        with timed(steps, "merge"):
            merged = await queue.merge(change.commit, message=f"merge task {task}\n")
        assert merged.status == "merged", merged
        with timed(steps, "remove"):
            await provider.close(ws, keep=False)
        steps.setdefault("total", []).append(time.perf_counter() - started)
    return steps


def bench_git(repo: Path, base: str, tasks: int) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = {}
    target = "refs/heads/plain/integration"
    git(repo, "update-ref", target, base)
    root = repo / ".git" / "plain-worktrees"
    for task in range(tasks):
        started = time.perf_counter()
        path = root / f"t{task}"
        branch = f"plain/t{task}"
        with timed(steps, "create"):
            tip = git(repo, "rev-parse", target)
            git(repo, "worktree", "add", "-q", "--no-track", "-b", branch, str(path), tip)
        agent_change(path, task)
        with timed(steps, "commit"):
            git(path, "add", "-A")
            git(path, "commit", "-q", "--no-verify", "-m", f"task {task}")
        with timed(steps, "merge"):
            head = git(path, "rev-parse", "HEAD")
            tree = git(repo, "merge-tree", "--write-tree", tip, head).splitlines()[0]
            commit = git(repo, "commit-tree", tree, "-p", tip, "-p", head, "-m", f"merge {task}")
            git(repo, "update-ref", target, commit, tip)
        with timed(steps, "remove"):
            git(repo, "worktree", "remove", "--force", str(path))
            git(repo, "branch", "-q", "-D", branch)
        steps.setdefault("total", []).append(time.perf_counter() - started)
    return steps


def medians(steps: dict[str, list[float]]) -> dict[str, float]:
    return {name: round(statistics.median(values), 4) for name, values in steps.items()}


def run_size(parent: Path, files: int, tasks: int, say: Callable[[str], None]) -> dict[str, object]:
    repo = parent / f"repo-{files}"
    started = time.perf_counter()
    base = make_repository(repo, files)
    say(f"{files} files: repository made in {time.perf_counter() - started:.1f}s")
    # plain git first, then plait, each on a warm page cache from the same setup
    plain = medians(bench_git(repo, base, tasks))
    ours = medians(asyncio.run(bench_plait(repo, base, tasks)))
    shutil.rmtree(repo)
    return {"files": files, "tasks": tasks, "git": plain, "plait": ours}


def table(rows: list[dict[str, object]]) -> str:
    steps = ("create", "commit", "merge", "remove", "total")
    lines = [
        f"{'files':>7}  {'who':<6}" + "".join(f"{s:>9}" for s in steps),
    ]
    for row in rows:
        for who in ("git", "plait"):
            values = row[who]
            assert isinstance(values, dict)
            lines.append(
                f"{row['files']:>7}  {who:<6}" + "".join(f"{values[s]:>9.3f}" for s in steps)
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to make the repositories")
    parser.add_argument("--quick", action="store_true", help="2,000 files, 3 tasks")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "workspace.json")
    args = parser.parse_args()
    if args.quick:
        args.files, args.tasks = [2000], 3
    os.environ.update(IDENTITY)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "PLAIT_HOME"):
        os.environ.pop(key, None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="plait-bench-ws-", dir=args.dir) as tmp:
        for files in args.files:
            rows.append(run_size(Path(tmp), files, args.tasks, print))
    print("median seconds per task, one task at a time")
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "dir": str(args.dir)}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
