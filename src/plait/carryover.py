"""What a resumed run carries over from the attempts made before its interruption.

DESIGN §5: finished tasks never run again, and a task cut short starts again with
what its earlier attempts left: the retries and conflict re-runs they used, the note
its next attempt gets when the last one failed or conflicted (made again from the
recorded error and log), and, for a re-run after a conflict that was due, the files
it holds while it runs (`plait.lanes`). A task stopped while its finished attempt
waited for its merge (behind other merges, or in `verify_each_merge`'s verify) is
merged from that attempt's commit (`PendingMerge`): its agent does not run again.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.agents.base import (
    LOG_SUFFIX,
    VERIFY_LOG_SUFFIX,
    AgentResult,
    AttemptStatus,
    Usage,
    attempt_file,
)
from plait.attemptjudge import note
from plait.model import ScopePolicy
from plait.store import AttemptRow, TaskRow
from plait.workspace import Change

if TYPE_CHECKING:
    from plait.taskrun import RunContext

__all__ = [
    "FAILED_ATTEMPT_STATUSES",
    "PendingMerge",
    "carry_over",
    "conflicted_last",
    "due_lanes",
    "pending_merges",
    "resumed_note",
    "tries_used",
]

#: Attempt statuses of an attempt that failed and so used one of the task's retries (or,
#: "errored" by its agent or its prompt template, ended the task).
FAILED_ATTEMPT_STATUSES = frozenset({"failed", "timeout", "crashed", "rejected", "errored"})


def tries_used(attempts: Sequence[AttemptRow]) -> tuple[int, int]:
    """The retries and conflict re-runs that one task's recorded attempts used: one retry
    for each attempt that failed, one re-run for each that conflicted.

    Counted from how attempts ended, not from why they started (their kind): an attempt
    plait's death interrupted uses nothing, and its run again after the interruption
    (kind "resume", DESIGN §5: at most once per interruption) is the same try, which may
    have been a retry. So across any number of interruptions a task fails at most
    1 + `retries` times and conflicts at most 1 + `max_conflict_reruns` times; a failure
    recorded just before a kill used its retry even though the retry never started.
    """
    retries = sum(1 for a in attempts if a.status in FAILED_ATTEMPT_STATUSES)
    reruns = sum(1 for a in attempts if a.status == "conflict")
    return retries, reruns


def resumed_note(attempts: Sequence[AttemptRow], attempt_stem: Callable[[int], Path]) -> str:
    """The note the next attempt gets when the task's latest finished attempt failed or
    conflicted before an interruption ("" if none did).

    The note itself is not stored: it is made again from that attempt's recorded error
    and the end of its log (its check's log, if the check is what failed), so a retry
    resumed by another process is told what a retry in the same process would have been.
    """
    last = _last_unanswered(attempts)
    if last is None:
        return ""
    if last.status == "conflict":
        return note(f"The previous attempt conflicted with work merged meanwhile ({last.error})"
                    "; start again from the current code and keep both changes", "")  # fmt: skip
    # The task's own check failing is recorded as "verify <command> failed" (see
    # plait.attempt); its log, not the agent's, says why.
    failed_check = (last.error or "").startswith("verify ")
    log = attempt_file(
        attempt_stem(last.attempt), VERIFY_LOG_SUFFIX if failed_check else LOG_SUFFIX
    )
    tail = _log_tail(log)
    return note(f"The previous attempt failed: {last.error or last.status}", tail)


def conflicted_last(attempts: Sequence[AttemptRow]) -> int | None:
    """The number of the task's latest finished attempt if it conflicted (and nothing
    succeeded since): its re-run was due, holding the files it conflicted on."""
    last = _last_unanswered(attempts)
    return last.attempt if last is not None and last.status == "conflict" else None


def _last_unanswered(attempts: Sequence[AttemptRow]) -> AttemptRow | None:
    """The latest attempt that failed or conflicted, unless a later one succeeded."""
    ended = [a for a in attempts if a.status in FAILED_ATTEMPT_STATUSES or a.status == "conflict"]
    last = max(ended, key=lambda a: a.attempt, default=None)
    if last is None or any(a.attempt > last.attempt and a.status == "ok" for a in attempts):
        return None
    return last


def _log_tail(path: Path, size: int = 65536) -> str:
    """The end of a log file ("" if there is none)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - size))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


