"""The merge queue against real git: clean merges, conflicts, CAS, verify, no hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gitrepo import GitRepo, git_identity
from plait.git import Git
from plait.merge import MergeQueue
from plait.worktrees import WorktreeProvider

BRANCH = "plait/run1"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    repo = GitRepo.create(
        tmp_path / "repo",
        {"shared.txt": "one\ntwo\nthree\n", "a/mod.py": "a = 1\n", "b/mod.py": "b = 1\n"},
    )
    repo.git("branch", BRANCH)
    return repo


def task_commit(repo: GitRepo, name: str, files: dict[str, str], base: str | None = None) -> str:
    """A commit on its own branch from `base` (default: the integration tip), checkout untouched."""
    start = base or repo.head(BRANCH)
    tree_spec = repo.git("ls-tree", "-r", start)
    index = repo.path.parent / f"{name}.index"
    env = {"GIT_INDEX_FILE": str(index)}
    repo.git("read-tree", start, env=env)
    for rel, text in files.items():
        blob = repo.git("hash-object", "-w", "--stdin", input=text).strip()
        repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{rel}", env=env)
    tree = repo.git("write-tree", env=env).strip()
    assert tree_spec  # the start commit has files
    commit = repo.git("commit-tree", tree, "-p", start, "-m", name).strip()
    repo.git("branch", f"task-{name}", commit)
    return commit


def queue_for(repo: GitRepo, **kwargs: object) -> MergeQueue:
    return MergeQueue(Git(repo.path, repo.common_dir), BRANCH, **kwargs)  # type: ignore[arg-type]


def test_clean_merge_of_two_tasks(repo: GitRepo) -> None:
    base = repo.head(BRANCH)
    one = task_commit(repo, "one", {"a/mod.py": "a = 2\n"})
    two = task_commit(repo, "two", {"b/mod.py": "b = 2\n"})
    queue = queue_for(repo)

    async def main() -> None:
        assert await queue.tip() == base
        first = await queue.merge(one, message="merge one\n\nbody")
        assert first.status == "merged" and first.ok and first.commit is not None
        second = await queue.merge(two, message="merge two")
        assert second.status == "merged" and second.commit is not None
        assert await queue.tip() == second.commit

    asyncio.run(main())
    tip = repo.head(BRANCH)
    assert repo.show(tip, "a/mod.py") == "a = 2\n"
    assert repo.show(tip, "b/mod.py") == "b = 2\n"
    # one merge commit per task, first parent the previous tip
    parents = repo.git("log", "--first-parent", "--format=%s|%P", BRANCH).splitlines()
    assert parents[0] == f"merge two|{repo.head(BRANCH + '~1')} {two}"
    assert parents[1].startswith(f"merge one|{base} {one}")
    assert repo.head("HEAD") == repo.head("main")  # the checkout never moved
    repo.fsck()


def test_conflict_names_the_file(repo: GitRepo) -> None:
    one = task_commit(repo, "one", {"shared.txt": "one\nTWO from one\nthree\n"})
    two = task_commit(repo, "two", {"shared.txt": "one\nTWO from two\nthree\n"})
    queue = queue_for(repo)

    async def main() -> None:
        assert (await queue.merge(one, message="one")).status == "merged"
        tip = await queue.tip()
        result = await queue.merge(two, message="two")
        assert result.status == "conflict" and not result.ok
        assert result.conflicts == ("shared.txt",)
        assert result.commit is None
        assert "CONFLICT" in result.output and "shared.txt" in result.output
        assert await queue.tip() == tip  # nothing written

    asyncio.run(main())
    repo.fsck()


def test_already_merged_is_empty(repo: GitRepo) -> None:
    one = task_commit(repo, "one", {"a/mod.py": "a = 3\n"})
    queue = queue_for(repo)

    async def main() -> None:
        merged = await queue.merge(one, message="one")
        again = await queue.merge(one, message="one again")
        assert again.status == "empty" and again.ok and again.commit == merged.commit
        base_result = await queue.merge(repo.head("main"), message="base")
        assert base_result.status == "empty"

    asyncio.run(main())


def test_lost_compare_and_swap_puts_the_branch_back_and_retries(repo: GitRepo) -> None:
    """The queue is the branch's only writer: a commit someone else put there is not
    built on. The branch goes back to the tip the queue knows, and the merge is redone."""
    one = task_commit(repo, "one", {"a/mod.py": "a = 4\n"})
    intruder = task_commit(repo, "intruder", {"b/mod.py": "b = 4\n"})
    queue = queue_for(repo)
    git = queue.git
    real_update = git.update_ref
    calls: list[str] = []
    foreign: list[tuple[str, str]] = []
    git.ledger.on_foreign.append(lambda ref, detail: foreign.append((ref, detail)))

    async def racing_update(ref: str, new: str, old: str | None = None, **kw: str) -> bool:
        if not calls:  # someone else moves the branch just before our swap
            repo.git("update-ref", f"refs/heads/{BRANCH}", intruder)
        calls.append(new)
        return await real_update(ref, new, old, **kw)

    git.update_ref = racing_update  # type: ignore[method-assign]
    base = repo.head(BRANCH)

    async def main() -> None:
        assert await queue.tip() == base  # adopted before anything could move it
        result = await queue.merge(one, message="one")
        assert result.status == "merged"
        # lost swap, the branch put back to the known tip, the merge made again
        assert len(calls) == 3 and calls[1] == base

    asyncio.run(main())
    tip = repo.head(BRANCH)
    assert repo.git("log", "--format=%P", "-1", tip).split() == [base, one]
    assert repo.show(tip, "a/mod.py") == "a = 4\n"
    assert repo.show(tip, "b/mod.py") == repo.show(base, "b/mod.py")  # not the intruder's
    assert [ref for ref, _ in foreign] == [f"refs/heads/{BRANCH}"]
    assert intruder[:12] in foreign[0][1]


def test_tip_refuses_a_branch_moved_by_someone_else(repo: GitRepo) -> None:
    """An agent that points the run's branch at its own commit gets nothing built on it."""
    intruder = task_commit(repo, "intruder", {"evil.txt": "evil\n"})
    queue = queue_for(repo)
    base = repo.head(BRANCH)

    async def main() -> None:
        assert await queue.tip() == base
        repo.git("update-ref", f"refs/heads/{BRANCH}", intruder)
        assert await queue.tip() == base
        assert repo.head(BRANCH) == base
        repo.git("update-ref", "-d", f"refs/heads/{BRANCH}")  # deleted: put back too
        assert await queue.tip() == base
        merged = await queue.merge(task_commit(repo, "ok", {"ok.txt": "ok\n"}), message="ok")
        assert merged.status == "merged"
        assert await queue.tip() == merged.commit  # its own writes are trusted

    asyncio.run(main())
    assert "evil.txt" not in repo.git("ls-tree", "-r", "--name-only", BRANCH)


