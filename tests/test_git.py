"""plait.git against real git in temporary repositories."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitrepo import GitRepo, git_identity
from plait.errors import GitError, NotARepository
from plait.git import FALLBACK_EMAIL, ZERO_OID, Git, status_paths
from plait.gitrun import scrubbed_env
from test_procsweep import gone


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    return GitRepo.create(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n"})


def test_scrubbed_env_removes_redirecting_variables() -> None:
    base = {
        "PATH": "/bin",
        "GIT_DIR": "/elsewhere/.git",
        "GIT_INDEX_FILE": "/tmp/index",
        "GIT_WORK_TREE": "/elsewhere",
        "GIT_OBJECT_DIRECTORY": "/objs",
        "GIT_COMMON_DIR": "/common",
        "GIT_CEILING_DIRECTORIES": "/",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": "/evil",
        "GIT_TRACE_PACKET": "1",
        "GIT_AUTHOR_NAME": "kept",
    }
    env = scrubbed_env(base)
    assert env == {"PATH": "/bin", "GIT_AUTHOR_NAME": "kept"}


def test_discover_finds_toplevel_and_common_dir(repo: GitRepo) -> None:
    (repo.path / "sub").mkdir()
    git = asyncio.run(Git.discover(repo.path / "sub"))
    assert git.toplevel == repo.path
    assert git.common_dir == repo.path / ".git"


def test_discover_outside_a_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepository):
        asyncio.run(Git.discover(tmp_path))


def test_discover_ignores_inherited_git_dir(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = GitRepo.create(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other.path / ".git"))
    git = asyncio.run(Git.discover(repo.path))
    assert git.toplevel == repo.path


def test_run_raises_git_error_with_stderr(repo: GitRepo) -> None:
    git = Git(repo.path, repo.common_dir)
    with pytest.raises(GitError) as info:
        asyncio.run(git.run("rev-parse", "--verify", "no-such-ref"))
    assert info.value.returncode != 0
    result = asyncio.run(git.run("rev-parse", "--verify", "no-such-ref", check=False))
    assert not result.ok


def test_queries(repo: GitRepo) -> None:
    first = repo.head()
    repo.write("c.txt", "c\n")
    second = repo.commit("c")
    git = Git(repo.path, repo.common_dir)

    async def main() -> None:
        assert await git.rev_parse("HEAD") == second
        assert await git.rev_parse("nope") is None
        assert await git.is_ancestor(first, second)
        assert not await git.is_ancestor(second, first)
        assert await git.branch_exists("main")
        assert not await git.branch_exists("nope")
        assert await git.changed_paths(first, second) == ["c.txt"]
        refs = await git.list_refs("refs/heads/")
        assert refs == {"refs/heads/main": second}
        [main_wt] = await git.worktree_list()
        assert main_wt.path == repo.path and main_wt.branch == "refs/heads/main"

    asyncio.run(main())


def test_update_ref_compare_and_swap(repo: GitRepo) -> None:
    first = repo.head()
    repo.write("c.txt", "c\n")
    second = repo.commit("c")
    git = Git(repo.path, repo.common_dir)

    async def main() -> None:
        ref = "refs/heads/plait/cas"
        assert await git.update_ref(ref, first, ZERO_OID)  # create: must not exist
        assert not await git.update_ref(ref, second, ZERO_OID)  # exists now
        assert await git.update_ref(ref, second, first)
        # a stale expected value loses, and the ref stays where it was
        assert not await git.update_ref(ref, first, first)
        assert await git.rev_parse(ref) == second
        assert not await git.delete_ref(ref, first)
        assert await git.delete_ref(ref, second)
        assert await git.rev_parse(ref) is None
        with pytest.raises(GitError):  # not a CAS loss: a bad object id
            await git.update_ref(ref, "f" * 40)

    asyncio.run(main())


def test_commit_tree_without_identity_uses_fallback(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EMAIL", "")
    git = Git(repo.path, repo.common_dir)

    async def main() -> str:
        tree = await git.rev_parse("HEAD^{tree}")
        assert tree is not None
        return await git.commit_tree(tree, [repo.head()], "message with 'quotes' and $(x)\n")

    commit = asyncio.run(main())
    author = repo.git("log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", commit)
    assert author.startswith(f"plait <{FALLBACK_EMAIL}>|plait <{FALLBACK_EMAIL}>|")
    assert "message with 'quotes' and $(x)" in author


def test_commit_tree_keeps_configured_identity(repo: GitRepo) -> None:
    git = Git(repo.path, repo.common_dir)

    async def main() -> str:
        tree = await git.rev_parse("HEAD^{tree}")
        assert tree is not None
        return await git.commit_tree(tree, [], "root\n")

    commit = asyncio.run(main())
    assert repo.git("log", "-1", "--format=%an", commit).strip() == "Test Author"


def test_merge_tree_clean_and_conflicted(repo: GitRepo) -> None:
    base = repo.head()
    repo.git("checkout", "-q", "-b", "one")
    repo.write("a.txt", "one\n")
    one = repo.commit("one")
    repo.git("checkout", "-q", "-b", "two", base)
    repo.write("a.txt", "two\n")
    two = repo.commit("two")
    repo.git("checkout", "-q", "-b", "three", base)
    repo.write("b.txt", "three\n")
    three = repo.commit("three")
    git = Git(repo.path, repo.common_dir)

    clean = asyncio.run(git.merge_tree(one, three))
    assert clean.clean and clean.conflicts == ()
    assert repo.git("show", f"{clean.tree}:a.txt") == "one\n"
    assert repo.git("show", f"{clean.tree}:b.txt") == "three\n"

    conflict = asyncio.run(git.merge_tree(one, two))
    assert not conflict.clean
    assert conflict.conflicts == ("a.txt",)
    assert "CONFLICT" in conflict.messages and "a.txt" in conflict.messages


def test_hooks_never_run(repo: GitRepo) -> None:
    canary = repo.path.parent / "canary"
    hooks = repo.common_dir / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("reference-transaction", "post-commit", "pre-commit"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\necho {name} >> {canary}\n")
        hook.chmod(0o755)
    # the canary works when git runs hooks normally
    repo.git("-c", "core.hooksPath=" + str(hooks), "update-ref", "refs/heads/probe", "HEAD")
    assert canary.exists()
    canary.unlink()

    git = Git(repo.path, repo.common_dir)

    async def main() -> None:
        head = repo.head()
        assert await git.update_ref("refs/heads/x", head)
        await git.create_branch("y", head)
        await git.delete_refs(["refs/heads/x", "refs/heads/y"])

    asyncio.run(main())
    assert not canary.exists()


def test_write_lock_serialises_writers(repo: GitRepo) -> None:
    git = Git(repo.path, repo.common_dir)
    head = repo.head()

    async def main() -> None:
        await asyncio.gather(*(git.create_branch(f"plait/b{i}", head) for i in range(20)))
        await git.delete_refs([f"refs/heads/plait/b{i}" for i in range(20)])

    asyncio.run(main())
    assert repo.branches("plait/*") == []
    repo.fsck()


def test_status_paths_parses_renames_and_untracked(repo: GitRepo) -> None:
    repo.git("mv", "a.txt", "renamed.txt")
    repo.write("b.txt", "changed\n")
    repo.write("new dir/with space.txt", "n\n")
    git = Git(repo.path, repo.common_dir)
    out = asyncio.run(git.run("status", "--porcelain=v1", "-z", readonly=True)).stdout
    assert sorted(status_paths(out)) == ["a.txt", "b.txt", "new dir/", "renamed.txt"]


# -- how git is started ---------------------------------------------------------------


def test_run_feeds_and_reads_more_than_a_pipe_holds(repo: GitRepo) -> None:
    """A megabyte in on stdin and out on stdout: neither side may block on a full pipe."""
    git = Git(repo.path, repo.common_dir)
    blob = bytes(range(256)) * 4096  # 1 MiB, not valid UTF-8

    async def main() -> tuple[str, bytes]:
        oid = (await git.run("hash-object", "-w", "--stdin", input=blob)).stdout.strip()
        shown = await git.run("cat-file", "blob", oid)
        return oid, shown.stdout.encode("utf-8", "surrogateescape")

    oid, back = asyncio.run(main())
    assert oid == hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    assert back == blob


def test_run_in_a_missing_directory_raises_file_not_found(repo: GitRepo) -> None:
    git = Git(repo.path, repo.common_dir)
    with pytest.raises(FileNotFoundError):
        asyncio.run(git.run("status", cwd=repo.path / "gone"))


def test_run_runs_in_the_directory_given(repo: GitRepo) -> None:
    (repo.path / "sub").mkdir()
    git = Git(repo.path, repo.common_dir)
    shown = asyncio.run(git.run("rev-parse", "--show-prefix", cwd=repo.path / "sub"))
    assert shown.stdout.strip() == "sub/"


async def _start_hanging(git: Git, pid_file: Path, script: str) -> asyncio.Future[Any]:
    """`git <alias>` running `script` (which writes its pid to `pid_file`), once it runs."""
    call = asyncio.ensure_future(git.run("-c", f"alias.hang=!{script}", "hang"))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.02)
    return call


def test_cancelled_run_ends_the_git_command_and_what_it_started(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Cancelling the caller (plait interrupted) leaves no git, nor its children, running."""
    git = Git(repo.path, repo.common_dir)
    pid_file = tmp_path / "pid"

    async def main() -> None:
        call = await _start_hanging(git, pid_file, f"echo $$ > {pid_file}; exec sleep 60")
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 10
    assert gone(int(pid_file.read_text()))  # killed; its parent gone, init reaps it


