"""Workspaces for `isolation: none`: every attempt runs in the checkout itself.

Nothing is created, committed or removed: the checkout is the user's. `collect`
reports the paths whose `git status` entry or content changed since `open` (all
attempts running at once see each other's changes: that is what running in place
means), and checks them against scope like worktrees do.

Each snapshot is a `git status` plus a hash of every dirty file, and every attempt
needs two. Attempts that ask at about the same time share one (`_SharedSnapshot`),
so a plan of many quick tasks costs a few snapshots per wave, not two per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from plait.git import Git, status_paths
from plait.model import ScopePolicy
from plait.scope import (
    GitGuard,
    check_scope,
    output_paths,
    outside_symlinks,
    protected_violations,
)
from plait.workspace import Change, Workspace

__all__ = ["InPlaceProvider"]

State = Mapping[str, str]  # dirty path -> content hash ("" for a deleted or special file)


class _SharedSnapshot:
    """Takes snapshots of the checkout for many callers at once.

    A caller is given a snapshot that began after it asked, so it sees every change
    made before it asked (a later one is no less correct: the checkout is shared and
    attempts running at once see each other's changes anyway). Callers that ask while
    one snapshot is being taken all share the next one. If the caller taking it is
    cancelled, the next in line takes it instead.
    """

    def __init__(self, take: Callable[[], Awaitable[State]]) -> None:
        self._take = take
        self._lock = asyncio.Lock()
        self._begun = 0  # snapshots begun so far
        self._last: State = {}
        self._last_number = 0  # which of them `_last` is (0: none yet)

    async def fresh(self) -> State:
        """A snapshot begun after this call."""
        asked = self._begun
        async with self._lock:
            if self._last_number > asked:  # began after we asked, and is complete
                return self._last
            self._begun += 1
            number = self._begun
            state = await self._take()
            self._last, self._last_number = state, number
            return state


class InPlaceProvider:
    """isolation: none. Every attempt runs in the checkout itself; nothing is committed."""

    def __init__(
        self, root: Path, git: Git | None = None, *, scope: ScopePolicy = ScopePolicy.ENFORCE
    ) -> None:
        self.root = root
        self.git = git
        self.scope = scope
        self._before: dict[tuple[str, int], State] = {}
        self._snapshots = _SharedSnapshot(self._state)
        # git's own files no agent may change (hooks, config): put back when one does,
        # and a failure for every attempt that ran meanwhile (which one did it is unknown)
        self.guard = GitGuard(git.common_dir) if git is not None else None
        self._tainted: dict[tuple[str, int], set[str]] = {}

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace:
        """The checkout itself, with its current state noted."""
        if self.guard is not None:
            self.guard.baseline()
        self._tainted[(task_id, attempt)] = set()
        self._before[(task_id, attempt)] = await self._snapshots.fresh()
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
        after = await self._snapshots.fresh()
        files = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        if files and outputs:
            channel = set(output_paths(self.root, outputs))
            files = [p for p in files if p not in channel]
        outside = check_scope(files, writes)
        forbidden = [*protected_violations(files), *outside_symlinks(self.root, files)]
        problems = []
        if forbidden:
            problems.append(f"changed protected paths: {', '.join(forbidden)}")
        git_files = self._git_files_changed((ws.task_id, ws.attempt))
        if git_files:
            forbidden += git_files
            problems.append(
                f"git's own files changed while this attempt ran ({', '.join(git_files)}), "
                "by its agent or one running beside it: plait cannot tell which (restored)"
            )
        if outside:
            problems.append(f"changed files outside its writes: {', '.join(outside)}")
        return Change(None, tuple(files), tuple(outside), tuple(dict.fromkeys(forbidden)),
                      tuple(problems), self.scope)  # fmt: skip

    async def close(self, ws: Workspace, *, keep: bool) -> None:
        """Nothing to remove: the checkout is the user's."""
        self._before.pop((ws.task_id, ws.attempt), None)
        self._tainted.pop((ws.task_id, ws.attempt), None)

    def _git_files_changed(self, key: tuple[str, int]) -> list[str]:
        """The guarded git files changed while attempt `key` was open, put back now."""
        if self.guard is None:
            return []
        changed = self.guard.restore_shared()
        for tainted in self._tainted.values():  # every attempt open meanwhile
            tainted.update(changed)
        return [f".git/{rel}" for rel in sorted(self._tainted.pop(key, set()))]

    async def release_branch(self, task_id: str) -> None:
        """Nothing: no task branch is made in place."""

    async def _state(self) -> State:
        """Each dirty path's content hash (empty outside a repository)."""
        if self.git is None:
            return {}
        status = await self.git.run(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
            cwd=self.root,
            readonly=True,
        )
        paths = status_paths(status.stdout)
        if not paths:
            return {}
        # Reading and hashing every dirty file can take a while: not on the loop.
        return await asyncio.to_thread(_hash_files, self.root, paths)


def _hash_files(root: Path, paths: Sequence[str]) -> dict[str, str]:
    state: dict[str, str] = {}
    for rel in paths:
        path = root / rel
        digest = ""
        with contextlib.suppress(OSError):
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
        state[rel] = digest
    return state
