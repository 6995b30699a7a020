"""A pool of finished worktrees, reset and handed to the next attempt.

Checking out a large repository is most of what a workspace costs (15-35 s for
`git worktree add` on 50,000 files). A worktree whose attempt finished and whose
work is safe (committed to its task branch, or snapshotted to a ref) is not
removed but parked under `<worktrees>/pool/`; the next attempt takes it, and
only the files that differ between the two start commits are written.

Nothing of the previous user may reach the next one, so a parked worktree is
always reset when it is taken, never when it is parked (a crash can come in
between, and a process the agent left behind can still write to it):

- its own git dir (`<common>/worktrees/<name>`) is emptied of everything but
  `HEAD`, `index`, `commondir` and `gitdir` (per-worktree config, sparse-checkout
  rules, refs, reflogs and lock files go), and `commondir` is written afresh;
- the index is not the agent's: plait keeps a copy of the index its own checkout
  wrote (hash and timestamp held in memory) and puts it back, so stat data the
  agent forged or flags it set (assume-unchanged, skip-worktree) are gone. Any
  file the agent touched no longer matches that stat data and is rewritten;
  without a copy plait can vouch for (say after a crash) the index is deleted
  and every file is written;
- `git checkout -f` moves the files to the new start commit and `git clean -ffdx`
  removes untracked and ignored files, nested repositories too.

The pool is bounded; a worktree that finds no room is removed as before. It
outlives the run, so the next run's first attempts skip the checkout too: on
first use a pool adopts what an earlier run (ended or killed) left parked, up to
its size, and removes the rest; `drain` (`plait clean`) empties it. An index copy
is trusted across runs only through the record written when its worktree was
parked (hash and timestamp, beside the copy); a copy that no longer matches its
record, or has none, is not used, and every file of that worktree is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from plait.errors import GitError
from plait.git import Git
from plait.gitrun import GitResult

__all__ = ["POOL_DIR", "POOL_SIZE_ENV", "WorktreePool", "pool_size"]

#: The pool's folder, inside the worktrees folder.
POOL_DIR = "pool"

#: Overrides the pool size (default: the run's jobs); 0 turns the pool off.
POOL_SIZE_ENV = "PLAIT_POOL_SIZE"

#: What a parked worktree's own git dir keeps; the rest was its previous user's.
KEPT_GIT_FILES = frozenset({"HEAD", "index", "commondir", "gitdir"})

#: Where plait keeps the index copies it can vouch for, inside the pool folder.
INDEX_COPIES = ".index"

#: Beside an index copy: what it was when its worktree was parked, for the next run.
RECORD_SUFFIX = ".parked.json"

#: `make_room(path, branch)`: clear a stale worktree at `path` and free `branch`
#: (the provider's, called with `Git.write_lock` held).
MakeRoom = Callable[[Path, str], Awaitable[None]]


def pool_size(jobs: int) -> int:
    """How many finished worktrees a run keeps for reuse: `jobs`, or PLAIT_POOL_SIZE."""
    configured = os.environ.get(POOL_SIZE_ENV, "").strip()
    if configured.isdigit():
        return int(configured)
    return max(jobs, 0)


@dataclass(frozen=True)
class _Trusted:
    """An index plait's own checkout wrote: where its copy is, and what it was."""

    copy: Path
    sha256: str
    mtime_ns: int  # the index file's time: git re-reads files as new as this


@dataclass(frozen=True)
class _Parked:
    path: Path  # under the pool folder
    git_dir: Path  # <common>/worktrees/<name>
    trusted: _Trusted | None  # None: rewrite every file on reuse