def due_lanes(
    due: Mapping[str, int], events: Iterable[Mapping[str, Any]]
) -> dict[str, tuple[str, ...]]:
    """The files each task's due re-run holds: `due` maps a task to the attempt that
    conflicted (`conflicted_last`); its `conflict` event names the files."""
    lanes: dict[str, tuple[str, ...]] = {}
    for event in events:
        task_id = str(event.get("task"))
        if event.get("kind") == "conflict" and due.get(task_id) == event.get("attempt"):
            lanes[task_id] = tuple(event.get("files") or ())
    return lanes


@dataclass(frozen=True)
class PendingMerge:
    """An attempt whose work was done, judged and committed, stopped before its merge."""

    attempt: int
    change: Change
    result: AgentResult  # as its agent reported it (kept on the attempt's row)
    finished_at: float | None  # when its agent ended


def pending_merges(
    tasks: Iterable[TaskRow], by_task: Mapping[str, Sequence[AttemptRow]], scope: ScopePolicy
) -> dict[str, PendingMerge]:
    """The tasks whose row says "merging" and whose last attempt ended ok with the
    commit the row names: all that is left of them is the merge. (One whose merge
    landed before the stop is already succeeded: resume found its commit on the
    result branch.)"""
    pending: dict[str, PendingMerge] = {}
    for task in tasks:
        if task.status != "merging" or not task.commit:
            continue
        last = max(by_task.get(task.id, ()), key=lambda a: a.attempt, default=None)
        if last is None or last.status != AttemptStatus.OK.value or last.commit != task.commit:
            continue
        change = Change(
            task.commit, tuple(task.changed_files), tuple(task.scope_violations), policy=scope
        )
        usage = Usage(last.input_tokens, last.output_tokens, last.cost_usd)
        result = AgentResult(
            AttemptStatus.OK, task.output or "", last.exit_code, usage=usage,
            session_id=last.session_id,
        )  # fmt: skip
        pending[task.id] = PendingMerge(last.attempt, change, result, last.finished_at)
    return pending


def carry_over(ctx: RunContext, runs_again: Callable[[str], bool]) -> None:
    """Put into `ctx` what the attempts recorded before the interruption leave to the
    tasks that `runs_again`: what they spent (toward the budget, and in each task's cost
    and tokens), the retries and re-runs they used, the note for the next attempt,
    the files a due re-run holds, and the merges left pending."""
    rows = ctx.store.attempts(ctx.run_id)
    by_task: dict[str, list[AttemptRow]] = {}
    for row in rows:
        by_task.setdefault(row.task_id, []).append(row)
    for task_id, mine in by_task.items():
        ctx.tries_used[task_id] = tries_used(mine)
        if not runs_again(task_id):
            continue  # ended before the interruption: it runs no attempt again
        note_text = resumed_note(
            mine, functools.partial(ctx.store.attempt_stem, ctx.run_id, task_id)
        )
        if note_text:
            ctx.resumed_notes[task_id] = note_text
    # A re-run after a conflict that was due still holds the files it conflicted on
    # (`plait.lanes`), or re-runs waiting their turn on one file would all start from
    # one tip and collide again. The files are in each conflict's event.
    due = {
        task_id: number
        for task_id, mine in by_task.items()
        if runs_again(task_id) and (number := conflicted_last(mine)) is not None
    }
    if due:
        ctx.resumed_lanes = due_lanes(due, ctx.store.events(ctx.run_id))
    if ctx.merge is not None:
        unended = [t for t in ctx.store.tasks(ctx.run_id) if runs_again(t.id)]
        ctx.pending_merges = pending_merges(unended, by_task, ctx.plan.scope)
    for row in rows:
        view = ctx.views.get(row.task_id)
        if row.cost_usd is not None:
            ctx.spent_usd += row.cost_usd
            if view is not None:
                view.cost_usd = (view.cost_usd or 0.0) + row.cost_usd
        if view is not None and (row.input_tokens is not None or row.output_tokens is not None):
            tokens = (row.input_tokens or 0) + (row.output_tokens or 0)
            view.tokens = (view.tokens or 0) + tokens
