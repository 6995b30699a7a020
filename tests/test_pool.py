"""The worktree pool against real git: reuse, reset, bounds, crashes, clean, whole runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gitrepo import ISOLATION, GitRepo, git_identity
from plait.branches import integration_branch, task_branch
from plait.git import Git
from plait.merge import MergeQueue
from plait.pool import POOL_DIR, WorktreePool
from plait.workspace import Workspace
from plait.worktrees import WorktreeProvider

RUN = "20261127-120000-ab12"
FILES = {
    ".gitignore": "build/\n*.log\n",
    "README.md": "# demo\n",
    "src/app.py": "x = 1\n",
    "src/same.py": "same = True\n",
    "docs/api.md": "api\n",
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    repo = GitRepo.create(tmp_path / "repo", FILES)
    repo.git("branch", integration_branch(RUN))
    return repo


def provider_for(repo: GitRepo, size: int = 2, run_id: str = RUN) -> WorktreeProvider:
    git = Git(repo.path, repo.common_dir)
    worktrees = repo.common_dir / "plait" / "worktrees"
    pool = WorktreePool(git, worktrees / POOL_DIR, size)
    return WorktreeProvider(git, run_id, worktrees_dir=worktrees, pool=pool)


def pool_of(provider: WorktreeProvider) -> WorktreePool:
    assert provider.pool is not None
    return provider.pool


def agent_git(ws: Path, *args: str) -> str:
    """git as an agent would run it in its workspace (plain git, its own environment)."""
    env = {**os.environ, **ISOLATION}
    done = subprocess.run(["git", *args], cwd=ws, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def on_disk(root: Path) -> set[str]:
    """Every file and symlink under `root` except the `.git` file."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != ".git":
                found.add(rel)
    return found


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


async def finish(provider: WorktreeProvider, ws: Workspace, message: str) -> str | None:
    """collect + merge + close, as a successful attempt ends; the merged tip."""
    change = await provider.collect(ws, writes=(), message=message)
    assert change.ok, change.problems
    tip = None
    if change.commit is not None:
        merged = await MergeQueue(provider.git, integration_branch(RUN)).merge(
            change.commit, message=f"merge {message}"
        )
        assert merged.status == "merged"
        tip = merged.commit
    await provider.close(ws, keep=False)
    return tip


def dirty_everything(path: Path) -> None:
    """What a messy agent leaves that is not committed: untracked, ignored, nested repo."""
    (path / "build").mkdir()
    (path / "build" / "out.bin").write_bytes(b"\0" * 10)
    (path / "debug.log").write_text("secret token\n")
    nested = path / "vendor" / "lib"
    nested.mkdir(parents=True)
    env = {**os.environ, **ISOLATION}
    subprocess.run(["git", "init", "-q", str(nested)], check=True, env=env)
    (nested / "x.txt").write_text("nested\n")
    subprocess.run(["git", "add", "x.txt"], cwd=nested, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=nested, check=True, env=env)


def test_reused_worktree_is_exactly_the_new_start_commit(repo: GitRepo) -> None:
    provider = provider_for(repo)
    user_before = repo.fingerprint()

    async def main() -> None:
        first = await provider.open("api", 1, repo.head())
        (first.path / "docs" / "api.md").write_text("api v2\n")
        (first.path / "docs" / "new.md").write_text("new\n")
        (first.path / "README.md").unlink()
        assert first.git_dir is not None
        # per-worktree git state an agent could leave for the next user
        (first.git_dir / "info").mkdir()
        (first.git_dir / "info" / "sparse-checkout").write_text("docs/\n")
        (first.git_dir / "refs" / "bisect").mkdir(parents=True)
        (first.git_dir / "ORIG_HEAD").write_text(repo.head() + "\n")
        change = await provider.collect(first, writes=(), message="api")
        assert change.ok and change.commit is not None
        queue = MergeQueue(provider.git, integration_branch(RUN))
        merged = await queue.merge(change.commit, message="merge api")
        assert merged.commit is not None
        dirty_everything(first.path)  # after collect: e.g. a process the agent left behind
        await provider.close(first, keep=False)  # snapshot, then parked
        assert len(pool_of(provider)) == 1 and not first.path.exists()
        parked = provider.worktrees_dir / POOL_DIR / first.git_dir.name
        assert parked.is_dir()

        second = await provider.open("ui", 1, merged.commit)
        assert len(pool_of(provider)) == 0
        assert second.path == provider.path_for("ui", 1)
        assert second.git_dir == first.git_dir  # the same worktree, moved
        head = agent_git(second.path, "symbolic-ref", "HEAD").strip()
        assert head == f"refs/heads/{task_branch(RUN, 'ui')}"
        assert agent_git(second.path, "rev-parse", "HEAD").strip() == merged.commit
        status = agent_git(second.path, "status", "--porcelain", "--ignored", "-uall")
        assert status == ""
        tracked = set(agent_git(second.path, "ls-files").split())
        assert on_disk(second.path) == tracked
        assert "README.md" not in tracked and "docs/new.md" in tracked
        assert (second.path / "docs" / "api.md").read_text() == "api v2\n"
        flags = {line[:1] for line in agent_git(second.path, "ls-files", "-v").splitlines()}
        assert flags == {"H"}
        leftovers = {p.name for p in second.git_dir.iterdir()}
        assert leftovers <= {"HEAD", "index", "commondir", "gitdir", "logs"}
        await finish(provider, second, "ui")

    run(main)
    assert repo.fingerprint() == user_before  # the user's checkout never moved
    repo.fsck()


