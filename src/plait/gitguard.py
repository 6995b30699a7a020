"""Git's own files that no agent may change, and the guard that puts them back.

The files of a git dir that run code or change git's behaviour for everyone who uses
the repository (config, hooks, attributes, ...) are read once before any agent runs
(`read_guarded`); after each attempt they are compared with that reading, changed
ones are put back (`restore_guarded`), and the attempts that ran meanwhile fail.
Their stat (`guarded_stamp`) tells, without reading a file, that nothing changed.
`GitGuard` does this for the shared git dir and each worktree's own, and keeps a
worktree's `.git` file as git wrote it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from plait.configrisk import harmless_change

#: Files of a git dir that run code or change git's behaviour for everyone who
#: uses the repository: config (fsmonitor, hooksPath, filters, aliases), hooks,
#: attributes (filter and diff drivers), a worktree's link to its common dir,
#: borrowed object stores and grafted history.
GUARDED_FILES = (
    "config",
    "config.worktree",
    "info/attributes",
    "commondir",
    "objects/info/alternates",
    "info/grafts",
    # where plait itself makes and removes worktrees (`statehome.worktrees_home`)
    "plait/worktrees.location",
)
GUARDED_DIRS = ("hooks",)

#: One guarded entry: ("file", bytes, executable) | ("link", target) | ("dir",).
Entry = tuple[object, ...]


def read_guarded(git_dir: Path) -> dict[str, Entry]:
    """The guarded files under `git_dir`, keyed by their path relative to it.

    (Plain `os` calls: with `isolation: none` every attempt reads them once more.)
    """
    root = os.fspath(git_dir)
    found: dict[str, Entry] = {}
    for name in GUARDED_FILES:
        _read_entry(root, name, found)
    for folder in GUARDED_DIRS:
        if _read_entry(root, folder, found) == "dir":
            _read_tree(root, folder, found)
    return found


#: A guarded entry changed this recently cannot be vouched for by its stat alone: a
#: second write within the file system's timestamp granularity could keep its stamp.
_SETTLED_S = 2.0

Stamp = tuple[tuple[str, int, int, int, int, int], ...]


def guarded_stamp(git_dir: Path) -> Stamp | None:
    """The guarded entries' stats (no file is read): equal stamps mean equal contents,
    as git's own index trusts stat data. None when an entry changed too recently for
    its stat to tell (`_SETTLED_S`): then only reading the files will do."""
    root = os.fspath(git_dir)
    found: list[tuple[str, int, int, int, int, int]] = []
    settled = time.time() - _SETTLED_S

    def add(rel: str) -> bool:
        try:
            info = os.lstat(os.path.join(root, rel))
        except OSError:
            return False
        if max(info.st_ctime, info.st_mtime) > settled:
            raise _Unsettled
        found.append((rel, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
                      info.st_ino))  # fmt: skip
        return stat.S_ISDIR(info.st_mode)

    def walk(rel: str) -> None:
        with contextlib.suppress(OSError):
            for name in _guarded_names(os.listdir(os.path.join(root, rel))):
                if add(f"{rel}/{name}"):
                    walk(f"{rel}/{name}")

    try:
        for name in GUARDED_FILES:
            add(name)
        for folder in GUARDED_DIRS:
            if add(folder):
                walk(folder)
    except _Unsettled:
        return None
    return tuple(found)


class _Unsettled(Exception):
    """A guarded entry changed within `_SETTLED_S`."""


def _guarded_names(names: list[str]) -> list[str]:
    """The entries of a guarded folder that count, sorted: not git's `*.sample` hooks,
    which never run (a sample renamed to a hook's name is a new entry, and counts)."""
    return sorted(name for name in names if not name.endswith(".sample"))


def _read_tree(root: str, rel: str, into: dict[str, Entry]) -> None:
    """Every entry below the folder `rel`, a link to a folder not followed."""
    try:
        names = _guarded_names(os.listdir(os.path.join(root, rel)))
    except OSError:
        return
    for name in names:
        child = f"{rel}/{name}"
        if _read_entry(root, child, into) == "dir":
            _read_tree(root, child, into)


def _read_entry(root: str, rel: str, into: dict[str, Entry]) -> str | None:
    """Record what `rel` is (a link, a folder, a file with its bytes); its kind."""
    path = os.path.join(root, rel)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(info.st_mode):
        into[rel] = ("link", os.readlink(path))
        return "link"
    if stat.S_ISDIR(info.st_mode):
        into[rel] = ("dir",)
        return "dir"
    if stat.S_ISREG(info.st_mode):
        try:
            with open(path, "rb") as file:
                into[rel] = ("file", file.read(), bool(info.st_mode & 0o111))
        except OSError:
            return None
        return "file"
    return None


def guarded_changes(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[str]:
    """Guarded paths added, removed or changed between two `read_guarded` results."""
    return sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))


