"""Workspaces for `isolation: none`: every attempt runs in the checkout itself.

Nothing is created, committed or removed: the checkout is the user's. `collect`
reports the paths whose `git status` entry or content changed since `open` (all
attempts running at once see each other's changes: that is what running in place
means), and checks them against scope like worktrees do.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from pathlib import Path

from plait.git import Git, status_paths
from plait.model import ScopePolicy
from plait.scope import check_scope, output_paths, outside_symlinks, protected_violations
from plait.workspace import Change, Workspace

__all__ = ["InPlaceProvider"]


class InPlaceProvider:
    """isolation: none. Every attempt runs in the checkout itself; nothing is committed."""

    def __init__(
        self, root: Path, git: Git | None = None, *, scope: ScopePolicy = ScopePolicy.ENFORCE
    ) -> None:
        self.root = root
        self.git = git
        self.scope = scope
        self._before: dict[tuple[str, int], dict[str, str]] = {}

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace:
        """The checkout itself, with its current state noted."""
        self._before[(task_id, attempt)] = await self._state()
        return Workspace(task_id, attempt, self.root, "", start_commit)

    async def collect(
        self,
        ws: Workspace,
        *,
        writes: Sequence[str],
        message: str,
        outputs: Sequence[str | Path] = (),
    ) -> Change:
        """What changed in the checkout since `open` (nothing is committed; `message` unused).

        `outputs`, the task's output files, are plait's channel: not a change.
        """
        before = self._before.pop((ws.task_id, ws.attempt), {})
        after = await self._state()
        channel = set(output_paths(self.root, outputs))
        files = sorted(
            p
            for p in set(before) | set(after)
            if before.get(p) != after.get(p) and p not in channel
        )
        outside = check_scope(files, writes)
        forbidden = [*protected_violations(files), *outside_symlinks(self.root, files)]
        problems = []
        if forbidden:
            problems.append(f"changed protected paths: {', '.join(forbidden)}")
        if outside:
            problems.append(f"changed files outside its writes: {', '.join(outside)}")
        return Change(None, tuple(files), tuple(outside), tuple(dict.fromkeys(forbidden)),
                      tuple(problems), self.scope)  # fmt: skip

    async def close(self, ws: Workspace, *, keep: bool) -> None:
        """Nothing to remove: the checkout is the user's."""
        self._before.pop((ws.task_id, ws.attempt), None)

    async def _state(self) -> dict[str, str]:
        """Each dirty path's status and content hash (empty outside a repository)."""
        if self.git is None:
            return {}
        status = await self.git.run(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=self.root, readonly=True
        )
        state: dict[str, str] = {}
        for rel in status_paths(status.stdout):
            path = self.root / rel
            digest = ""
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    digest = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
            state[rel] = digest
        return state
