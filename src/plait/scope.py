"""Scope enforcement: which of an attempt's changed paths it was not allowed to make.

Three checks, all on repository-relative paths with `/` separators:

- `check_scope`: paths outside the task's `writes` globs. Globs have gitignore
  semantics anchored at the repository root: `*` stays within one folder, `**`
  crosses folders, a pattern that names a folder covers everything below it,
  and `package.json` is only the root file (`**/package.json` is any of them).
  A task without `writes` may write anywhere (except protected paths).
- `protected_violations`: paths no task may ever write, whatever its scope: git's
  own files, folders of git hooks, and the configuration folders and files of coding
  agents (`.claude/`, `.mcp.json`, `.codex/`, `.gemini/`, `.aider*`, ...).
  Changing them would run code, or change an agent's permissions, the next time
  someone uses the repository.
- `outside_symlinks`: symbolic links whose target resolves outside the workspace,
  through which a later task or the user would read or write elsewhere.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

#: Top-level folders that hold git hooks: writing them is writing code that runs
#: on the next commit.
HOOK_DIRS = (".githooks", ".husky")

#: Agent configuration folders (permissions, hooks, MCP servers, instructions
#: that agents load on start), protected at any depth.
AGENT_CONFIG_DIRS = (".claude", ".plait", ".codex", ".gemini", ".cursor", ".opencode", ".amp")

#: Name prefixes of aider's configuration and cache files and folders
#: (`.aider.conf.yml` can set `test-cmd` and `lint-cmd`, commands aider runs).
AGENT_CONFIG_PREFIXES = (".aider",)

#: Agent configuration files outside those folders, protected at any depth: each can
#: start commands. Claude Code's project `.mcp.json` (MCP servers are commands it
#: spawns) and opencode's `opencode.json[c]` (its `mcp` servers and permissions).
#: Instruction files (CLAUDE.md, AGENTS.md, GEMINI.md, .cursorrules) are not here:
#: they are text an agent reads, which tasks may legitimately write.
AGENT_CONFIG_FILES = (".mcp.json", "opencode.json", "opencode.jsonc")


def compile_scope(writes: Sequence[str]) -> pathspec.GitIgnoreSpec:
    """The `writes` globs as one matcher, every pattern anchored at the repository root."""
    lines: list[str] = []
    for glob in writes:
        negate = glob.startswith("!")
        body = glob[1:] if negate else glob
        anchored = body if body.startswith("/") else f"/{body}"
        lines.append(("!" if negate else "") + anchored)
    return pathspec.GitIgnoreSpec.from_lines(lines)


def in_scope(path: str, writes: Sequence[str]) -> bool:
    """True if a task with these `writes` may change `path`."""
    return not writes or compile_scope(writes).match_file(path)


def check_scope(changed: Sequence[str], writes: Sequence[str]) -> list[str]:
    """The changed paths that `writes` does not cover (none when `writes` is empty)."""
    if not writes:
        return []
    spec = compile_scope(writes)
    return sorted({path for path in changed if not spec.match_file(path)})


def output_paths(root: Path, outputs: Sequence[str | Path]) -> tuple[str, ...]:
    """The output files (relative to `root`, or absolute) that lie in `root`, as
    repository-relative paths; files elsewhere are not the workspace's concern."""
    base = os.path.abspath(root)
    found: list[str] = []
    for output in outputs:
        if not str(output):
            continue
        full = os.path.abspath(os.path.join(base, output))
        if full != base and os.path.commonpath([base, full]) == base:
            found.append(Path(os.path.relpath(full, base)).as_posix())
    return tuple(dict.fromkeys(found))


def protected_reason(path: str) -> str | None:
    """Why no task may write `path`, or None if it is an ordinary path."""
    parts = [part.lower() for part in path.strip("/").split("/") if part]
    if not parts:
        return None
    if ".git" in parts:
        return "git's own files"
    if parts[0] in HOOK_DIRS and len(parts) > 1:
        return "a git hooks folder"
    for part in parts[:-1] if len(parts) > 1 else []:
        if part in AGENT_CONFIG_DIRS or part.startswith(AGENT_CONFIG_PREFIXES):
            return "an agent configuration folder"
    last = parts[-1]
    if last.startswith(AGENT_CONFIG_PREFIXES) or last in AGENT_CONFIG_FILES:
        return "an agent configuration file"
    return None


def protected_violations(changed: Sequence[str]) -> list[str]:
    """The changed paths that no task may write, whatever its scope."""
    return sorted({path for path in changed if protected_reason(path) is not None})


def outside_symlinks(root: Path, changed: Sequence[str]) -> list[str]:
    """Changed paths in `root` that are symlinks resolving outside `root`.

    The link's target is resolved the way the operating system would follow it
    (relative to the link's folder, through other links); a dangling link is
    judged by where it points.
    """
    if not changed:  # the common case, and resolving `root` walks every folder above it
        return []
    base = os.path.realpath(root)
    flagged: list[str] = []
    for rel in changed:
        link = root / rel
        if not link.is_symlink():
            continue
        target = os.path.realpath(link)
        if os.path.commonpath([base, target]) != base:
            flagged.append(rel)
    return sorted(flagged)


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


def _read_tree(root: str, rel: str, into: dict[str, Entry]) -> None:
    """Every entry below the folder `rel`, a link to a folder not followed."""
    try:
        names = sorted(os.listdir(os.path.join(root, rel)))
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
    can never become another attempt's baseline. A change to the shared files
    cannot be pinned on one of the attempts running in parallel, so it fails all
    of them: the one that did it cannot pass because another was checked first.
    """

    def __init__(self, common_dir: Path) -> None:
        self.common_dir = common_dir
        self._shared: dict[str, Entry] | None = None
        self._watched: dict[Path, _Watched] = {}

    def watch(self, worktree: Path, git_dir: Path) -> None:
        """Start watching a new worktree (call before its agent starts)."""
        if self._shared is None:
            self._shared = read_guarded(self.common_dir)
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
        if self._shared is not None:
            now = read_guarded(self.common_dir)
            if now != self._shared:
                changed = guarded_changes(self._shared, now)
                restore_guarded(self.common_dir, self._shared)
                for other in self._watched.values():
                    other.tainted.update(changed)
        if watched is not None:
            for rel in sorted(watched.tainted):
                reason = (
                    f"the repository's .git/{rel} changed while this attempt ran, by its agent"
                    " or one running beside it: plait cannot tell which (restored)"
                )
                found.append((f".git/{rel}", reason))
            watched.tainted.clear()
        return found

    def baseline(self) -> None:
        """Read the shared git dir's guarded files now, if not read yet (`watch` does
        it for worktrees; attempts in the checkout itself watch nothing else)."""
        if self._shared is None:
            self._shared = read_guarded(self.common_dir)

    def restore_shared(self) -> list[str]:
        """Put back the shared git dir's guarded files changed since the first attempt,
        judging no attempt; their paths. For a run ending early (Ctrl-C): no attempt
        will be collected, and a hook an agent left would run on the user's next commit.
        """
        if self._shared is None:
            return []
        now = read_guarded(self.common_dir)
        if now == self._shared:
            return []
        changed = guarded_changes(self._shared, now)
        restore_guarded(self.common_dir, self._shared)
        return changed


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
