"""One task, through its attempts, to its outcome: retries, re-runs, merge, rows.

The runner starts `run_task()` when the scheduler says the task may start, and
turns the `Outcome` it returns into the scheduler's next step. Everything a task
decides on its own lives here: retries with the failure appended to the prompt,
conflict re-runs from the new integration tip, rate-limit waits that do not count
as failures, the budget that stops new attempts, the merge of a good attempt and
the task's final row. One attempt's own work is `plait.attempt`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from plait.agents import get_backend
from plait.agents.base import CUT_NOTE, AgentResult, AttemptStatus, read_output_file
from plait.attempt import STOPPED_ERROR, run_attempt
from plait.attemptjudge import AttemptFailure
from plait.carryover import PendingMerge
from plait.journal import Journal
from plait.lanes import FileLanes
from plait.merge import MergeQueue
from plait.model import Agent, Outcome, Plan, Task
from plait.store import Store
from plait.taskmerge import merge_attempt, still_pending
from plait.workspace import Change, Workspace

RATE_LIMIT_BACKOFF_S = (5.0, 15.0, 45.0, 120.0, 300.0)
#: Rate-limit waits one task may take. A limit that never lifts (or a refusal read as
#: one) would otherwise retry for ever; the vendors' own resets take a few waits.
RATE_LIMIT_MAX_WAITS = 20


class WorkspaceProvider(Protocol):
    """Where attempts run: a git worktree each, or the checkout itself."""

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace: ...

    async def collect(
        self,
        ws: Workspace,
        *,
        writes: tuple[str, ...],
        message: str,
        outputs: Sequence[str | Path] = (),
    ) -> Change: ...

    async def close(self, ws: Workspace, *, keep: bool) -> None: ...

    async def release_branch(self, task_id: str) -> None:
        """Delete the task's branch if it holds nothing unmerged (after a merge made
        with no workspace open: a resumed task's pending merge)."""
        ...


@dataclass
class TaskView:
    """What the live board shows of one task; mutated in place by the run."""

    task_id: str
    agent: str
    state: str = "waiting"
    attempt: int = 0
    started: float | None = None  # monotonic
    ended: float | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    last_line: str = ""


@dataclass
class RunContext:
    """What every task of one run shares."""

    plan: Plan
    run_id: str
    store: Store
    journal: Journal
    provider: WorkspaceProvider
    merge: MergeQueue | None  # None: isolation none, nothing to merge
    base_commit: str
    emit: Callable[..., None]  # emit(kind, task=None, **data): event to store + display
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # template values
    views: dict[str, TaskView] = field(default_factory=dict)
    port_base: int = 41000
    spent_usd: float = 0.0
    budget_hit: bool = False
    #: On resume: (retries, conflict re-runs) each task used before the interruption.
    tries_used: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: On resume: the note for each task whose last attempt failed or conflicted.
    resumed_notes: dict[str, str] = field(default_factory=dict)
    #: On resume: the files each task whose last attempt conflicted holds for its re-run.
    resumed_lanes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: On resume: the tasks stopped while their finished attempt waited for its merge.
    pending_merges: dict[str, PendingMerge] = field(default_factory=dict)
    #: child_env() without the attempt's own variables, per (agent, backend, task env).
    env_bases: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, str]] = field(
        default_factory=dict
    )
    #: Told the task's id when one of its attempts was rate limited, and when it succeeded.
    on_rate_limit: Callable[[str], None] = lambda task_id: None
    on_success: Callable[[str], None] = lambda task_id: None
    #: Set when the run stops its tasks (--fail-fast after a failure): no attempt
    #: starts after it, and the agents running are ended (`plait.attempt`).
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    #: The tasks awaiting an agent right now (`plait.attempt`): `stop` cancels them.
    running_agents: set[asyncio.Task[Any]] = field(default_factory=set)
    #: Files that conflict re-runs hold, one re-run at a time per file (`plait.lanes`).
    lanes: FileLanes = field(default_factory=FileLanes)
    #: Around a wait that runs no agent: lends the task's job slot meanwhile
    #: (`plait.lanes.StepAside`; the driver sets it).
    step_aside: Callable[[], contextlib.AbstractAsyncContextManager[None]] = contextlib.nullcontext

    #: Ends every rate-limit wait early: set when the run stops, or the budget is spent
    #: (a wait for a reset hours away would end in the task being cancelled anyway).
    waits_over: asyncio.Event = field(default_factory=asyncio.Event)

    def stop(self) -> None:
        """Stop the run's tasks: no attempt starts any more, the agents running end."""
        self.stopped.set()
        self.waits_over.set()
        for waiting in self.running_agents:
            waiting.cancel()

    def agent(self, name: str) -> Agent:
        return self.plan.agents[name]

    def over_budget(self) -> bool:
        budget = self.plan.budget_usd
        return budget is not None and self.spent_usd >= budget