def restore_guarded(git_dir: Path, saved: Mapping[str, Entry]) -> None:
    """Put the guarded files under `git_dir` back exactly as `saved` has them."""
    now = read_guarded(git_dir)
    for rel in sorted(set(now) - set(saved), reverse=True):  # added: deepest first
        _remove(git_dir / rel)
    for rel in sorted(saved):  # parents before children
        entry = saved[rel]
        if now.get(rel) == entry:
            continue
        target = git_dir / rel
        if target.is_symlink() or target.exists():
            _remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry[0] == "dir":
            target.mkdir()
        elif entry[0] == "link":
            target.symlink_to(str(entry[1]))
        else:
            content = entry[1]
            assert isinstance(content, bytes)
            target.write_bytes(content)
            target.chmod(0o755 if entry[2] else 0o644)


def put_back(git_dir: Path, saved: dict[str, Entry], aside: Path | None) -> list[str]:
    """Put back the guarded files under `git_dir` that differ from `saved`; the paths
    put back. A harmless change to `config` (`configrisk`: a remote or a branch's
    upstream the user set meanwhile) is not: `saved` takes it on. What is replaced is
    kept under `aside`, in a folder of its own, so that nothing the user wrote is lost.
    """
    now = read_guarded(git_dir)
    changed = guarded_changes(saved, now)
    if "config" in changed:
        before, after = _file_bytes(saved.get("config")), _file_bytes(now.get("config"))
        if before is not None and after is not None and harmless_change(before, after):
            saved["config"] = now["config"]
            changed.remove("config")
    if changed:
        if aside is not None:
            keep_aside(aside / f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns()}", changed, now)
        restore_guarded(git_dir, saved)
    return changed


def _file_bytes(entry: Entry | None) -> bytes | None:
    """The content of a guarded regular file; None for anything else."""
    if entry is None or entry[0] != "file" or not isinstance(entry[1], bytes):
        return None
    return entry[1]


def keep_aside(folder: Path, changed: list[str], now: Mapping[str, Entry]) -> None:
    """Copy the changed entries of `now` under `folder` (folders come with their files;
    a removed entry has nothing to keep)."""
    for rel in changed:
        entry = now.get(rel)
        if entry is None or entry[0] == "dir":
            continue
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry[0] == "link":
            target.unlink(missing_ok=True)
            target.symlink_to(str(entry[1]))
            continue
        content = entry[1]
        assert isinstance(content, bytes)
        target.write_bytes(content)
        target.chmod(0o755 if entry[2] else 0o644)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def folder_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the real folder at `path`; None if it is gone, a link or a file."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None


#: The violation reported when an agent deleted or replaced its workspace folder.
WORKSPACE_GONE = "(workspace)"


@dataclass
class _Watched:
    folder: tuple[int, int] | None  # the worktree folder's identity when it was opened
    dotgit: bytes  # the worktree's `.git` file, as git wrote it
    git_dir: Path  # the worktree's own git dir (<common>/worktrees/<name>)
    private: dict[str, Entry]  # guarded files of that git dir
    tainted: set[str] = field(default_factory=set)  # shared files changed while open


