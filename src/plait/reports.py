"""From the store (or a plan's analysis) to the report's Timeline.

`report.py` renders; this module gathers: the run's attempts and tasks from the
store, the graph and the estimate from the plan the run was started with, and
the time each task spent ready but not running, split by cause.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from plait.analysis import Analysis, analyze
from plait.errors import Error
from plait.planrules import FIXER_TASK_ID
from plait.report import AttemptSpan, TaskSummary, Timeline, predicted_timeline
from plait.report_html import render_html
from plait.runjson import work_s
from plait.scheduler import simulate
from plait.status import UNDER_WAY, run_end, run_wall_s, shown_status
from plait.store import Store
from plait.storeschema import AttemptRow, TaskRow


def predicted(analysis: Analysis) -> Timeline:
    """The timeline `plait plan --html` draws: the estimate as a schedule."""
    schedule = simulate(
        analysis.durations,
        analysis.needs,
        analysis.exclusive,
        analysis.priority,
        analysis.estimate.jobs,
    )
    return predicted_timeline(
        analysis.plan.name,
        analysis.durations,
        schedule.start,
        schedule.finish,
        [(e.source, e.target, e.reason) for e in analysis.edges],
        analysis.critical_path,
        analysis.estimate.jobs,
        agents={t.id: t.agent for t in analysis.plan.tasks.values()},
    )


def predicted_html(analysis: Analysis) -> str:
    return render_html(predicted(analysis))


def _analysis_of_run(plan_json: str, jobs: int) -> Analysis | None:
    """The graph of the plan a run was started with, if it can be rebuilt."""
    from plait.planfile import parse_plan

    try:
        record = json.loads(plan_json)
        if not record.get("text"):
            return None
        root = Path(record["root"]) if record.get("root") else Path.cwd()
        plan = parse_plan(record["text"], file=record.get("path"), root=root)
        return analyze(plan, jobs=jobs)
    except (Error, ValueError, OSError):
        return None  # the plan's files moved on; the report goes without the graph


def timeline_from_store(store: Store, run_id: str) -> Timeline:
    """Everything the report shows about one run."""
    run = store.run(run_id)
    tasks = store.tasks(run_id)
    attempts = store.attempts(run_id)
    analysis = _analysis_of_run(run.plan_json, run.jobs)
    t0 = run.started_at
    # The same status and wall time as `plait status`: a run whose plait was killed
    # is interrupted, not running, and its clock stopped when it died.
    wall = run_wall_s(store, run)
    until = run_end(store, run)  # attempts still open count (and are drawn) to this moment
    spans = tuple(
        AttemptSpan(
            a.task_id,
            a.attempt,
            a.kind,
            a.status,
            a.started_at - t0,
            (a.finished_at if a.finished_at is not None else until) - t0,
            a.cost_usd,
        )
        for a in attempts
    )
    agents = {t.id: t.agent for t in analysis.plan.tasks.values()} if analysis else {}
    if analysis is not None and analysis.plan.on_verify_failure is not None:
        agents[FIXER_TASK_ID] = analysis.plan.on_verify_failure.agent  # not a plan task
    status = shown_status(run)
    summaries = tuple(
        _summary(t, agents.get(t.id, ""), t0, attempts, until, interrupted=status == "interrupted")
        for t in tasks
    )
    edges: tuple[tuple[str, str, str], ...] = ()
    critical: tuple[str, ...] = ()
    predicted_spans: dict[str, tuple[float, float]] = {}
    makespan = 0.0
    # An estimate made of default units only (no `estimate:`, no history) says nothing
    # about this run's length: no prediction is drawn or compared with it.
    guessed = analysis is not None and len(analysis.estimate.defaulted) == len(analysis.durations)
    if analysis is not None:
        edges = tuple((e.source, e.target, e.reason) for e in analysis.edges)
        critical = analysis.critical_path
        schedule = simulate(
            analysis.durations, analysis.needs, analysis.exclusive, analysis.priority, run.jobs
        )
        if not guessed:
            predicted_spans = {k: (schedule.start[k], schedule.finish[k]) for k in schedule.finish}
            makespan = schedule.makespan
    return Timeline(
        run_id=run.id,
        plan_name=run.plan_name,
        status=status,
        started_at=t0,
        wall_s=wall,
        jobs=run.jobs,
        tasks=summaries,
        attempts=spans,
        edges=edges,
        critical_path=critical,
        predicted=predicted_spans,
        predicted_makespan_s=makespan,
        waits=waits(tasks, attempts, analysis, t0),
        verify=run.verify,
    )


def _summary(
    task: TaskRow,
    agent: str,
    t0: float,
    attempts: Sequence[AttemptRow],
    until: float,
    *,
    interrupted: bool,
) -> TaskSummary:
    # Nothing runs in an interrupted run: a task under way says where it stopped.
    outcome = "interrupted" if interrupted and task.status in UNDER_WAY else task.status
    return TaskSummary(
        id=task.id,
        agent=agent,
        outcome=outcome,
        attempts=task.attempts,
        start_s=task.started_at - t0 if task.started_at is not None else None,
        end_s=task.finished_at - t0 if task.finished_at is not None else None,
        duration_s=work_s(task, attempts, until),
        cost_usd=task.cost_usd,
        tokens=task.tokens,
        merged=task.merged,
        changed_files=task.changed_files,
        error=task.error or "",
    )


def waits(
    tasks: Sequence[TaskRow], attempts: Sequence[AttemptRow], analysis: Analysis | None, t0: float
) -> dict[str, dict[str, float]]:
    """Time lost per task: ready but held by an exclusive partner or by busy slots,
    and time spent on attempts that were thrown away (conflicts, retries)."""
    by_task: dict[str, list[AttemptRow]] = {}
    for attempt in attempts:
        by_task.setdefault(attempt.task_id, []).append(attempt)
    finished = {t.id: t.finished_at for t in tasks}
    lost: dict[str, dict[str, float]] = {}
    for task in tasks:
        mine = sorted(by_task.get(task.id, []), key=lambda a: a.attempt)
        entry: dict[str, float] = {}
        # Every attempt but the last was thrown away; so was the last, if it conflicted
        # (the task ended `conflicted`: none of its work was kept).
        thrown = mine[:-1] + [a for a in mine[-1:] if a.status == "conflict"]
        for attempt in thrown:
            cause = "conflict" if attempt.status == "conflict" else "retry"
            entry[cause] = entry.get(cause, 0.0) + (attempt.duration_s or 0.0)
        if mine and analysis is not None:
            needs = analysis.needs.get(task.id, frozenset())
            ready = max([finished.get(n) or t0 for n in needs] + [t0])
            held = max(0.0, mine[0].started_at - ready)
            if held > 0.05:
                partners = analysis.exclusive.get(task.id, frozenset())
                blocked = _overlap(ready, mine[0].started_at, partners, by_task)
                if blocked > 0:
                    entry["exclusion"] = blocked
                if held - blocked > 0.05:
                    entry["slots"] = held - blocked
        if entry:
            lost[task.id] = entry
    return lost


def _overlap(
    start: float, end: float, partners: frozenset[str], by_task: Mapping[str, list[AttemptRow]]
) -> float:
    """How much of [start, end] an exclusive partner was running."""
    spans = sorted(
        (max(start, a.started_at), min(end, a.finished_at or end))
        for p in partners
        for a in by_task.get(p, [])
    )
    total, cursor = 0.0, start
    for lo, hi in spans:
        lo = max(lo, cursor)
        if hi > lo:
            total += hi - lo
            cursor = hi
    return total