def test_only_files_that_differ_are_rewritten(repo: GitRepo) -> None:
    provider = provider_for(repo)

    async def main() -> None:
        first = await provider.open("a", 1, repo.head())
        assert await finish(provider, first, "nothing") is None  # no change: parked as is
        assert first.git_dir is not None
        parked = provider.worktrees_dir / POOL_DIR / first.git_dir.name
        same, app = (parked / "src" / "same.py").stat(), (parked / "src" / "app.py").stat()
        # the run moves on: another task's merge changes src/app.py only
        repo.git("checkout", "-q", "-b", "other")
        repo.write("src/app.py", "x = 2\n")
        other = repo.commit("other")
        repo.git("checkout", "-q", "main")
        queue = MergeQueue(provider.git, integration_branch(RUN))
        tip = (await queue.merge(other, message="merge other")).commit
        assert tip is not None

        second = await provider.open("b", 1, tip)
        assert second.git_dir == first.git_dir
        now_same = (second.path / "src" / "same.py").stat()
        assert (now_same.st_ino, now_same.st_mtime_ns) == (same.st_ino, same.st_mtime_ns)
        now_app = (second.path / "src" / "app.py").stat()
        assert (now_app.st_ino, now_app.st_mtime_ns) != (app.st_ino, app.st_mtime_ns)
        assert (second.path / "src" / "app.py").read_text() == "x = 2\n"
        await finish(provider, second, "b")

    run(main)


def test_a_forged_index_does_not_carry_a_file_over(repo: GitRepo) -> None:
    """Stat data or flags in the agent's index cannot hide a changed file from the reset."""
    provider = provider_for(repo)

    async def main() -> None:
        first = await provider.open("a", 1, repo.head())
        # same size, same second: only the content tells it apart
        (first.path / "src" / "same.py").write_text("same = Fals\n")
        agent_git(first.path, "update-index", "--assume-unchanged", "src/same.py")
        agent_git(first.path, "update-index", "--skip-worktree", "src/app.py")
        (first.path / "src" / "app.py").write_text("evil = 1\n")
        change = await provider.collect(first, writes=(), message="hidden")
        assert change.commit is None  # git add -A trusted the flags: nothing committed
        await provider.close(first, keep=False)

        second = await provider.open("b", 1, repo.head())
        assert second.git_dir == first.git_dir
        assert (second.path / "src" / "same.py").read_text() == "same = True\n"
        assert (second.path / "src" / "app.py").read_text() == "x = 1\n"
        flags = {line[:1] for line in agent_git(second.path, "ls-files", "-v").splitlines()}
        assert flags == {"H"}
        await provider.close(second, keep=False)

    run(main)


def test_pool_is_bounded_and_failed_attempts_are_kept(repo: GitRepo) -> None:
    provider = provider_for(repo, size=1)

    async def main() -> None:
        base = repo.head()
        a, b, c = [await provider.open(t, 1, base) for t in ("a", "b", "c")]
        await provider.close(a, keep=False)
        await provider.close(b, keep=False)  # no room: removed
        await provider.close(c, keep=True)  # failed: kept for inspection where it is
        assert len(pool_of(provider)) == 1
        assert not b.path.exists() and c.path.is_dir()

    run(main)
    pooled = repo.common_dir / "plait" / "worktrees" / POOL_DIR
    listed = [Path(p) for p in repo.worktrees()[1:]]
    assert sorted(p.parent.name for p in listed) == sorted([POOL_DIR, RUN])
    assert [p for p in listed if p.parent == pooled.resolve()]


def test_uncommitted_work_is_snapshotted_before_pooling(repo: GitRepo) -> None:
    provider = provider_for(repo)

    async def main() -> None:
        ws = await provider.open("a", 1, repo.head())
        (ws.path / "notes.md").write_text("half done\n")  # rate-limited: never collected
        await provider.close(ws, keep=False)
        assert len(pool_of(provider)) == 1

    run(main)
    assert repo.show(f"refs/plait/snapshots/{RUN}/a/1", "notes.md") == "half done\n"