async def run_task(
    ctx: RunContext, task: Task, slot: int, first_attempt: int, notes: list[str] | None = None
) -> Outcome:
    """Run `task` until it succeeds (merged) or runs out of retries and re-runs.

    `notes` are appended to the first attempt's prompt after rendering.
    """
    view = ctx.views[task.id]
    agent = ctx.agent(task.agent)
    backend = get_backend(agent.backend)
    notes = list(notes or ([ctx.resumed_notes[task.id]] if task.id in ctx.resumed_notes else []))
    # Retries and re-runs spent before an interruption stay spent: resuming must not
    # hand a task that kept failing a fresh set of attempts each time.
    used_retries, used_reruns = ctx.tries_used.get(task.id, (0, 0))
    retries_left = max(0, task.retries - used_retries)
    reruns_left = max(0, ctx.plan.max_conflict_reruns - used_reruns)
    rate_limit_waits = 0
    attempt = first_attempt - 1
    kind = "first" if first_attempt == 1 else "resume"
    # What the next attempt holds (see below): on resume, a re-run that was due still is.
    lane_files = ctx.resumed_lanes.get(task.id, ()) if first_attempt > 1 else ()
    pending = await still_pending(ctx, task.id) if first_attempt > 1 else None
    kept: Workspace | None = None  # the workspace of a failed attempt, kept to look at
    while True:
        # A re-run after a conflict holds the files it conflicted on until its merge,
        # waiting here for a re-run that holds one of them (the run may stop meanwhile).
        lane = contextlib.AsyncExitStack()
        if lane_files:  # (most attempts hold nothing: no lock work on the quick path)
            view.state = "waiting"  # (not "merging", its last state, while it waits)
            ctx.journal.write(lambda: ctx.store.update_task(ctx.run_id, task.id, status="waiting"))
            ctx.journal.commit_soon()  # `plait status` shows it while it waits
            if ctx.lanes.busy(lane_files):  # a ready task runs in its slot meanwhile
                try:
                    async with ctx.step_aside():
                        await lane.enter_async_context(ctx.lanes.hold(lane_files))
                except BaseException:  # cancelled in line for a slot: let go of the lane
                    await lane.aclose()
                    raise
            else:
                await lane.enter_async_context(ctx.lanes.hold(lane_files))
        lane_files = ()
        if ctx.over_budget() and pending is None:  # (a merge spends nothing)
            await lane.aclose()
            ctx.budget_hit = True
            _finish_task(ctx, task, Outcome.CANCELLED, error="budget spent before this attempt")
            return Outcome.CANCELLED
        if ctx.stopped.is_set():
            await lane.aclose()
            _finish_task(ctx, task, Outcome.CANCELLED, error=STOPPED_ERROR)
            return Outcome.CANCELLED
        try:
            result: AgentResult | None
            failure: AttemptFailure | None
            change: Change | None
            ws: Workspace | None
            ended_at: float | None = None  # when the attempt's agent ended, if not just now
            if pending is not None:  # resumed: its attempt's work is done, only its merge is not
                attempt, result, failure = pending.attempt, pending.result, None
                change, ws, ended_at = pending.change, None, pending.finished_at
                view.attempt, pending = attempt, None
            else:
                attempt += 1
                view.attempt = attempt
                result, failure, change, ws = await run_attempt(
                    ctx, task, agent, backend, slot, attempt, kind, notes
                )
            limited = result is not None and result.status is AttemptStatus.RATE_LIMITED
            if result is not None and limited and rate_limit_waits >= RATE_LIMIT_MAX_WAITS:
                failure = AttemptFailure(
                    Outcome.ERRORED,
                    f"still rate limited after {rate_limit_waits} waits, so plait gave up: "
                    f"{result.error}",
                    "",
                )
            elif result is not None and limited:
                # Not a failure: wait, with fewer agents at once, and run it again.
                ctx.on_rate_limit(task.id)
                wait = (
                    result.retry_after_s
                    or RATE_LIMIT_BACKOFF_S[min(rate_limit_waits, len(RATE_LIMIT_BACKOFF_S) - 1)]
                )
                rate_limit_waits += 1
                view.state = "rate-limited"
                ctx.emit("rate_limited", task.id, attempt=attempt, wait_s=wait)
                # `plait status` says so too (the row said "running" for hours of waits).
                again = _clock(time.time() + wait)
                why = f"rate limited; next attempt at {again}"
                ctx.journal.write(
                    functools.partial(
                        ctx.store.update_task, ctx.run_id, task.id, status="waiting", error=why
                    )
                )
                ctx.journal.commit_soon()
                if ws is not None:
                    await ctx.provider.close(ws, keep=False)
                await lane.aclose()  # others need not wait through this wait
                # The wait ends early when the run stops or the budget is spent: the loop's
                # top then cancels the task. Its job slot runs a ready task meanwhile (the
                # jobs limit is one lower: "one agent fewer", not none).
                async with ctx.step_aside():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ctx.waits_over.wait(), wait)
                kind = "rate_limit"
                continue
            if failure is None and change is not None:
                # Read before the workspace is closed: closing removes the `output` file.
                output = _task_output(ctx, task, attempt, result, ws)
                merged = await merge_attempt(ctx, task, attempt, change, output, result, ended_at)
                if isinstance(merged, AttemptFailure):
                    failure = merged
                else:
                    if ws is not None:
                        await ctx.provider.close(ws, keep=False)
                    else:  # a pending merge: what close() would do to its branch
                        await ctx.provider.release_branch(task.id)
                    ctx.results[task.id] = {
                        "output": output,
                        "commit": merged or "",
                        "branch": ctx.merge.branch if ctx.merge is not None else "",
                        "changed_files": list(change.changed_files),
                    }
                    ctx.on_success(task.id)
                    _finish_task(
                        ctx,
                        task,
                        Outcome.SUCCEEDED,
                        output=output,
                        commit=merged,
                        changed_files=list(change.changed_files),
                        merged=merged is not None,
                        scope_violations=list(change.scope_violations),
                    )
                    return Outcome.SUCCEEDED
            assert failure is not None
            kept = None
            if ws is not None:
                keep = failure.outcome is not Outcome.CONFLICTED
                await ctx.provider.close(ws, keep=keep)
                kept = ws if keep and ws.branch else None  # (in place: nothing to keep)
            if failure.outcome is Outcome.CONFLICTED and reruns_left > 0:
                reruns_left -= 1
                notes = [failure.note]
                kind = "conflict"
                lane_files = failure.conflicts
                ctx.emit("conflict_rerun", task.id, attempt=attempt, error=failure.error)
                continue
            if failure.outcome is Outcome.FAILED and retries_left > 0:
                retries_left -= 1
                notes = [failure.note]
                kind = "retry"
                ctx.emit("retry", task.id, attempt=attempt, error=failure.error)
                continue
        finally:
            await lane.aclose()
        refused: dict[str, Any] = {}
        if change is not None:  # what the last attempt did, so status shows what was refused
            refused = {
                "changed_files": list(change.changed_files),
                "scope_violations": list(change.scope_violations),
            }
        if kept is not None:  # where its last attempt's work is, for `plait status`
            ctx.journal.write(
                functools.partial(
                    ctx.store.note_workspace, ctx.run_id, task.id, kept.attempt, str(kept.path)
                )
            )
            refused["branch"] = kept.branch
        _finish_task(ctx, task, failure.outcome, error=failure.error, **refused)
        return failure.outcome