def test_concurrent_merges_are_serialised(repo: GitRepo) -> None:
    commits = [task_commit(repo, f"t{i}", {f"pkg{i}/f.txt": f"{i}\n"}) for i in range(8)]
    queue = queue_for(repo)

    async def main() -> None:
        results = await asyncio.gather(*(queue.merge(c, message=f"m{c}") for c in commits))
        assert [r.status for r in results] == ["merged"] * 8

    asyncio.run(main())
    files = repo.git("ls-tree", "-r", "--name-only", BRANCH).split()
    assert all(f"pkg{i}/f.txt" in files for i in range(8))
    assert len(repo.git("rev-list", "--first-parent", f"main..{BRANCH}").split()) == 8
    repo.fsck()


def test_verify_each_merge_keeps_only_passing_merges(repo: GitRepo) -> None:
    # the check fails when a/mod.py says "a = bad"
    check = ("/bin/sh", "-c", "grep -q bad a/mod.py && echo 'test failed: bad' && exit 1; exit 0")
    good = task_commit(repo, "good", {"b/mod.py": "b = 5\n"})
    bad = task_commit(repo, "bad", {"a/mod.py": "a = bad\n"})
    queue = queue_for(repo, verify=check, verify_each_merge=True, verify_dir=repo.path.parent / "v")

    async def main() -> None:
        assert (await queue.merge(good, message="good")).status == "merged"
        tip = await queue.tip()
        result = await queue.merge(bad, message="bad")
        assert result.status == "verify_failed" and result.commit is None
        assert "test failed: bad" in result.output
        assert await queue.tip() == tip

    asyncio.run(main())
    assert repo.worktrees() == [str(repo.path)]  # verify worktrees are removed


