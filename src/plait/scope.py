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
from collections.abc import Sequence
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