def test_a_killed_runs_pool_is_adopted_and_reset(repo: GitRepo) -> None:
    first = provider_for(repo, size=3)

    async def park() -> list[Path]:
        opened = [await first.open(t, 1, repo.head()) for t in ("a", "b", "c")]
        for ws in opened:
            await first.close(ws, keep=False)
        return [ws.git_dir for ws in opened if ws.git_dir is not None]

    git_dirs = asyncio.run(park())
    assert len(pool_of(first)) == 3
    pool_root = repo.common_dir / "plait" / "worktrees" / POOL_DIR
    # the process dies; something keeps writing into the parked worktrees
    for parked in (pool_root / d.name for d in git_dirs):
        (parked / "src" / "app.py").write_text("tampered\n")
        (parked / "stray.txt").write_text("left over\n")
    (pool_root / "not-a-worktree").mkdir()

    second = provider_for(repo, size=2)  # a new process, a smaller pool

    async def reuse() -> None:
        ws = await second.open("d", 1, repo.head())
        assert ws.git_dir in git_dirs  # adopted, not created
        assert (ws.path / "src" / "app.py").read_text() == "x = 1\n"
        assert not (ws.path / "stray.txt").exists()
        assert agent_git(ws.path, "status", "--porcelain", "--ignored", "-uall") == ""
        assert len(pool_of(second)) == 1  # two adopted, the third removed
        await second.close(ws, keep=False)

    asyncio.run(reuse())
    assert not (pool_root / "not-a-worktree").exists()
    parked = [Path(p) for p in repo.worktrees()[1:]]
    assert len(parked) == 2 and all(p.parent == pool_root.resolve() for p in parked)
    repo.fsck()


def test_a_pool_folder_deleted_by_hand_leaves_no_prunable_worktrees(repo: GitRepo) -> None:
    first = provider_for(repo, size=2)

    async def park() -> None:
        ws = await first.open("a", 1, repo.head())
        await first.close(ws, keep=False)

    asyncio.run(park())
    pool_root = repo.common_dir / "plait" / "worktrees" / POOL_DIR
    subprocess.run(["rm", "-rf", str(pool_root)], check=True)
    assert "prunable" in repo.git("worktree", "list", "--porcelain")

    second = provider_for(repo, size=2)

    async def again() -> None:
        ws = await second.open("b", 1, repo.head())
        await second.close(ws, keep=False)

    asyncio.run(again())
    assert "prunable" not in repo.git("worktree", "list", "--porcelain")


@pytest.mark.parametrize("record", ["kept", "tampered", "missing"])
def test_a_later_run_trusts_only_the_index_its_record_vouches_for(
    repo: GitRepo, record: str
) -> None:
    """A parked worktree outlives its process; the next one rewrites only what differs,
    unless the index copy no longer matches the record written when it was parked."""
    first = provider_for(repo)

    async def park() -> Path:
        ws = await first.open("a", 1, repo.head())
        await first.close(ws, keep=False)
        assert ws.git_dir is not None
        return ws.git_dir

    git_dir = asyncio.run(park())
    pool_root = repo.common_dir / "plait" / "worktrees" / POOL_DIR
    copy = pool_root / ".index" / git_dir.name
    parked = pool_root / git_dir.name
    same, app = (parked / "src" / "same.py").stat(), (parked / "src" / "app.py").stat()
    if record == "tampered":
        copy.write_bytes(copy.read_bytes()[:-1] + b"x")
    elif record == "missing":
        (pool_root / ".index" / f"{git_dir.name}.parked.json").unlink()
    repo.write("src/app.py", "x = 2\n")
    tip = repo.commit("the next run starts here")

    second = provider_for(repo, run_id="20261127-130000-cd34")  # a new process

    async def reuse() -> None:
        ws = await second.open("b", 1, tip)
        assert ws.git_dir == git_dir  # adopted, not created
        now_same = (ws.path / "src" / "same.py").stat()
        kept = (now_same.st_ino, now_same.st_mtime_ns) == (same.st_ino, same.st_mtime_ns)
        assert kept is (record == "kept")  # else every file was written afresh
        now_app = (ws.path / "src" / "app.py").stat()
        assert (now_app.st_ino, now_app.st_mtime_ns) != (app.st_ino, app.st_mtime_ns)
        assert (ws.path / "src" / "app.py").read_text() == "x = 2\n"
        assert agent_git(ws.path, "status", "--porcelain", "--ignored", "-uall") == ""
        await second.close(ws, keep=False)

    asyncio.run(reuse())
    repo.fsck()