class WorktreePool:
    """Finished worktrees kept for reuse, at most `size` of them, under `root`."""

    def __init__(self, git: Git, root: Path, size: int) -> None:
        self.git = git
        self.root = root.resolve()  # git reports real paths
        self.size = size
        self._parked: list[_Parked] = []
        self._trusted: dict[str, _Trusted] = {}  # by git dir name, for open worktrees
        self._adopted = False
        self._adopting = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._parked)

    async def remember(self, git_dir: Path) -> None:
        """Keep a copy of the index plait's checkout just wrote (call before any agent runs)."""
        if self.size <= 0:
            return
        copy = self.root / INDEX_COPIES / git_dir.name
        trusted = await asyncio.to_thread(_copy_index, git_dir / "index", copy)
        if trusted is not None:
            self._trusted[git_dir.name] = trusted

    async def take(
        self, path: Path, branch: str, start_commit: str, make_room: MakeRoom
    ) -> Path | None:
        """A parked worktree moved to `path`, on `branch` at `start_commit`, reset.

        Returns its git dir, or None when the pool has nothing (or what it had
        could not be reused; it is removed then): the caller creates one.
        """
        await self._adopt()
        while self._parked:
            parked = self._parked.pop()
            try:
                if await self._reuse(parked, path, branch, start_commit, make_room):
                    return parked.git_dir
            except (GitError, OSError):
                pass
            async with self.git.write_lock:  # it cannot be trusted: gone, and git told
                for where in (path, parked.path):
                    if _registered_here(where, parked.git_dir):
                        await self._remove(where)
                if parked.path.exists():
                    shutil.rmtree(parked.path, ignore_errors=True)
                await self.git.run("worktree", "prune", check=False)
            self._forget(parked.git_dir, parked.trusted)
        return None

    def forget(self, git_dir: Path) -> None:
        """Drop the index copy of a worktree that will not be parked (kept, or removed)."""
        self._forget(git_dir, self._trusted.get(git_dir.name))

    async def put(self, path: Path, git_dir: Path) -> bool:
        """Park the worktree at `path` if there is room; call with `Git.write_lock` held.

        Only a worktree whose work is safe (committed, or snapshotted) may be
        parked, and only one whose index plait copied at `remember`. False: the
        caller removes it.
        """
        await self._adopt(locked=True)
        trusted = self._trusted.pop(git_dir.name, None)
        if self.size <= 0 or len(self._parked) >= self.size or git_dir.is_symlink():
            self._forget(git_dir, trusted)
            return False
        target = self.root / git_dir.name
        detach = ("update-ref", "--no-deref", "-m", "plait: parked", "HEAD", "HEAD")
        if target.exists() or not (await self._in(git_dir, *detach)).ok:
            self._forget(git_dir, trusted)
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        moved = await self.git.run("worktree", "move", str(path), str(target), check=False)
        if not moved.ok:
            self._forget(git_dir, trusted)
            return False
        # What vouches for the copy in a later run; without it the copy is not used.
        record = _record_path(self.root / INDEX_COPIES, git_dir.name)
        if trusted is None:
            record.unlink(missing_ok=True)
        else:
            _write_record(record, trusted)
        self._parked.append(_Parked(target, git_dir, trusted))
        return True

    async def drain(self) -> list[Path]:
        """Remove every parked worktree (this process's and any a killed run left)."""
        removed: list[Path] = []
        async with self.git.write_lock:
            for info in await self.git.worktree_list():
                if info.path.parent == self.root:
                    await self._remove(info.path)
                    removed.append(info.path)
            if self.root.exists():
                shutil.rmtree(self.root, ignore_errors=True)
            if self._parked or removed:
                await self.git.run("worktree", "prune", check=False)
        self._parked.clear()
        self._adopted = True  # nothing left to adopt
        return removed

    # -- helpers ----------------------------------------------------------------

    async def _reuse(
        self, parked: _Parked, path: Path, branch: str, start: str, make_room: MakeRoom
    ) -> bool:
        """Move `parked` to `path` on `branch` at `start`, every trace of its last user gone."""
        git_dir = parked.git_dir
        if git_dir.is_symlink() or not git_dir.is_dir() or not parked.path.is_dir():
            return False
        await asyncio.to_thread(_scrub_git_dir, git_dir, start, parked.trusted)
        async with self.git.write_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                await make_room(path, branch)
            force = ("branch", "--no-track", "-f", branch, start)
            if not (await self.git.run(*force, check=False)).ok:
                # still checked out by an earlier attempt kept for inspection
                await make_room(path, branch)
                await self.git.run(*force)
            moved = await self.git.run("worktree", "move", str(parked.path), str(path),
                                       check=False)  # fmt: skip
            if not moved.ok:
                return False
            on_branch = ("symbolic-ref", "HEAD", f"refs/heads/{branch}")
            if not (await self._in(git_dir, *on_branch, path=path)).ok:
                return False
        # The files, outside the lock: only what differs from the index is written.
        # `checkout -f` of HEAD (now `start`): as thorough as `read-tree -u --reset`
        # (every entry is checked against the disk), and faster (0.12 s against 0.20 s
        # moving a 50,000-file checkout by a few files).
        await self._in(git_dir, "checkout", "-q", "-f", path=path, check=True)
        await self._in(git_dir, "clean", "-ffdxq", path=path, check=True)
        self._forget(git_dir, parked.trusted)
        return True

    async def _adopt(self, *, locked: bool = False) -> None:
        """Once: keep what earlier runs left parked (up to `size`), remove the rest."""
        if self._adopted:
            return
        if locked and self._adopting.locked():
            return  # a `put` holds the git lock, which the adoption under way waits for
        # The first attempts open together: all but one wait here for what it adopts,
        # rather than find the pool empty and check out afresh.
        async with self._adopting:
            if self._adopted:
                return
            try:
                await self._adopt_now(locked)
            finally:
                self._adopted = True  # once, even if it failed

    async def _adopt_now(self, locked: bool) -> None:
        lock = contextlib.nullcontext() if locked else self.git.write_lock
        if not self.root.exists():
            # Nothing to adopt; a pool folder deleted by hand leaves git's records of
            # its worktrees behind ("prunable"), which go now.
            async with lock:
                await self.git.run("worktree", "prune", check=False)
            return
        copies = self.root / INDEX_COPIES
        async with lock:
            known: set[str] = set()
            for info in await self.git.worktree_list():
                if info.path.parent != self.root:
                    continue
                git_dir = _git_dir_of(info.path, self.git.common_dir)
                if len(self._parked) < self.size and git_dir is not None and info.head:
                    trusted = await asyncio.to_thread(_vouched, copies, git_dir.name)
                    self._parked.append(_Parked(info.path, git_dir, trusted))
                    known.add(info.path.name)
                else:
                    await self._remove(info.path)
            for entry in self.root.iterdir():  # unregistered leftovers
                if entry.name not in known and entry.name != INDEX_COPIES:
                    _delete(entry)
            vouched = {p.trusted.copy.name for p in self._parked if p.trusted is not None}
            for entry in copies.iterdir() if copies.is_dir() else ():
                name = entry.name.removesuffix(RECORD_SUFFIX)
                if name not in vouched and name not in self._trusted:
                    _delete(entry)  # nothing parked vouches for it, nor anything open
            await self.git.run("worktree", "prune", check=False)

    async def _in(
        self, git_dir: Path, *args: str, path: Path | None = None, check: bool = False
    ) -> GitResult:
        """git on one worktree, naming its git dir so a replaced `.git` cannot redirect it."""
        where = [f"--git-dir={git_dir}"]
        if path is not None:
            where.append(f"--work-tree={path}")
        return await self.git.run(*where, *args, cwd=path, check=check)

    async def _remove(self, path: Path) -> None:
        """Under the lock: unregister and delete a worktree, even a damaged one."""
        result = await self.git.run("worktree", "remove", "--force", "--force", str(path),
                                    check=False)  # fmt: skip
        if not result.ok:
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
            await self.git.run("worktree", "prune", check=False)

    def _forget(self, git_dir: Path, trusted: _Trusted | None) -> None:
        self._trusted.pop(git_dir.name, None)
        if trusted is not None:
            trusted.copy.unlink(missing_ok=True)
            _record_path(trusted.copy.parent, trusted.copy.name).unlink(missing_ok=True)


