"""A throwaway git repository for tests: real git, a fixed identity, a few commits.

Usage::

    from gitrepo import GitRepo, git_identity  # noqa

    def test_x(tmp_path, monkeypatch):
        git_identity(monkeypatch)
        repo = GitRepo.create(tmp_path / "repo", {"README.md": "hi\\n"})
        repo.write("src/a.py", "x = 1\\n")
        repo.commit("add a")

Everything runs `git` synchronously (tests need no event loop for setup) with
hooks off, and never touches any repository outside the given path.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
}

#: Keep the user's and the machine's git config out of tests.
ISOLATION = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give this test a git identity and no global/system git config."""
    for key, value in {**IDENTITY, **ISOLATION}.items():
        monkeypatch.setenv(key, value)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)


@dataclass
class GitRepo:
    """A repository at `path` with helpers for the things tests do to it."""

    path: Path

    @classmethod
    def create(
        cls, path: Path, files: Mapping[str, str] | None = None, *, branch: str = "main"
    ) -> GitRepo:
        """`git init` at `path`, then one commit of `files` (default: a README)."""
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", branch)
        for rel, text in (files or {"README.md": "# test\n"}).items():
            repo.write(rel, text)
        repo.commit("initial")
        return repo

    def git(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run git in the repository; its stdout."""
        env = {**os.environ, **ISOLATION, **(env or {})}
        env.setdefault("GIT_AUTHOR_NAME", IDENTITY["GIT_AUTHOR_NAME"])
        env.setdefault("GIT_AUTHOR_EMAIL", IDENTITY["GIT_AUTHOR_EMAIL"])
        env.setdefault("GIT_COMMITTER_NAME", IDENTITY["GIT_COMMITTER_NAME"])
        env.setdefault("GIT_COMMITTER_EMAIL", IDENTITY["GIT_COMMITTER_EMAIL"])
        result = subprocess.run(
            ["git", "-c", "core.hooksPath=/dev/null", *args],
            cwd=self.path,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def write(self, rel: str, text: str) -> Path:
        """Write a file (creating folders)."""
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target

    def commit(self, message: str, *files: str) -> str:
        """Stage `files` (default: everything) and commit; the new commit id."""
        self.git("add", *(files or ("-A",)))
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref).strip()

    def rev(self, ref: str) -> str | None:
        """The commit `ref` names, or None."""
        out = self.git("rev-parse", "-q", "--verify", ref, check=False).strip()
        return out or None

    @property
    def common_dir(self) -> Path:
        return self.path / ".git"

    def show(self, ref: str, rel: str) -> str:
        """A file's content at a commit."""
        return self.git("show", f"{ref}:{rel}")

    def fsck(self) -> str:
        """`git fsck --strict` output; raises if it fails."""
        return self.git("fsck", "--strict", "--no-progress")

    def worktrees(self) -> list[str]:
        """Paths of every worktree (the main one first)."""
        out = self.git("worktree", "list", "--porcelain")
        return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]

    def branches(self, pattern: str = "*") -> list[str]:
        out = self.git("branch", "--list", "--format=%(refname:short)", pattern)
        return [line for line in out.splitlines() if line]

    def fingerprint(self) -> dict[str, str]:
        """HEAD, the index bytes, `git status`, and every working-tree file's hash.

        Two equal fingerprints mean the user's checkout is byte-identical.
        """
        prints = {
            "HEAD": (self.path / ".git" / "HEAD").read_text(),
            "head_commit": self.head(),
            # no optional locks: a plain status would refresh (rewrite) the index
            "status": self.git(
                "status", "--porcelain=v1", "--untracked-files=all", env={"GIT_OPTIONAL_LOCKS": "0"}
            ),
        }
        index = self.path / ".git" / "index"
        prints["index"] = hashlib.sha256(index.read_bytes()).hexdigest() if index.exists() else ""
        for file in sorted(self.path.rglob("*")):
            rel = file.relative_to(self.path)
            if rel.parts[0] == ".git" or file.is_dir():
                continue
            prints[f"file:{rel.as_posix()}"] = hashlib.sha256(file.read_bytes()).hexdigest()
        return prints
