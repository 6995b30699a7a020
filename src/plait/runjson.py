"""DESIGN §7's run/status JSON, made from a run's rows, and how long a task worked.

A task's duration is its work: its attempts' durations, conflicted ones left out
(`work_s`), so that the sum of the tasks' durations is `totals.sequential_s`, what
running one task at a time would have taken. The report shows the same figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from plait.storeschema import AttemptRow, RunRow, TaskRow

__all__ = ["kept_workspace", "status_json", "work_s"]


def work_s(task: TaskRow, attempts: Sequence[AttemptRow], until: float | None = None) -> float:
    """What the task's work took, as one task at a time would spend it: its attempts'
    durations, leaving out those that conflicted (only running side by side makes
    conflicts); retries and attempts cut short by an interruption count, one still
    open (or left open by a stop) until `until`. A task that recorded no attempt counts
    its span."""
    total, counted = 0.0, False
    for a in attempts:
        if a.task_id != task.id or a.status == "conflict":
            counted = counted or a.task_id == task.id
            continue
        if a.finished_at is not None:
            total, counted = total + max(0.0, a.finished_at - a.started_at), True
        elif until is not None:
            total, counted = total + max(0.0, until - a.started_at), True
    return total if counted else (task.duration_s or 0.0)


def kept_workspace(attempts: Sequence[AttemptRow]) -> str | None:
    """The worktree a failed task's last attempt left to look at, while it is there
    (`plait clean` removes it)."""
    last = max(attempts, key=lambda a: a.attempt, default=None)
    if last is None or not last.workspace or not os.path.isdir(last.workspace):
        return None
    return last.workspace


def status_json(
    run: RunRow,
    tasks: Sequence[TaskRow],
    now: float | None = None,
    attempts: Sequence[AttemptRow] = (),
    open_until: float | None = None,
) -> dict[str, Any]:
    """DESIGN §7's run/status object; a running run's wall time is measured to `now`.

    `totals.sequential_s` adds up the tasks' `work_s` (their spans, without `attempts`).
    """
    end = run.finished_at if run.finished_at is not None else (now or time.time())
    wall = run.wall_s
    if wall is None:
        wall = max(0.0, end - run.started_at)
    by_task: dict[str, list[AttemptRow]] = {}
    for attempt in attempts:
        by_task.setdefault(attempt.task_id, []).append(attempt)
    # (`now` is the run's clock, processes added up; an attempt still open needs the
    # moment itself, which after a resume is later by the gap between its processes.)
    until = end if open_until is None else open_until
    # A task's duration is its work (`work_s`), as the report shows it: the sum of
    # task durations is then `totals.sequential_s` (DESIGN §7). Its span, waits and
    # conflicted attempts included, is `finished_at - started_at`.
    worked = {t.id: work_s(t, by_task.get(t.id, ()), until=until) for t in tasks}
    sequential = sum(worked.values())
    costs = [t.cost_usd for t in tasks if t.cost_usd is not None]
    tokens = [t.tokens for t in tasks if t.tokens is not None]  # None: nothing reported
    return {
        "run": run.id,
        "plan": run.plan_name,
        "status": run.status,
        "base": run.base,
        "branch": run.branch,
        "head": run.head,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "wall_s": wall,
        # (No run-level "error": with --json a top-level "error" means the command
        # itself failed, DESIGN §7; why tasks failed is in each task's entry.)
        "tasks": [
            {
                **t.to_json(),
                "duration_s": worked[t.id] if t.started_at is not None else None,
                "workspace": kept_workspace(by_task.get(t.id, ())),
            }
            for t in tasks
        ],
        "verify": run.verify,
        "totals": {
            "sequential_s": sequential,
            "wall_s": wall,
            # Until a task finishes, a ratio of work in flight says nothing yet.
            "speedup": sequential / wall
            if wall > 0 and any(t.finished_at is not None for t in tasks)
            else None,
            "cost_usd": sum(costs) if costs else None,
            "tokens": sum(tokens) if tokens else None,
        },
    }
