"""Judging an attempt: may what its agent did be merged?

An attempt fails if its agent failed, if it changed paths no agent may touch, if it
wrote outside its `writes` (when the plan enforces scope), or if the task's own
`verify` fails in its workspace. Each failure carries a note for the next attempt's
prompt, saying what went wrong and ending with the last lines of the evidence.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plait import proc
from plait.agents.base import AgentRequest, AgentResult, AttemptStatus
from plait.model import Outcome, ScopePolicy, Task
from plait.scope import check_scope
from plait.workspace import Change, Workspace

if TYPE_CHECKING:
    from plait.taskrun import RunContext

__all__ = [
    "AttemptFailure",
    "attribute_in_place",
    "judge",
    "missing_output",
    "note",
    "task_verify",
]

NOTE_TAIL_LINES = 60  # how much of a failure's output goes into the next prompt


@dataclass
class AttemptFailure:
    """Why an attempt did not produce a mergeable result."""

    outcome: Outcome
    error: str
    note: str  # appended to the next attempt's prompt
    conflicts: tuple[str, ...] = ()  # the files a merge conflicted on


def attribute_in_place(ctx: RunContext, task: Task, change: Change, since: float) -> Change:
    """isolation none: a path another task running meanwhile may write is not this task's.

    In place, every attempt sees the whole checkout change, including what tasks running
    beside it wrote. Those paths are dropped from its scope violations; if one of those
    tasks has no `writes` (it may write anywhere), what is left cannot be pinned on this
    task either and becomes a warning.
    """
    if ctx.merge is not None or not change.scope_violations:
        return change
    others = [
        ctx.plan.tasks[view.task_id]
        for view in ctx.views.values()
        if view.task_id != task.id
        and view.task_id in ctx.plan.tasks
        and view.started is not None
        and (view.ended is None or view.ended >= since)
    ]
    if not others:
        return change
    scoped = [o for o in others if o.writes]
    kept = [p for p in change.scope_violations if all(check_scope([p], o.writes) for o in scoped)]
    if kept and len(scoped) < len(others):
        ctx.emit("scope_warning", task.id, files=kept)
        kept = []
    problems = change.problems
    if kept:  # no task may write them: it fails, and so does each one running beside it
        names = ", ".join(sorted(o.id for o in others))
        problems = (*problems, f"{BESIDE} ({names}): which agent wrote them cannot be told")
    return dataclasses.replace(change, scope_violations=tuple(kept), problems=problems)


#: Opens the problem `attribute_in_place` adds when other tasks ran in the checkout.
BESIDE = "in place, other tasks ran beside it"


def judge(
    ctx: RunContext, task: Task, result: AgentResult, change: Change
) -> AttemptFailure | None:
    """Why the attempt cannot be merged as it is (None: it can, `verify` aside)."""
    if not result.ok:
        outcome = Outcome.ERRORED if result.status is AttemptStatus.ERRORED else Outcome.FAILED
        return AttemptFailure(
            outcome,
            result.error or result.status.value,
            note(f"The previous attempt failed: {result.error}", result.output),
        )
    if change.protected_violations:
        paths = ", ".join(change.protected_violations)
        why = "; ".join(change.problems)  # "history" alone does not say what happened
        return AttemptFailure(
            Outcome.FAILED,
            f"forbidden changes: {paths}" + (f" — {why}" if why else ""),
            note("The previous attempt changed files it must never touch", paths),
        )
    if change.scope_violations and ctx.plan.scope is ScopePolicy.ENFORCE:
        paths = ", ".join(change.scope_violations)
        allowed = ", ".join(task.writes)
        beside = next((p for p in change.problems if p.startswith(BESIDE)), "")
        return AttemptFailure(
            Outcome.FAILED,
            f"wrote outside its scope: {paths}" + (f" ({beside})" if beside else ""),
            note(f"The previous attempt wrote outside the files you may change ({allowed})", paths),
        )
    if change.scope_violations:
        ctx.emit("scope_warning", task.id, files=list(change.scope_violations))
    return None


def missing_output(task: Task, workspace: Path) -> AttemptFailure | None:
    """The plan names the task's `output` file and the agent did not write it: its
    dependants would be handed its stdout for the contract they were promised."""
    if task.output_file is None or (workspace / task.output_file).is_file():
        return None
    return AttemptFailure(
        Outcome.FAILED,
        f"did not write its output file {task.output_file} (the plan's `output`)",
        note(
            f"The previous attempt did not write {task.output_file}: write this task's "
            "result there, the tasks that need it read it from that file",
            "",
        ),
    )


async def task_verify(
    ctx: RunContext, task: Task, request: AgentRequest, ws: Workspace
) -> AttemptFailure | None:
    """Run the task's own `verify` in the attempt's workspace; why it failed, or None."""
    assert task.verify is not None
    started = time.monotonic()
    try:
        res = await proc.run_process(
            list(task.verify),
            cwd=ws.path,
            env=request.env,
            stdin=None,
            log_path=request.verify_log_file,
            timeout_s=task.timeout_s,
            marker=f"{ctx.run_id}/{task.id}/{request.attempt}/verify",
        )
    except OSError as exc:  # not installed, not executable, not in the worktree: it fails
        ctx.emit("verify_finished", task.id, attempt=request.attempt, ok=False, duration_s=0.0)
        return AttemptFailure(
            Outcome.FAILED,
            f"verify {' '.join(task.verify)} could not start: {exc}",
            note(f"The check `{' '.join(task.verify)}` could not start", str(exc)),
        )
    ok = res.returncode == 0
    ctx.emit(
        "verify_finished",
        task.id,
        attempt=request.attempt,
        ok=ok,
        duration_s=round(time.monotonic() - started, 3),
    )
    if ok:
        return None
    tail = res.tail(NOTE_TAIL_LINES)
    return AttemptFailure(
        Outcome.FAILED,
        f"verify {' '.join(task.verify)} failed",
        note(f"The check `{' '.join(task.verify)}` failed after your last attempt", tail),
    )


def note(headline: str, detail: str) -> str:
    """The note for the next attempt's prompt: a headline and the end of `detail`."""
    lines = detail.strip().splitlines()[-NOTE_TAIL_LINES:]
    body = "\n".join(lines)
    return (
        f"## Note from plait\n\n{headline}.\n\n```\n{body}\n```"
        if body
        else f"## Note from plait\n\n{headline}."
    )