def test_an_inherited_ignored_sigchld_does_not_turn_failures_into_successes(
    repo: GitRepo,
) -> None:
    """SIGCHLD ignored by whoever started plait (inherited across exec): the kernel would
    reap git itself and every exit code read as 0."""
    script = (
        "import asyncio, signal, sys\n"
        "from pathlib import Path\n"
        "from plait.gitrun import run_git\n"
        "signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "r = asyncio.run(run_git('rev-parse', '-q', '--verify', 'refs/heads/nosuch',"
        " cwd=Path(sys.argv[1]), check=False))\n"
        "print(r.returncode)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(repo.path)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "1", done.stdout + done.stderr


def test_a_cancelled_git_that_ignores_sigterm_does_not_stall_the_loop(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Its SIGKILL comes after the grace period, while the loop goes on running."""
    git = Git(repo.path, repo.common_dir)
    pid_file = tmp_path / "pid"

    async def main() -> float:
        call = await _start_hanging(git, pid_file, f"trap '' TERM; echo $$ > {pid_file}; sleep 30")
        call.cancel()
        longest, last = 0.0, time.monotonic()
        while not call.done():  # the loop's longest pause while git is being stopped
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
        with pytest.raises(asyncio.CancelledError):
            await call
        return longest

    assert asyncio.run(main()) < 0.5
