"""The merge queue: the one place where task results enter the integration branch.

A merge is three plumbing steps that never touch a checkout: `git merge-tree
--write-tree` computes the merged tree in memory (git finds the merge base),
`git commit-tree` makes the merge commit, and `git update-ref <branch> <new>
<old>` moves the integration branch only if nothing else moved it meanwhile
(compare-and-swap). A kill at any point leaves the branch at either the old or
the new commit. A conflict is an outcome (the task is re-run on the new tip),
not an exception.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from plait import proc
from plait.errors import GitError
from plait.git import ZERO_OID, Git
from plait.gitrun import scrubbed_env
from plait.model import Command

#: How often a merge is recomputed when the branch moved under it (the queue is
#: the only writer, so losing the swap at all means something else wrote it).
MAX_CAS_ATTEMPTS = 5
TAIL_CHARS = 8_000

MergeStatus = Literal["merged", "empty", "conflict", "verify_failed"]


@dataclass(frozen=True)
class MergeResult:
    """How one merge ended."""

    status: MergeStatus
    commit: str | None  # the integration tip after the merge (None: conflict/verify_failed)
    conflicts: tuple[str, ...] = ()  # conflicted paths
    output: str = ""  # git's conflict messages, or the tail of the failed verify
    log_file: Path | None = None  # the failed verify's whole log

    @property
    def ok(self) -> bool:
        return self.status in ("merged", "empty")


@dataclass(frozen=True)
class VerifyResult:
    """The plan's verify, run on one commit of the integration branch."""

    ok: bool
    output_tail: str
    duration_s: float
    commit: str
    log_file: Path | None = None


class MergeQueue:
    """Merges task commits into one integration branch, one at a time."""

    def __init__(
        self,
        git: Git,
        integration_branch: str,
        *,
        verify: Command | None = None,
        verify_each_merge: bool = False,
        verify_dir: Path | None = None,
        env: Mapping[str, str] | None = None,
        verify_timeout_s: float | None = None,
    ) -> None:
        self.git = git
        self.branch = integration_branch
        # Markers of verify processes start with the run id, so that resume's sweep
        # (`kill_marked("<run>/", prefix=True)`) ends a verify orphaned by a crash too.
        self.run_id = integration_branch.removeprefix("plait/")
        self.ref = f"refs/heads/{integration_branch}"
        self.verify_command = verify
        self.verify_each_merge = verify_each_merge
        # Outside the user's working tree, like workspaces: watchers never see it.
        self.verify_dir = verify_dir or git.common_dir / "plait" / "verify"
        self.env = dict(env) if env is not None else scrubbed_env()
        self.verify_timeout_s = verify_timeout_s
        self._lock = asyncio.Lock()
        self._serial = itertools.count(1)

    async def tip(self) -> str:
        """The integration branch's commit: the one the queue last wrote.

        The queue is the branch's only writer, so it does not trust whatever the
        branch points at now: the first reading (before any agent ran) is adopted,
        every later one must be what the queue wrote. A branch found elsewhere was
        moved by an agent; it is put back, and the attempts open meanwhile are told
        (`RefLedger.foreign`), so that nothing is ever built on the foreign commit.
        """
        ledger = self.git.ledger
        for _ in range(MAX_CAS_ATTEMPTS):
            current = await self.git.rev_parse(self.ref)
            if not ledger.knows(self.ref):
                tip = await self.git.rev_parse_commit(self.ref)
                ledger.wrote(self.ref, tip)
                return tip
            known = ledger.expected(self.ref)
            if current is not None and (current == known or ledger.vouches(self.ref, current)):
                return current
            if known is None:
                break
            old = current or ZERO_OID
            if await self.git.update_ref(self.ref, known, old, message="plait: put back"):
                moved = (current or "(deleted)")[:12]
                ledger.foreign(self.ref, f"{moved}, restored to {known[:12]} by the merge queue")
                return known
        why = f"{self.branch} keeps moving: something besides plait writes it"
        raise GitError(["update-ref", self.ref], 1, why)

    async def merge(self, task_commit: str, *, message: str) -> MergeResult:
        """Merge `task_commit` into the integration branch (serialised with other merges)."""
        async with self._lock:
            for _ in range(MAX_CAS_ATTEMPTS):
                tip = await self.tip()
                if await self.git.is_ancestor(task_commit, tip):
                    return MergeResult("empty", tip)
                merged = await self.git.merge_tree(tip, task_commit)
                if not merged.clean:
                    return MergeResult("conflict", None, merged.conflicts, merged.messages)
                commit = await self.git.commit_tree(merged.tree, [tip, task_commit], message)
                if self.verify_each_merge and self.verify_command is not None:
                    checked = await self.verify(commit=commit)
                    if not checked.ok:
                        return MergeResult(
                            "verify_failed", None, (), checked.output_tail, checked.log_file
                        )
                title = message.splitlines()[0] if message.strip() else "merge"
                if await self.git.update_ref(self.ref, commit, tip, message=f"plait: {title}"):
                    return MergeResult("merged", commit)
            raise GitError(
                ["update-ref", self.ref],
                1,
                f"{self.branch} kept moving during the merge: something besides plait writes it",
            )

    async def verify(
        self, *, commit: str | None = None, log_file: Path | None = None
    ) -> VerifyResult:
        """Run the plan's verify on `commit` (default: the tip) in a worktree of its own."""
        commit = commit or await self.tip()
        if self.verify_command is None:
            return VerifyResult(True, "no verify command", 0.0, commit, None)
        path = self.verify_dir / f"verify-{commit[:12]}-{next(self._serial)}"
        log = log_file or path.with_name(f"{path.name}.log")
        started = time.monotonic()
        async with self.git.write_lock:
            if path.exists():
                # Left by a killed run: unregister it as well as deleting it, or the add
                # below fails with "missing but already registered worktree".
                await self.git.run(
                    "worktree", "remove", "--force", "--force", str(path), check=False
                )
                shutil.rmtree(path, ignore_errors=True)
                await self.git.run("worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            await self.git.run("worktree", "add", "--no-checkout", "--detach", str(path), commit)
        try:
            await self.git.run("read-tree", "--reset", "-u", "HEAD", cwd=path)
            try:
                result: proc.ProcResult | None = await proc.run_process(
                    list(self.verify_command), cwd=path, env=self.env, stdin=None, log_path=log,
                    timeout_s=self.verify_timeout_s, marker=f"{self.run_id}/verify/{path.name}",
                )  # fmt: skip
                spawn_error = ""
            except proc.SpawnError as exc:
                result, spawn_error = None, f"verify could not start: {exc}"
        finally:
            async with self.git.write_lock:
                removed = await self.git.run(
                    "worktree", "remove", "--force", "--force", str(path), check=False
                )
                if not removed.ok:
                    shutil.rmtree(path, ignore_errors=True)
                    await self.git.run("worktree", "prune")
        duration = time.monotonic() - started
        if result is None:
            return VerifyResult(False, spawn_error, duration, commit, log)
        tail = result.log_tail[-TAIL_CHARS:]
        if result.timed_out:
            tail += f"\n(verify timed out after {self.verify_timeout_s}s)"
        ok = result.returncode == 0 and not result.timed_out
        return VerifyResult(ok, tail, duration, commit, log)
