"""The end of a run (DESIGN §4.11): the plan's verify on the result, and the fixer.

After the last task, the plan's `verify` runs on what the run made: the tip of the
integration branch (`plait.merge.MergeQueue.verify`, in a checkout of its own), or,
with `isolation: none`, the checkout the tasks worked in (`CheckoutCheck`). If it
fails and the plan names `on_verify_failure`, the fixer runs like any task, told the
failure, and the check runs again. A resumed run picks up where the killed one
stopped: after a fixer that ended, only the check after it is left.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from plait import proc
from plait.gitrun import scrubbed_env
from plait.merge import TAIL_CHARS, VerifyResult
from plait.model import Command, Outcome, Plan, Task
from plait.planrules import FIXER_TASK_ID
from plait.taskrun import RunContext, TaskView, run_task

#: How long the plan's verify may take when the plan gives no `defaults.timeout`.
DEFAULT_VERIFY_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class PlanDefaults:
    """What the plan file's `defaults:` gives a task that does not set it, for what the
    plan runs besides its tasks (the fixer); `plait.session` reads it from the file."""

    timeout_s: float | None = None
    retries: int = 0
    env: Mapping[str, str] = field(default_factory=dict)


def fixer_task(plan: Plan, defaults: PlanDefaults) -> Task | None:
    """The `on_verify_failure` fixer as a task: it runs like any task, so it takes the
    plan's defaults for its time limit, retries and environment (None: no fixer).

    Its scope is not limited: it mends whatever the plan's verify found, anywhere.
    """
    fixer = plan.on_verify_failure
    if fixer is None:
        return None
    return Task(
        id=FIXER_TASK_ID,
        prompt=fixer.prompt,
        agent=fixer.agent,
        timeout_s=defaults.timeout_s,
        retries=defaults.retries,
        env=dict(defaults.env),
    )


class Checker(Protocol):
    """Runs the plan's verify on the run's result (`plait.merge.MergeQueue` is one)."""

    async def verify(self) -> VerifyResult: ...

    async def tip(self) -> str | None: ...


class CheckoutCheck:
    """`isolation: none`: the plan's verify runs in the checkout the tasks changed.

    As on the integration branch: the same environment (plait's, without git's
    redirecting variables), time limit and log folder. The checkout is not a commit:
    its result records no commit, and `tip()` is None, so a resumed run never takes a
    failure recorded before for what the checkout holds now; it checks again.
    """

    def __init__(
        self,
        root: Path,
        command: Command,
        run_id: str,
        *,
        log_dir: Path,
        timeout_s: float | None = None,
    ) -> None:
        self.root = root
        self.command = command
        self.run_id = run_id
        self.log_dir = log_dir
        self.timeout_s = timeout_s
        self._serial = itertools.count(1)

    async def tip(self) -> str | None:
        return None

    async def verify(self) -> VerifyResult:
        """Run the plan's verify with cwd = the checkout's root."""
        name = f"checkout-{next(self._serial)}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        started = time.monotonic()
        try:
            result = await proc.run_process(
                list(self.command), cwd=self.root, env=scrubbed_env(), stdin=None,
                log_path=log, timeout_s=self.timeout_s, marker=f"{self.run_id}/verify/{name}",
            )  # fmt: skip
        except proc.SpawnError as exc:
            return VerifyResult(False, f"verify could not start: {exc}", 0.0, "", log)
        duration = time.monotonic() - started
        tail = result.log_tail[-TAIL_CHARS:]
        if result.timed_out:
            tail += f"\n(verify timed out after {self.timeout_s}s)"
        ok = result.returncode == 0 and not result.timed_out
        return VerifyResult(ok, tail, duration, "", log)


class EndVerify:
    """The plan's verify at the end of a run and, when it fails, the fixer."""

    def __init__(
        self,
        ctx: RunContext,
        checker: Checker,
        fixer: Task | None,
        *,
        fixer_done: Outcome | None,
        fixer_recorded: bool,
        fixer_first_attempt: int,
        take_slot: Callable[[], int],
        result_name: str = "the merged result",
    ) -> None:
        self.ctx = ctx
        self.checker = checker
        self.fixer = fixer
        self.fixer_done = fixer_done  # the fixer's outcome recorded before a resume
        self.fixer_recorded = fixer_recorded  # its row exists (it started before a resume)
        self.fixer_first_attempt = fixer_first_attempt
        self.take_slot = take_slot
        self.result_name = result_name  # what the check runs on, as the fixer is told

    async def run(self) -> bool:
        """The plan's verify on the result; on failure, the fixer, then again.

        A resumed run picks up where the first process stopped: after a fixer that
        ended, only the check after it is left; with the fixer interrupted, it runs
        again (a new attempt of the same row), told the failure recorded before.
        """
        ctx, fixer = self.ctx, self.fixer
        if self.fixer_done is not None:
            return self.fixer_done is Outcome.SUCCEEDED and (await self._check(True)).ok
        failure = await self._recorded_failure() if self.fixer_recorded and fixer else None
        if failure is None:
            result = await self._check()
            if result.ok or fixer is None:
                return result.ok
            failure = result.output_tail
        assert fixer is not None
        # The failure output goes in as a note, after rendering: it is data, not a template.
        notes = [f"The plan's checks failed on {self.result_name}:\n\n```\n{failure}\n```"]
        if FIXER_TASK_ID in ctx.resumed_notes:  # its last attempt failed, then a crash
            notes.append(ctx.resumed_notes[FIXER_TASK_ID])
        ctx.views.setdefault(fixer.id, TaskView(fixer.id, fixer.agent))
        if not self.fixer_recorded:
            ctx.journal.write(lambda: ctx.store.add_task(ctx.run_id, fixer.id))
        ctx.emit("fixer_started", fixer.id)
        first = self.fixer_first_attempt
        outcome = await run_task(ctx, fixer, self.take_slot(), first, notes=notes)
        ctx.emit("task_finished", fixer.id, outcome=outcome.value)
        await ctx.journal.sync()
        return outcome is Outcome.SUCCEEDED and (await self._check(True)).ok

    async def _check(self, after_fixer: bool = False) -> VerifyResult:
        """Run the plan's verify on the result and record how it went (`after_fixer`:
        this is the check again after the fixer, the first having failed)."""
        self.ctx.emit("verify_started", None)
        await self.ctx.journal.sync()
        result = await self.checker.verify()
        self._record(result.ok, result.output_tail, result.commit or None, after_fixer)
        return result

    async def _recorded_failure(self) -> str | None:
        """The failure output the interrupted run recorded, if its verify failed on
        what the result still is (None: the check must run again to know)."""
        recorded = self.ctx.store.run(self.ctx.run_id).verify
        if not isinstance(recorded, dict) or recorded.get("ok") is not False:
            return None
        tip = await self.checker.tip()
        if tip is None or recorded.get("commit") != tip:
            return None
        return str(recorded.get("output", ""))

    def _record(self, ok: bool, tail: str, commit: str | None, after_fixer: bool) -> None:
        ctx = self.ctx
        record = {"ok": ok, "commit": commit, "output": tail[-4000:]}
        if after_fixer:
            record["after_fixer"] = True
        payload = json.dumps(record)
        ctx.journal.write(lambda: ctx.store.update_run(ctx.run_id, verify=payload))
        ctx.emit("verify_finished", None, ok=ok, commit=commit)