def test_clean_empties_the_pool(repo: GitRepo) -> None:
    provider = provider_for(repo)

    async def main() -> None:
        ws = await provider.open("a", 1, repo.head())
        await provider.close(ws, keep=False)
        # `plait clean` builds a provider of its own, without a pool
        git = Git(repo.path, repo.common_dir)
        plain = WorktreeProvider(git, "", worktrees_dir=provider.worktrees_dir)
        report = await plain.clean(None)
        assert len(report.pooled) == 1 and report.worktrees == ()

    run(main)
    assert repo.worktrees() == [str(repo.path)]
    assert not (repo.common_dir / "plait" / "worktrees" / POOL_DIR).exists()


# -- whole runs through the CLI --------------------------------------------------------

AGENT = """\
import os, pathlib, sys
task = sys.argv[1]
ws = pathlib.Path(os.environ["PLAIT_WORKSPACE"])
git_dir = (ws / ".git").read_text().strip()
with open(sys.argv[2], "a") as log:
    log.write(git_dir + "\\n")
leftovers = sorted(p.name for p in ws.iterdir() if p.name.startswith("junk"))
(ws / "out").mkdir(exist_ok=True)
(ws / "out" / f"{task}.txt").write_text(f"{task} saw {leftovers}\\n")
(ws / f"junk-{task}.log").write_text("ignored\\n")
"""


def test_a_run_with_the_pool_ends_like_one_without(tmp_path: Path, repo: GitRepo) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    tasks = {f"t{i}": {"needs": [f"t{i - 2}"]} if i >= 2 else {} for i in range(6)}
    for spec in tasks.values():
        spec.update(agent="a", prompt="go")
    repo.write(".gitignore", "*.log\n")
    repo.commit("ignore logs")
    trees = {}
    for size in ("4", "0"):
        log = tmp_path / f"git-dirs-{size}.txt"
        plan = {
            "version": 1,
            "name": "pool",
            "agents": {
                "a": {
                    "backend": "command",
                    "command": [sys.executable, str(agent), "{task}", str(log)],
                }
            },
            "tasks": tasks,
        }
        (repo.path / "plait.yaml").write_text(json.dumps(plan))  # untracked, like a user's
        before = repo.fingerprint()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
        env.update(PLAIT_HOME=str(tmp_path / f"home-{size}"), PLAIT_POOL_SIZE=size)
        done = subprocess.run(
            [sys.executable, "-m", "plait", "run", "plait.yaml", "-j", "2",
             "--json"],
            cwd=repo.path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        status = json.loads(done.stdout)
        branch = integration_branch(status["run"])
        trees[size] = repo.rev(f"{branch}^{{tree}}")
        for i in range(6):
            assert repo.show(branch, f"out/t{i}.txt") == f"t{i} saw []\n"
        used = log.read_text().splitlines()
        assert len(used) == 6
        if size == "4":
            assert len(set(used)) < 6, "the pool reused no worktree"
        else:
            assert len(set(used)) == 6
        assert repo.fingerprint() == before
        assert repo.branches("plait/tasks/*") == []
        pools = {(tmp_path / f"home-{s}" / "worktrees" / POOL_DIR).resolve() for s in "40"}
        parked = [Path(p).parent for p in repo.worktrees()[1:]]
        assert set(parked) <= pools, parked  # nothing is left but the pool
        mine = parked.count((tmp_path / f"home-{size}" / "worktrees" / POOL_DIR).resolve())
        assert mine == (2 if size == "4" else 0)  # one per job, for the next run
    assert trees["4"] == trees["0"], repo.git("diff", "--stat", trees["4"], trees["0"])


def test_the_next_run_starts_from_the_pool_and_clean_empties_it(
    tmp_path: Path, repo: GitRepo
) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(tmp_path / "home")

    def plait(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "plait", *args], cwd=repo.path, env=env,
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    used: list[list[str]] = []
    for number in (1, 2):
        log = tmp_path / f"git-dirs-{number}.txt"
        plan = {
            "version": 1,
            "name": f"pool-{number}",
            "agents": {
                "a": {
                    "backend": "command",
                    "command": [sys.executable, str(agent), "{task}", str(log)],
                }
            },
            "tasks": {f"r{number}t{i}": {"agent": "a", "prompt": "go"} for i in range(2)},
        }
        (repo.path / "plait.yaml").write_text(json.dumps(plan))
        plait("run", "plait.yaml", "-j", "2", "--json")
        used.append(log.read_text().splitlines())
    assert len(set(used[0])) == 2
    assert set(used[1]) == set(used[0]), "the second run made new worktrees"
    cleaned = plait("clean")
    assert "the 2 worktree(s) parked in the pool" in cleaned.stdout  # not said to be a run's
    assert repo.worktrees() == [str(repo.path)]
    assert not (tmp_path / "home" / "worktrees" / POOL_DIR).exists()