def test_verify_on_the_tip(repo: GitRepo, tmp_path: Path) -> None:
    one = task_commit(repo, "one", {"a/mod.py": "a = 6\n"})
    check = ("/bin/sh", "-c", "cat a/mod.py; pwd")
    log = tmp_path / "verify.log"
    queue = queue_for(repo, verify=check, verify_dir=tmp_path / "verify")

    async def main() -> None:
        merged = await queue.merge(one, message="one")
        result = await queue.verify(log_file=log)
        assert result.ok and result.commit == merged.commit
        assert "a = 6" in result.output_tail
        assert str(tmp_path / "verify") in result.output_tail  # its own worktree
        assert result.duration_s >= 0 and log.read_text().startswith("a = 6")
        failing = MergeQueue(queue.git, BRANCH, verify=("/bin/sh", "-c", "echo nope; exit 2"))
        bad = await failing.verify()
        assert not bad.ok and "nope" in bad.output_tail

    asyncio.run(main())
    assert repo.worktrees() == [str(repo.path)]


def test_no_hook_runs_during_plait_operations(repo: GitRepo) -> None:
    canary = repo.path.parent / "canary.txt"
    hooks = repo.common_dir / "hooks"
    hooks.mkdir(exist_ok=True)
    names = (
        "pre-commit", "post-commit", "post-merge", "post-checkout", "pre-merge-commit",
        "reference-transaction", "post-rewrite", "commit-msg", "prepare-commit-msg",
    )  # fmt: skip
    for name in names:
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{canary}'\n")
        hook.chmod(0o755)
    repo.git("config", "core.fsmonitor", "false")
    # prove the canary is live: plain git runs it
    repo.git("-c", f"core.hooksPath={hooks}", "commit", "-q", "--allow-empty", "-m", "probe")
    assert canary.exists()
    canary.unlink()
    repo.git("branch", "-f", BRANCH, "HEAD")

    git = Git(repo.path, repo.common_dir)
    provider = WorktreeProvider(git, "run1", worktrees_dir=repo.common_dir / "plait" / "wt")
    queue = MergeQueue(git, BRANCH, verify=("/bin/sh", "-c", "true"), verify_each_merge=True)

    async def main() -> None:
        for name in ("x", "y"):
            ws = await provider.open(name, 1, await queue.tip())
            (ws.path / f"{name}.txt").write_text(name)
            change = await provider.collect(ws, writes=[], message=f"task {name}")
            assert change.ok and change.commit is not None, change
            assert (await queue.merge(change.commit, message=f"merge {name}")).status == "merged"
            await provider.close(ws, keep=False)
        assert (await queue.verify()).ok

    asyncio.run(main())
    assert not canary.exists()
    repo.fsck()


def test_replace_refs_cannot_swap_what_is_merged(repo: GitRepo) -> None:
    honest = task_commit(repo, "honest", {"a/mod.py": "a = 7\n"})
    evil = task_commit(repo, "evil", {"a/mod.py": "import os; os.system('rm -rf ~')\n"})
    repo.git("replace", honest, evil)  # an agent can write refs/replace/ from its worktree
    assert "os.system" in repo.git("show", f"{honest}:a/mod.py")  # plain git is fooled
    queue = queue_for(repo)

    async def main() -> None:
        result = await queue.merge(honest, message="honest")
        assert result.status == "merged"

    asyncio.run(main())
    tip = repo.head(BRANCH)
    assert repo.git("--no-replace-objects", "show", f"{tip}:a/mod.py") == "a = 7\n"