def _clock(moment: float) -> str:
    """A local time to show: with its date unless it is today (a vendor's reset may be
    days away, and "at 08:31" then reads as the past)."""
    local = time.localtime(moment)
    same_day = time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d")
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", local)


def _task_output(
    ctx: RunContext, task: Task, attempt: int, result: AgentResult | None, ws: Workspace | None
) -> str:
    if task.output_file and ws is not None:
        # As the agent wrote it (line endings too), under the cap stdout has
        written = read_output_file(os.fspath(ws.path / task.output_file))
        if written is not None:
            return written[0] + (CUT_NOTE if written[1] else "")
    return result.output if result is not None else ""


def _finish_task(ctx: RunContext, task: Task, outcome: Outcome, **fields: Any) -> None:
    view = ctx.views[task.id]
    view.state = (
        outcome.value
        if outcome is not Outcome.SUCCEEDED
        else ("merged" if fields.get("merged") else "succeeded")
    )
    view.ended = time.monotonic()
    cost, tokens = view.cost_usd, view.tokens
    finished = time.time()
    ctx.journal.write(
        lambda: ctx.store.update_task(
            ctx.run_id,
            task.id,
            status=outcome.value,
            finished_at=finished,
            cost_usd=cost,
            tokens=tokens,
            **fields,
        )
    )
