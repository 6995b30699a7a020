"""Scope enforcement: writes globs, protected paths, symlinks, guarded git files."""

from __future__ import annotations

from pathlib import Path

import pytest

from plait.gitguard import guarded_changes, read_guarded, restore_guarded
from plait.scope import check_scope, in_scope, outside_symlinks, protected_violations


@pytest.mark.parametrize(
    ("glob", "path", "allowed"),
    [
        ("package.json", "package.json", True),
        ("package.json", "web/package.json", False),  # anchored at the root
        ("**/package.json", "web/package.json", True),
        ("**/package.json", "package.json", True),
        ("db/**", "db/migrations/001.sql", True),
        ("db/**", "dbx/a.sql", False),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/sub/a.py", False),  # `*` stays within one folder
        ("src", "src/deep/a.py", True),  # a folder covers what is below it
        ("docs/", "docs/api.md", True),
        ("/docs/api.md", "docs/api.md", True),
        ("src/services/auth/**", "src/services/other.py", False),
    ],
)
def test_writes_globs(glob: str, path: str, allowed: bool) -> None:
    assert in_scope(path, [glob]) is allowed
    assert check_scope([path], [glob]) == ([] if allowed else [path])


def test_check_scope_lists_every_outside_path_once() -> None:
    changed = ["db/a.sql", "src/x.py", "README.md", "src/x.py"]
    assert check_scope(changed, ["db/**"]) == ["README.md", "src/x.py"]
    assert check_scope(changed, ["db/**", "src/**", "README.md"]) == []


def test_no_writes_means_anywhere() -> None:
    assert check_scope(["a", "deep/b/c"], []) == []
    assert in_scope("anything", [])


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        "sub/.git/hooks/pre-commit",
        ".githooks/pre-commit",
        ".husky/pre-push",
        ".claude/settings.json",
        "pkg/.claude/settings.local.json",
        ".plait/agents/x.md",
        ".codex/config.toml",
        ".gemini/settings.json",
        ".cursor/rules/a.mdc",
        ".opencode/x",
        ".amp/settings.json",
        ".aider.conf.yml",
        ".aiderignore",
        ".aider.tags.cache.v3/x",
        ".Claude/settings.json",  # case-insensitive file systems
        ".mcp.json",  # Claude Code's project MCP servers: commands it starts
        "pkg/.mcp.json",
        ".MCP.json",
        "opencode.json",  # opencode's config: MCP servers, permissions
        "web/opencode.jsonc",
    ],
)
def test_protected_paths(path: str) -> None:
    assert protected_violations([path]) == [path]


@pytest.mark.parametrize(
    "path",
    [
        "src/git.py",
        ".gitignore",
        ".github/workflows/ci.yml",
        "docs/.claude.md",
        "CLAUDE.md",  # instructions, not configuration
        "AGENTS.md",
        "GEMINI.md",
        "mcp.json",
        "docs/x.mcp.json",
    ],
)
def test_ordinary_paths(path: str) -> None:
    assert protected_violations([path]) == []


def test_outside_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "sub").mkdir(parents=True)
    (root / "inside.txt").write_text("x")
    (root / "ok").symlink_to("inside.txt")
    (root / "sub" / "ok").symlink_to("../inside.txt")
    (root / "up").symlink_to("../secret")
    (root / "abs").symlink_to("/etc/passwd")
    (root / "sub" / "sneaky").symlink_to("../../outside")
    (root / "chain").symlink_to("up")  # resolves through another link
    changed = ["ok", "sub/ok", "up", "abs", "sub/sneaky", "chain", "inside.txt", "gone"]
    assert outside_symlinks(root, changed) == ["abs", "chain", "sub/sneaky", "up"]


def test_guarded_git_files_detect_and_restore(tmp_path: Path) -> None:
    git_dir = tmp_path / "dotgit"
    (git_dir / "hooks").mkdir(parents=True)
    (git_dir / "config").write_text("[core]\n\tbare = false\n")
    sample = git_dir / "hooks" / "pre-commit"  # the user's own hook, deleted below
    sample.write_text("#!/bin/sh\n")
    sample.chmod(0o755)
    before = read_guarded(git_dir)

    (git_dir / "config").write_text("[core]\n\tfsmonitor = /tmp/evil\n")
    evil = git_dir / "hooks" / "post-merge"
    evil.write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    sample.unlink()
    (git_dir / "info").mkdir()
    (git_dir / "info" / "attributes").write_text("* filter=evil\n")

    after = read_guarded(git_dir)
    assert guarded_changes(before, after) == [
        "config",
        "hooks/post-merge",
        "hooks/pre-commit",
        "info/attributes",
    ]
    restore_guarded(git_dir, before)
    assert read_guarded(git_dir) == before
    assert (git_dir / "config").read_text() == "[core]\n\tbare = false\n"
    assert not evil.exists()
    assert sample.stat().st_mode & 0o111


def test_guarded_hooks_dir_replaced_by_symlink(tmp_path: Path) -> None:
    git_dir = tmp_path / "dotgit"
    (git_dir / "hooks").mkdir(parents=True)
    (git_dir / "hooks" / "a.sample").write_text("x")
    before = read_guarded(git_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (git_dir / "hooks" / "a.sample").unlink()
    (git_dir / "hooks").rmdir()
    (git_dir / "hooks").symlink_to(elsewhere)
    assert "hooks" in guarded_changes(before, read_guarded(git_dir))
    restore_guarded(git_dir, before)
    assert read_guarded(git_dir) == before
    assert not (git_dir / "hooks").is_symlink()


def test_the_stamp_of_git_files_changes_with_them_and_holds_back_when_too_recent(
    tmp_path: Path,
) -> None:
    """`guarded_stamp` lets every attempt skip reading each hook and config file: it
    must differ whenever one of them changed, and refuse to vouch for a fresh change."""
    import os
    import time

    from plait.gitguard import GitGuard, guarded_stamp

    git_dir = tmp_path / "git"
    (git_dir / "hooks").mkdir(parents=True)
    (git_dir / "config").write_text("[core]\n")
    (git_dir / "hooks" / "pre-commit.sample").write_text("#!/bin/sh\n")
    assert guarded_stamp(git_dir) is None  # just written: only reading can tell
    old = time.time() - 60
    for path in (git_dir / "config", git_dir / "hooks" / "pre-commit.sample", git_dir / "hooks"):
        os.utime(path, (old, old))
    time.sleep(2.1)  # ctime cannot be set back: let it settle past the window
    stamp = guarded_stamp(git_dir)
    assert stamp is not None and stamp == guarded_stamp(git_dir)

    guard = GitGuard(git_dir)
    guard.baseline()
    assert guard.restore_shared() == []  # unchanged, vouched for by the stamp
    (git_dir / "hooks" / "pre-commit").write_text("#!/bin/sh\necho pwned\n")
    assert guarded_stamp(git_dir) is None  # a fresh change: not vouched for
    assert guard.restore_shared() == ["hooks/pre-commit"]
    assert not (git_dir / "hooks" / "pre-commit").exists()
    (git_dir / "hooks" / "pre-push.sample").write_text("never runs\n")  # git's samples
    assert guard.restore_shared() == []
