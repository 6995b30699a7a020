"""The async driver: one TaskGroup, the only place the scheduler meets I/O.

`execute_run()` takes a validated plan and a prepared environment (store, lock,
workspaces, merge queue), starts what the scheduler says is ready, feeds each
task's outcome back to it, journals every transition before the step that
depends on it, and ends with the plan's verify on the result (`plait.endverify`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.analysis import Analysis
from plait.carryover import carry_over
from plait.endverify import (
    DEFAULT_VERIFY_TIMEOUT_S,
    Checker,
    CheckoutCheck,
    EndVerify,
    PlanDefaults,
    fixer_task,
)
from plait.journal import Journal
from plait.lanes import StepAside
from plait.merge import MergeQueue
from plait.model import Outcome, Plan, Task
from plait.planrules import FIXER_TASK_ID
from plait.ratejobs import RateLimitJobs
from plait.scheduler import Scheduler
from plait.store import Store
from plait.storeschema import run_exit_code
from plait.taskrun import (
    RunContext,
    TaskView,
    WorkspaceProvider,
    run_task,
)

__all__ = ["Driver", "EventSink", "PlanDefaults", "RunOutcome", "SlotPool", "fixer_task"]

EventSink = Callable[[Mapping[str, Any]], None]

#: Why a failed run's verify was skipped, as its record and its messages say.
NOT_RUN_REASON = "a task did not succeed"

log = logging.getLogger("plait.runner")


@dataclass
class RunOutcome:
    """How a run ended, for the CLI and the library API."""

    run_id: str
    status: str  # succeeded | failed | cancelled | interrupted
    outcomes: dict[str, Outcome]
    verify_ok: bool | None
    wall_s: float
    budget_hit: bool = False
    messages: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # task id → its output
    #: An interrupted run: the signal plait handled that stopped it ("SIGTERM",
    #: "SIGHUP"), None for a stop from outside (Ctrl-C, or the caller cancelling).
    stopped_by: str | None = None

    @property
    def exit_code(self) -> int:
        return run_exit_code(self.status)


class SlotPool:
    """Port-lease slots: each running task holds one, so dev servers never clash."""

    def __init__(self) -> None:
        self._free: list[int] = []
        self._next = 0

    def take(self) -> int:
        if self._free:
            return self._free.pop()
        self._next += 1
        return self._next - 1

    def give(self, slot: int) -> None:
        self._free.append(slot)


class Driver:
    """Runs one plan's tasks to their outcomes."""

    def __init__(
        self,
        plan: Plan,
        analysis: Analysis,
        store: Store,
        run_id: str,
        *,
        provider: WorkspaceProvider,
        merge: MergeQueue | None,
        base_commit: str,
        jobs: int,
        fail_fast: bool = False,
        done: Mapping[str, Outcome] | None = None,
        attempts_so_far: Mapping[str, int] | None = None,
        results: Mapping[str, dict[str, Any]] | None = None,
        sink: EventSink | None = None,
        defaults: PlanDefaults | None = None,
        checker: Checker | None = None,
    ) -> None:
        self.plan = plan
        self.analysis = analysis
        self.store = store
        self.run_id = run_id
        self.jobs = jobs
        self.limits = RateLimitJobs(jobs, self._backend_of)
        self.sink = sink
        self.journal = Journal(store)
        self.attempts_so_far = dict(attempts_so_far or {})
        self.started = time.monotonic()
        self.fail_fast = fail_fast
        self.fixer = fixer_task(plan, defaults or PlanDefaults())
        self.checker = checker or self._default_checker(merge)
        # On resume the fixer's row is among the recorded ones (every recorded task has
        # its attempt count): it is the fixer's, not a plan task's, and is not made again.
        done = dict(done or {})
        self.fixer_done = done.pop(FIXER_TASK_ID, None)
        self.fixer_recorded = FIXER_TASK_ID in self.attempts_so_far
        self.scheduler = Scheduler(
            plan.tasks.keys(),
            analysis.needs,
            analysis.exclusive,
            analysis.priority,
            jobs,
            continue_on_error=[t.id for t in plan.tasks.values() if t.continue_on_error],
            fail_fast=fail_fast,
            done=done,
        )
        self.ctx = RunContext(
            plan=plan,
            run_id=run_id,
            store=store,
            journal=self.journal,
            provider=provider,
            merge=merge,
            base_commit=base_commit,
            emit=self.emit,
            results=dict(results or {}),
            views={t.id: TaskView(t.id, t.agent) for t in plan.tasks.values()},
            on_rate_limit=self._throttle,
            on_success=self._unthrottle,
        )
        # A conflict re-run waiting for its lane lends its job slot to a ready task.
        self.aside = StepAside(
            jobs=lambda: self.scheduler_jobs,
            running=lambda: len(self.scheduler.running),
            changed=self._jobs_changed,
        )
        self.ctx.step_aside = self.aside.while_waiting
        self._group: asyncio.TaskGroup | None = None
        for task_id, outcome in done.items():
            self.ctx.views[task_id].state = outcome.value
        if self.fixer is not None and self.fixer_recorded:
            self.ctx.views[FIXER_TASK_ID] = TaskView(FIXER_TASK_ID, self.fixer.agent)
        if self.attempts_so_far:
            self._count_earlier_spending()
        self.slots = SlotPool()
        attach = getattr(sink, "attach", None)
        if attach is not None:
            attach(self)  # a live board reads the driver's views

    def _default_checker(self, merge: MergeQueue | None) -> Checker | None:
        """What runs the plan's verify at the end (None: the plan has none): the merge
        queue, on the integration branch; with `isolation: none` (nothing merged), the
        checkout the tasks changed, at the plan's root."""
        if self.plan.verify is None:
            return None
        if merge is not None:
            return merge
        return CheckoutCheck(
            (self.plan.root or Path.cwd()).resolve(),
            self.plan.verify,
            self.run_id,
            log_dir=self.store.home / "verify" / self.run_id,
            timeout_s=self.plan.verify_timeout_s or DEFAULT_VERIFY_TIMEOUT_S,
        )

    def _count_earlier_spending(self) -> None:
        """On resume, what the attempts before the interruption left (`plait.carryover`)."""

        def runs_again(task_id: str) -> bool:
            if task_id == FIXER_TASK_ID:
                return self.fixer_done is None
            return task_id in self.plan.tasks and self.scheduler.outcome(task_id) is None

        carry_over(self.ctx, runs_again)

    # --- events -------------------------------------------------------------

    def emit(self, kind: str, task: str | None = None, **data: Any) -> None:
        """Record an event (journalled with the next sync) and show it."""
        self.journal.write(lambda: self.store.add_event(self.run_id, kind, task, **data))
        if self.sink is not None:
            t = round(time.time(), 3)
            try:
                self.sink({"t": t, "run": self.run_id, "kind": kind, "task": task, **data})
            except Exception as exc:
                # Showing events is no part of the run: a failing callback must not end
                # it (and leave it interrupted). It is told once, then left out.
                self.sink = None
                log.warning("the event callback failed (%r); no more events go to it", exc)

    # --- rate limits ----------------------------------------------------------

    def _throttle(self, task_id: str) -> None:
        """An attempt of `task_id` was rate limited: one agent fewer than run now."""
        running = self.scheduler.running
        lowered = self.limits.limited(task_id, running, len(running) - self.aside.lent())
        if lowered is not None:
            self._jobs_changed()
            self.emit("jobs_lowered", None, jobs=lowered)

    def _unthrottle(self, task_id: str) -> None:
        """`task_id` succeeded: one more agent at once, up to `jobs`, if that says a
        limit lifted (`plait.ratejobs`)."""
        raised = self.limits.succeeded(task_id)
        if raised is not None:
            self.aside.admit()
            self._jobs_changed()
            self.emit("jobs_raised", None, jobs=raised)

    def _backend_of(self, task_id: str) -> str:
        """The backend of the task's agent (the verify fixer's too: it has a view)."""
        view = self.ctx.views.get(task_id)
        agent = self.plan.agents.get(view.agent) if view is not None else None
        return agent.backend if agent is not None else ""

    @property
    def scheduler_jobs(self) -> int:
        """The jobs limit now (lower than `jobs` while rate limits are hit)."""
        return self.limits.current

    def _jobs_changed(self) -> None:
        """Give the scheduler the jobs limit (with the slots lent) and start what fits."""
        self.scheduler.set_jobs(self.aside.limit())
        if self._group is not None:
            self._launch(self._group)

    # --- the loop -------------------------------------------------------------

    async def run(self) -> RunOutcome:
        """Run every task to an outcome, then the plan's verify."""
        # Without worktrees every agent writes the checkout itself: say so at the start.
        in_place = {"isolation": "none"} if self.ctx.merge is None else {}
        self.emit("run_started", None, jobs=self.jobs, tasks=len(self.plan.tasks), **in_place)
        self._record_ended(self._initially_ended())
        await self.journal.sync()
        # Each task, as it ends, gives its outcome to the scheduler and starts what that
        # made ready: the group ends once the last task has, with nothing left to start.
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._launch(group)
        self._group = None
        if self.scheduler.is_active():  # every task's end starts what it made ready
            unended = sorted(t for t in self.plan.tasks if self.scheduler.outcome(t) is None)
            raise RuntimeError(f"the run ended with tasks neither run nor skipped: {unended}")
        return await self._end()

    def _initially_ended(self) -> list[str]:
        return [t for t, o in self.scheduler.outcomes.items() if o is not Outcome.SUCCEEDED]

    def _launch(self, group: asyncio.TaskGroup) -> None:
        if self.ctx.budget_hit:
            return
        for task_id in self.scheduler.start_ready():
            task = self.plan.tasks[task_id]
            group.create_task(self._run_one(task, group), name=f"plait:{task_id}")

    async def _run_one(self, task: Task, group: asyncio.TaskGroup) -> None:
        slot = self.slots.take()
        try:
            first = self.attempts_so_far.get(task.id, 0) + 1
            outcome = await run_task(self.ctx, task, slot, first)
        finally:
            self.slots.give(slot)
        self.limits.ended(task.id)
        self.emit("task_finished", task.id, outcome=outcome.value)
        self._record_ended(self.scheduler.finish(task.id, outcome))
        if self.fail_fast and self.scheduler.run_failed and not self.ctx.stopped.is_set():
            # DESIGN §4.10: --fail-fast cancels the rest. The scheduler ended the tasks
            # not started; this ends the attempts running and stops any retry.
            self.ctx.stop()
            self.emit("stopping", None, reason=f"{task.id} {outcome.value} (--fail-fast)")
        if self.ctx.budget_hit:
            self._record_ended(self.scheduler.stop_starting(Outcome.CANCELLED))
        self.aside.admit()  # a re-run back from its lane first, then what is ready
        self._launch(group)
        # Nothing here waits for these rows, but `plait status` must see them now, not
        # when the next task starts (minutes away behind long agents). Asked for after
        # the launch: the tasks it started write their first rows before the commit
        # runs and share it, so the quick path still pays one commit per loop turn.
        self.journal.commit_soon()

    def _record_ended(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            outcome = self.scheduler.outcome(task_id)
            if outcome is None or task_id not in self.plan.tasks:
                continue
            view = self.ctx.views[task_id]
            if view.state == outcome.value:
                continue
            view.state = outcome.value
            waiting = [
                n
                for n in self.analysis.needs.get(task_id, ())
                if self.scheduler.outcome(n) not in (None, Outcome.SUCCEEDED)
            ]
            reason = f"needs {', '.join(sorted(waiting))}" if waiting else self._why_stopped()
            finished = time.time()
            self.journal.write(
                functools.partial(
                    self.store.update_task,
                    self.run_id,
                    task_id,
                    status=outcome.value,
                    finished_at=finished,
                    error=reason,
                )
            )
            self.emit("task_finished", task_id, outcome=outcome.value, error=reason)

    def _why_stopped(self) -> str:
        """Why a task the run stopped starting never started (each says so: the run's
        own message is one line at its end)."""
        if self.ctx.budget_hit and self.plan.budget_usd is not None:
            return f"not started: the budget of ${self.plan.budget_usd:.2f} was spent"
        if self.fail_fast and self.scheduler.run_failed:
            return "not started: a task failed, and --fail-fast stops the run"
        return "run stopped"

    # --- the end --------------------------------------------------------------

    async def _end(self) -> RunOutcome:
        outcomes = dict(self.scheduler.outcomes)
        verify_ok: bool | None = None
        failed = self.scheduler.run_failed
        if not failed and self.checker is not None:
            verify_ok = await EndVerify(
                self.ctx,
                self.checker,
                self.fixer,
                fixer_done=self.fixer_done,
                fixer_recorded=self.fixer_recorded,
                fixer_first_attempt=self.attempts_so_far.get(FIXER_TASK_ID, 0) + 1,
                take_slot=self.slots.take,
                result_name="the merged result" if self.ctx.merge is not None else "the checkout",
            ).run()
            failed = not verify_ok
        wall = time.monotonic() - self.started
        status = "failed" if failed else "succeeded"
        messages = []
        if self.scheduler.run_failed and self.checker is not None:
            # make -k's way: nothing is checked on a result known to be incomplete. The
            # run says so where status, report and apply look, not only here.
            messages.append(f"the plan's verify did not run: {NOT_RUN_REASON}")
            skipped = json.dumps({"ok": None, "status": "not run", "reason": NOT_RUN_REASON})
            self.journal.write(lambda: self.store.update_run(self.run_id, verify=skipped))
        if self.ctx.budget_hit:
            status = "failed"
            messages.append(
                f"budget of ${self.plan.budget_usd:.2f} spent (${self.ctx.spent_usd:.2f}); "
                "no new attempts were started"
            )
        self.journal.write(
            lambda: self.store.update_run(
                self.run_id, status=status, finished_at=time.time(), wall_s=wall
            )
        )
        self.emit("run_finished", None, status=status, wall_s=round(wall, 3))
        await self.journal.sync()
        outputs = {task: str(values.get("output", "")) for task, values in self.ctx.results.items()}
        return RunOutcome(
            self.run_id,
            status,
            outcomes,
            verify_ok,
            wall,
            budget_hit=self.ctx.budget_hit,
            messages=messages,
            outputs=outputs,
        )