def _copy_index(index: Path, copy: Path) -> _Trusted | None:
    """Copy an index file with its timestamp; what it was, or None if there is none."""
    try:
        data = index.read_bytes()
        mtime_ns = index.stat().st_mtime_ns
    except OSError:
        return None
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(data)
    os.utime(copy, ns=(mtime_ns, mtime_ns))
    return _Trusted(copy, hashlib.sha256(data).hexdigest(), mtime_ns)


def _record_path(copies: Path, name: str) -> Path:
    return copies / f"{name}{RECORD_SUFFIX}"


def _write_record(record: Path, trusted: _Trusted) -> None:
    """Write what an index copy was, atomically: a torn record vouches for nothing."""
    body = json.dumps({"sha256": trusted.sha256, "mtime_ns": trusted.mtime_ns})
    partial = record.with_name(record.name + ".tmp")
    partial.write_text(body, encoding="utf-8")
    partial.replace(record)


def _vouched(copies: Path, name: str) -> _Trusted | None:
    """The index copy an earlier run parked with worktree `name`, if its record matches."""
    copy = copies / name
    try:
        record = json.loads(_record_path(copies, name).read_text(encoding="utf-8"))
        sha256, mtime_ns = str(record["sha256"]), int(record["mtime_ns"])
        data = copy.read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        return None
    return _Trusted(copy, sha256, mtime_ns)


def _scrub_git_dir(git_dir: Path, head: str, trusted: _Trusted | None) -> None:
    """Empty a parked worktree's git dir of its last user's files; put plait's index back."""
    for entry in git_dir.iterdir():
        if entry.name not in KEPT_GIT_FILES or entry.is_symlink() or entry.is_dir():
            _delete(entry)
    (git_dir / "commondir").write_text("../..\n", encoding="utf-8")
    (git_dir / "HEAD").write_text(f"{head}\n", encoding="utf-8")
    index = git_dir / "index"
    data = None
    if trusted is not None:
        with contextlib.suppress(OSError):
            data = trusted.copy.read_bytes()
    if data is None or hashlib.sha256(data).hexdigest() != (trusted and trusted.sha256):
        # nothing plait can vouch for: no index, so every file is written afresh
        index.unlink(missing_ok=True)
        return
    assert trusted is not None
    fresh = git_dir / "index.plait-tmp"
    fresh.write_bytes(data)
    os.utime(fresh, ns=(trusted.mtime_ns, trusted.mtime_ns))
    fresh.replace(index)


def _delete(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def _git_dir_of(path: Path, common_dir: Path) -> Path | None:
    """A worktree's own git dir, from git's record (not its `.git` file, which an agent
    could have pointed at another worktree's)."""
    for git_dir in (
        (common_dir / "worktrees").iterdir() if (common_dir / "worktrees").is_dir() else ()
    ):
        if not git_dir.is_symlink() and _registered_here(path, git_dir):
            return git_dir
    return None


def _registered_here(path: Path, git_dir: Path) -> bool:
    """True if git's record for `git_dir` says its worktree is at `path`."""
    try:
        recorded = (git_dir / "gitdir").read_text(encoding="utf-8").strip()
    except OSError:
        return False
    return recorded == str(path / ".git")
