"""Workspaces for `isolation: none`: every attempt runs in the checkout itself.

Nothing is created, committed or removed: the checkout is the user's. `collect`
reports the paths whose `git status` entry or content changed since the task's first
`open` (all attempts running at once see each other's changes: that is what running
in place means), and checks them against scope like worktrees do.

Each snapshot is a `git status` (with the commit HEAD names: an agent that commits
leaves a clean tree, and what it committed counts too) plus a hash of every dirty
file, and every attempt needs two. Attempts that ask at about the same time share
one (`_SharedSnapshot`), so a plan of many quick tasks costs a few snapshots per
wave, not two per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plait.git import Git
from plait.gitguard import GitGuard
from plait.model import ScopePolicy
from plait.scope import check_scope, output_paths, outside_symlinks, protected_violations
from plait.workspace import Change, Workspace

__all__ = ["InPlaceProvider"]


@dataclass(frozen=True)
class State:
    """The checkout at one moment."""

    head: str | None  # the commit HEAD names (None: no commit yet, or no repository)
    dirty: Mapping[str, str]  # dirty path -> content hash ("" for a deleted or special file)


EMPTY = State(None, {})


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
        self._last: State = EMPTY
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
        # Per task, the checkout as its first attempt here found it: a retry is judged
        # against it too, since what an earlier attempt left is still there (in a
        # worktree a retry starts clean; here an out-of-scope file would pass unseen).
        self._before: dict[str, State] = {}
        self._snapshots = _SharedSnapshot(self._state)
        # git's own files no agent may change (hooks, config): put back when one does,
        # and a failure for every attempt that ran meanwhile (which one did it is unknown)
        self.guard = GitGuard(git.common_dir) if git is not None else None
        self._tainted: dict[tuple[str, int], set[str]] = {}

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace:
        """The checkout itself, with its current state noted."""
        if self.guard is not None:
            self.guard.baseline()
        if task_id not in self._before:
            self._before[task_id] = await self._snapshots.fresh()
        self._tainted[(task_id, attempt)] = set()  # (after: what it found predates it)
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
        before = self._before.get(ws.task_id, EMPTY)
        after = await self._snapshots.fresh()
        changed = {p for p in before.dirty.keys() | after.dirty.keys()
                   if before.dirty.get(p) != after.dirty.get(p)}  # fmt: skip
        committed = await self._committed(before.head, after.head)
        files = sorted(changed | set(committed))
        if files and outputs:
            channel = set(output_paths(self.root, outputs))
            files = [p for p in files if p not in channel]
        outside = check_scope(files, writes)
        forbidden = [*protected_violations(files), *outside_symlinks(self.root, files)]
        problems = []
        if forbidden:
            problems.append(f"changed protected paths: {', '.join(forbidden)}")
        # Checked with the snapshot just taken, after its agent ended (`_state`).
        tainted = self._tainted.pop((ws.task_id, ws.attempt), set())
        git_files = [f".git/{rel}" for rel in sorted(tainted)]
        if git_files:
            forbidden += git_files
            problems.append(
                f"git's own files changed while this attempt ran ({', '.join(git_files)}), "
                "by its agent or one running beside it: plait cannot tell which (restored)"
            )
        if outside:
            problems.append(f"changed files outside its writes: {', '.join(outside)}")
        if committed:
            problems.append(
                f"the checked-out branch moved ({str(before.head)[:12]} -> "
                f"{str(after.head)[:12]}): what was committed counts as changed"
            )
        return Change(None, tuple(files), tuple(outside), tuple(dict.fromkeys(forbidden)),
                      tuple(problems), self.scope)  # fmt: skip

    async def close(self, ws: Workspace, *, keep: bool) -> None:
        """Nothing to remove: the checkout is the user's."""
        self._tainted.pop((ws.task_id, ws.attempt), None)

    def _check_git_files(self) -> None:
        """Put back the guarded git files changed since the last check, and mark every
        attempt open meanwhile (which of their agents did it cannot be told)."""
        if self.guard is None:
            return
        changed = self.guard.restore_shared()
        for tainted in self._tainted.values():
            tainted.update(changed)

    async def release_branch(self, task_id: str) -> None:
        """Nothing: no task branch is made in place."""

    async def _state(self) -> State:
        """HEAD's commit and each dirty path's content hash (nothing outside a repository)."""
        if self.git is None:
            return EMPTY
        # With each snapshot (shared by the attempts asking together), not per attempt.
        self._check_git_files()
        status = await self.git.run(
            "status",
            "--porcelain=v2",
            "-z",
            "--branch",
            "--untracked-files=all",
            "--no-renames",
            cwd=self.root,
            readonly=True,
        )
        head, paths = _status_v2(status.stdout)
        if not paths:
            return State(head, {})
        # Reading and hashing every dirty file can take a while: not on the loop.
        return State(head, await asyncio.to_thread(_hash_files, self.root, paths))

    async def _committed(self, before: str | None, after: str | None) -> list[str]:
        """The paths the commits between two HEADs changed (none if HEAD stayed)."""
        if before == after or before is None or after is None or self.git is None:
            return []
        diff = await self.git.run(
            "diff", "--name-only", "-z", "--no-renames", before, after,
            cwd=self.root, readonly=True, check=False,
        )  # fmt: skip
        return [p for p in diff.stdout.split("\0") if p]


def _status_v2(output: str) -> tuple[str | None, list[str]]:
    """HEAD's commit and the paths of `git status --porcelain=v2 -z --branch`."""
    head: str | None = None
    paths: list[str] = []
    records = iter(output.split("\0"))
    for record in records:
        kind = record[:2]
        if record.startswith("# branch.oid "):
            oid = record[len("# branch.oid ") :]
            head = None if oid == "(initial)" else oid
        elif kind == "1 ":  # 1 XY sub mH mI mW hH hI path
            paths.append(record.split(" ", 8)[8])
        elif kind == "2 ":  # a rename (not asked for): its path, then the original's
            paths.append(record.split(" ", 9)[9])
            paths.append(next(records, ""))
        elif kind == "u ":  # u XY sub m1 m2 m3 mW h1 h2 h3 path
            paths.append(record.split(" ", 10)[10])
        elif kind in ("? ", "! "):
            paths.append(record[2:])
    return head, [p for p in paths if p]


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