class GitGuard:
    """Watches the git files no agent may change, and puts them back when one does.

    The shared git dir's guarded files are read once, before any agent runs, and
    every check compares against (and restores) that reading, so one agent's edit
    can never become another attempt's baseline; only a harmless change to `config`
    (`configrisk`: a remote or an upstream the user set) joins it. A change to the
    shared files cannot be pinned on one of the attempts running in parallel, so it
    fails all of them: the one that did it cannot pass because another was checked
    first.
    """

    def __init__(self, common_dir: Path) -> None:
        self.common_dir = common_dir
        self._shared: dict[str, Entry] | None = None
        self._shared_stamp: Stamp | None = None  # its stat, while that can vouch for it
        self._watched: dict[Path, _Watched] = {}
        #: Told the shared reading when it is taken, before any agent starts, and when a
        #: harmless config change joins it (a run writes it down: `guardkeep`).
        self.on_baseline: Callable[[Mapping[str, Entry]], None] = lambda entries: None
        #: Where the shared files it puts back are kept (None: not kept).
        self.aside: Path | None = None

    def watch(self, worktree: Path, git_dir: Path) -> None:
        """Start watching a new worktree (call before its agent starts)."""
        if self._shared is None:
            self._read_shared()
        dotgit = (worktree / ".git").read_bytes()
        self._watched[worktree] = _Watched(
            folder_id(worktree), dotgit, git_dir, read_guarded(git_dir)
        )

    def intact(self, worktree: Path) -> bool:
        """False if the worktree's folder was deleted or replaced (by a file, a link or
        another folder) since `watch`: nothing in it may then be trusted or written."""
        watched = self._watched.get(worktree)
        now = folder_id(worktree)
        return now is not None and (watched is None or watched.folder == now)

    def forget(self, worktree: Path) -> None:
        """Stop watching a worktree (it is closed)."""
        self._watched.pop(worktree, None)

    def check(self, worktree: Path) -> list[tuple[str, str]]:
        """Restore whatever was changed; (violation, reason) pairs for what was."""
        found: list[tuple[str, str]] = []
        watched = self._watched.get(worktree)
        if watched is not None:
            if self.intact(worktree):
                found += _restore_dotgit(worktree, watched.dotgit)
            else:  # nothing to restore into: the attempt fails, the folder is dropped
                found.append((WORKSPACE_GONE, "the agent deleted or replaced its workspace"))
            now = read_guarded(watched.git_dir)
            if now != watched.private:
                # a git dir deleted whole is not rebuilt: the worktree is dropped at close
                kept = watched.git_dir.is_dir()
                for rel in guarded_changes(watched.private, now):
                    where = f".git/worktrees/{watched.git_dir.name}/{rel}"
                    done = "restored" if kept else "not restored"
                    found.append((where, f"changed the worktree's git file {rel} ({done})"))
                if kept:
                    restore_guarded(watched.git_dir, watched.private)
        if self._shared is not None and not self._shared_unchanged():
            changed = self._put_back_shared()
            for other in self._watched.values():
                other.tainted.update(changed)
        if watched is not None:
            for rel in sorted(watched.tainted):
                copy = f"; the changed copy is kept in {self.aside}" if self.aside else ""
                reason = (
                    f"the repository's .git/{rel} changed while this attempt ran, by its agent"
                    f" or one running beside it: plait cannot tell which (restored{copy})"
                )
                found.append((f".git/{rel}", reason))
            watched.tainted.clear()
        return found

    def baseline(self) -> None:
        """Read the shared git dir's guarded files now, if not read yet (`watch` does
        it for worktrees; attempts in the checkout itself watch nothing else)."""
        if self._shared is None:
            self._read_shared()

    def restore_shared(self) -> list[str]:
        """Put back the shared git dir's guarded files changed since the first attempt,
        judging no attempt; their paths. For a run ending early (Ctrl-C): no attempt
        will be collected, and a hook an agent left would run on the user's next commit.
        """
        if self._shared is None or self._shared_unchanged():
            return []
        return self._put_back_shared()

    def _put_back_shared(self) -> list[str]:
        """`put_back` for the shared git dir; a harmless config change becomes part of
        the reading (written down again: a later recovery must not undo it)."""
        assert self._shared is not None
        config = self._shared.get("config")
        changed = put_back(self.common_dir, self._shared, self.aside)
        if self._shared.get("config") != config:
            self.on_baseline(self._shared)
        self._shared_stamp = None  # just written or changed: read again until it settles
        return changed

    def _read_shared(self) -> None:
        # The stamp first: a change between the two makes it differ, never hides.
        stamp = guarded_stamp(self.common_dir)
        self._shared = read_guarded(self.common_dir)
        self._shared_stamp = stamp
        self.on_baseline(self._shared)

    def _shared_unchanged(self) -> bool:
        """True if the shared guarded files' stat shows them as read (no file is read).

        Every attempt checks them, and reading each hook and config file was most of
        an `isolation: none` attempt's cost while agents and the store kept the disk
        busy. Not vouched for (too recent a change): they are read, and compared."""
        if self._shared_stamp is None:
            stamp = guarded_stamp(self.common_dir)
            if stamp is None or read_guarded(self.common_dir) != self._shared:
                return False
            self._shared_stamp = stamp  # settled as read: from now on its stat will do
            return True
        return guarded_stamp(self.common_dir) == self._shared_stamp


def _restore_dotgit(worktree: Path, expected: bytes) -> list[tuple[str, str]]:
    """Put back a worktree's `.git` file that an agent deleted or replaced."""
    dotgit = worktree / ".git"
    if dotgit.is_file() and not dotgit.is_symlink() and dotgit.read_bytes() == expected:
        return []
    if dotgit.is_dir() and not dotgit.is_symlink():
        # an agent's own repository: kept as evidence, outside the tree
        dotgit.rename(worktree.parent / f"{worktree.name}.agent-git-{time.time_ns()}")
    else:
        dotgit.unlink(missing_ok=True)
    dotgit.write_bytes(expected)
    return [(".git", "the workspace's .git file was deleted or replaced (restored)")]
