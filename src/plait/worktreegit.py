"""git on an attempt's worktree, run from outside it: saving its work, removing it.

Every command names the worktree's own git dir (`--git-dir`, `--work-tree`), so an
agent that replaced the worktree's `.git` file cannot redirect plait's git.
Work is recorded with plumbing (`write-tree`, `commit-tree`, `update-ref`): no
hooks, no editor, nothing of the agent's configuration runs. `commit` puts it on
the task branch; `snapshot` keeps uncommitted work under a ref before the worktree
is deleted. Both leave out the files plait's own `copy` and `setup` put there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path

from plait.branches import snapshot_ref
from plait.errors import GitError
from plait.git import Git, status_paths
from plait.gitguard import folder_id
from plait.gitrun import GitResult
from plait.workspace import Workspace

__all__ = [
    "commit",
    "content_digest",
    "found_workspace",
    "git_dir_of",
    "left_out",
    "remove_worktree",
    "run_git",
    "snapshot",
    "stage",
]


def git_dir_of(path: Path, common_dir: Path) -> Path | None:
    """A linked worktree's own git dir, found from git's side (its `.git` may be gone)."""
    wanted = str(path / ".git")
    for gitdir_file in (common_dir / "worktrees").glob("*/gitdir"):
        with contextlib.suppress(OSError):
            if gitdir_file.read_text(encoding="utf-8").strip() == wanted:
                return gitdir_file.parent
    return None


def found_workspace(git: Git, path: Path, head: str | None) -> Workspace:
    """A Workspace for a worktree found on disk (after a crash, or by `clean`)."""
    task, _, attempt = path.name.rpartition("-")
    number = int(attempt) if attempt.isdigit() else 0
    git_dir = git_dir_of(path, git.common_dir)
    return Workspace(task or path.name, number, path, "", head or "", git_dir)


async def run_git(
    git: Git, ws: Workspace, *args: str, check: bool = True, readonly: bool = False,
    env: Mapping[str, str] | None = None, input: bytes | None = None,
) -> GitResult:  # fmt: skip
    """git in the workspace, naming its git dir so a replaced `.git` cannot redirect it."""
    git_dir = ws.git_dir or git_dir_of(ws.path, git.common_dir)
    where = [f"--git-dir={git_dir}", f"--work-tree={ws.path}"] if git_dir else []
    return await git.run(
        *where, *args,
        cwd=ws.path, check=check, readonly=readonly, env=env, input=input,
    )  # fmt: skip


def content_digest(path: Path) -> str:
    """What is at `path` now, in a few bytes: a file's hash, a link's target, or its kind."""
    try:
        info = path.lstat()
    except OSError:
        return "missing"
    if stat.S_ISLNK(info.st_mode):
        return f"link:{os.readlink(path)}"
    if not stat.S_ISREG(info.st_mode):
        return "dir" if stat.S_ISDIR(info.st_mode) else "other"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{info.st_mode & 0o111:o}:{digest.hexdigest()}"


def left_out(ws: Workspace) -> list[str]:
    """The paths plait's own `copy` and `setup` put in `ws` that are still theirs.

    A tracked file setup changed (a lockfile `npm install` rewrote) stays out only
    while it is exactly as setup left it: once the agent edits it, it is the agent's.
    """
    left = dict(ws.setup_left)
    return [p for p in ws.excluded if p not in left or content_digest(ws.path / p) == left[p]]


async def stage(git: Git, ws: Workspace, env: Mapping[str, str] | None = None) -> None:
    """`git add -A`, except the paths plait itself put there (and still owns)."""
    excluded = await _not_ignored(git, ws, left_out(ws))
    if not excluded:
        await run_git(git, ws, "add", "-A", env=env)
        return
    specs = [".", *(f":(exclude,literal){p}" for p in excluded)]
    await run_git(
        git, ws, "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul", env=env,
        input="\0".join(specs).encode("utf-8", errors="surrogateescape"),
    )  # fmt: skip


async def _not_ignored(git: Git, ws: Workspace, paths: list[str]) -> list[str]:
    """`paths` without those git ignores: `add -A` leaves them out anyway, and git
    refuses (exit 1) a pathspec naming an ignored file even to exclude it (the usual
    `copy: [.env.test]` is in .gitignore)."""
    if not paths:
        return []
    found = await run_git(
        git, ws, "check-ignore", "-z", "--stdin", check=False, readonly=True,
        input="\0".join(paths).encode("utf-8", errors="surrogateescape"),
    )  # fmt: skip
    if found.returncode not in (0, 1):
        raise GitError(["check-ignore"], found.returncode, found.stderr)
    ignored = set(found.stdout.split("\0"))
    return [p for p in paths if p not in ignored]


async def commit(git: Git, ws: Workspace, message: str) -> None:
    """Commit the worktree onto the task branch, with plumbing: no hooks, no editor."""
    if ws.git_dir is not None:
        # the agent's git may have been killed mid-command; its lock is stale now
        (ws.git_dir / "index.lock").unlink(missing_ok=True)
    await stage(git, ws)
    staged = await run_git(git, ws, "diff", "--cached", "--quiet", "HEAD", check=False)
    if staged.returncode == 0:
        return
    if staged.returncode != 1:
        raise GitError(["diff", "--cached", "--quiet", "HEAD"], staged.returncode, staged.stderr)
    tree = (await run_git(git, ws, "write-tree")).stdout.strip()
    parent = (await run_git(git, ws, "rev-parse", "HEAD", readonly=True)).stdout.strip()
    made = await git.commit_tree(tree, [parent], message)
    if not await git.update_ref(f"refs/heads/{ws.branch}", made, parent,
                                message=f"plait: {message.splitlines()[0]}"):  # fmt: skip
        raise GitError(["update-ref", ws.branch], 1, "the task branch moved during commit")


async def snapshot(git: Git, ws: Workspace, run_id: str, *, locked: bool = False) -> str | bool:
    """Save uncommitted work in `ws` to its snapshot ref.

    Returns the snapshot ref, True if there was nothing to save, False if
    saving failed (the worktree must then be kept). `locked`: the caller
    holds `Git.write_lock`.
    """
    git_dir = ws.git_dir or git_dir_of(ws.path, git.common_dir)
    if folder_id(ws.path) is None or git_dir is None or not git_dir.is_dir():
        return True  # gone, or a link git would follow out of the worktree: nothing to save
    ws = dataclasses.replace(ws, git_dir=git_dir)
    try:
        status = await run_git(git, ws, "status", "--porcelain=v1", "-z", readonly=True)
        skip = {p.rstrip("/") for p in left_out(ws)}
        if not {p.rstrip("/") for p in status_paths(status.stdout)} - skip:
            return True
        # Stage into a copy of the index (its stat data saves rehashing every file).
        index = git_dir / "plait-snapshot-index"
        if (git_dir / "index").exists():
            shutil.copyfile(git_dir / "index", index)
        env = {"GIT_INDEX_FILE": str(index)}
        await stage(git, ws, env=env)
        tree = (await run_git(git, ws, "write-tree", env=env)).stdout.strip()
        index.unlink(missing_ok=True)
        head = (await run_git(git, ws, "rev-parse", "HEAD", readonly=True)).stdout.strip()
        if await git.rev_parse(f"{head}^{{tree}}") == tree:
            return True
        note = f"plait: uncommitted work of {ws.task_id} attempt {ws.attempt}\n"
        made = await git.commit_tree(tree, [head], note)
        ref = snapshot_ref(run_id, ws.task_id, ws.attempt)
        if locked:
            await git.update_ref_locked(ref, made, message="plait: snapshot")
        else:
            await git.update_ref(ref, made, message="plait: snapshot")
        return ref
    except GitError:
        return False


async def remove_worktree(git: Git, path: Path) -> None:
    """Under the lock: unregister and delete a worktree, even a damaged one."""
    result = await git.run("worktree", "remove", "--force", "--force", str(path),
                           check=False)  # fmt: skip
    if not result.ok:
        if path.exists():
            shutil.rmtree(path)
        await git.run("worktree", "prune")
