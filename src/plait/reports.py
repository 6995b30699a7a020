"""From the store (or a plan's analysis) to the report's Timeline.

`report.py` renders; this module gathers: the run's attempts and tasks from the
store, the graph from the plan the run was started with, and its estimate from the
same history the run was scheduled by. What the run measured (its critical path,
the time each task lost waiting) is worked out by `plait.report_measured`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from plait.analysis import Analysis, analyze, reestimate
from plait.errors import Error
from plait.planrules import FIXER_TASK_ID
from plait.report import AttemptSpan, TaskSummary, Timeline, predicted_timeline
from plait.report_html import render_html
from plait.report_measured import measured_critical_path, process_gaps, waits
from plait.runjson import work_s
from plait.scheduler import simulate
from plait.status import RESUMED_EVENT, UNDER_WAY, run_end, run_wall_s, shown_status
from plait.store import Store
from plait.storeschema import AttemptRow, RunRow, TaskRow

#: The event that makes the verify fixer, a task the plan does not list.
FIXER_EVENT = "fixer_started"
#: How many durations per task the estimate reads (as `Store.durations` keeps).
HISTORY_PER_TASK = 20


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


def history_before(store: Store, run: RunRow, task_ids: Iterable[str]) -> dict[str, list[float]]:
    """The history `plait run` estimated this run by, as `Store.durations` gave it then:
    the work of each succeeded task in the runs of its plan that started before it (later
    runs must not change an older run's estimate)."""
    return store.durations(
        run.plan_name, task_ids, before=run.started_at, per_task=HISTORY_PER_TASK
    )


def timeline_from_store(store: Store, run_id: str) -> Timeline:
    """Everything the report shows about one run."""
    run = store.run(run_id)
    tasks = store.tasks(run_id)
    attempts = store.attempts(run_id)
    events = store.events(run_id)
    analysis = _analysis_of_run(run.plan_json, run.jobs)
    if analysis is not None:
        history = history_before(store, run, analysis.plan.tasks)
        if history:  # as `start_run` did: the estimate this run was scheduled by
            analysis = reestimate(analysis, history)
    t0 = run.started_at
    # The same status and wall time as `plait status`: a run whose plait was killed
    # is interrupted, not running, and its clock stopped when it died.
    status = shown_status(run)
    wall = run_wall_s(store, run)
    until = run_end(store, run)  # attempts still open count (and are drawn) to this moment
    spans = tuple(_span(a, t0, until, live=status == "running") for a in attempts)
    agents = {t.id: t.agent for t in analysis.plan.tasks.values()} if analysis else {}
    if analysis is not None and analysis.plan.on_verify_failure is not None:
        agents[FIXER_TASK_ID] = analysis.plan.on_verify_failure.agent  # not a plan task
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
        # What the run did, not what the plan guessed: the chain that took longest, each
        # task counted with all its attempts (a conflict re-run delays what needs it,
        # though the conflicted attempt is no part of the task's work).
        took = {x.id: x.duration_s for x in summaries if x.duration_s is not None}
        for a in attempts:
            if a.status == "conflict" and a.task_id in took and a.finished_at is not None:
                took[a.task_id] += max(0.0, a.finished_at - a.started_at)
        critical = measured_critical_path(analysis.order, analysis.needs, took)
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
        # Without the graph, no task is known to have been ready before it started.
        waits=waits(
            tasks,
            attempts,
            analysis.needs if analysis is not None else {},
            analysis.exclusive if analysis is not None else {},
            t0=t0,
            until=until,
            ready_at=_made_at(events),
            gaps=_gaps(run, events),
        ),
        verify=run.verify,
    )


def _span(a: AttemptRow, t0: float, until: float, *, live: bool) -> AttemptSpan:
    # An attempt left open by a plait that is gone ended with it: it is not running.
    shown = a.status if a.finished_at is not None or live else "interrupted"
    end = a.finished_at if a.finished_at is not None else until
    return AttemptSpan(a.task_id, a.attempt, a.kind, shown, a.started_at - t0, end - t0, a.cost_usd)


def _made_at(events: Sequence[dict[str, object]]) -> dict[str, float]:
    """When each task the plan does not list (the verify fixer) was made: it was ready
    from then, not from the run's start."""
    made: dict[str, float] = {}
    for e in events:
        task, t = e.get("task"), e.get("t")
        if e.get("kind") == FIXER_EVENT and isinstance(task, str) and isinstance(t, int | float):
            made.setdefault(task, float(t))
    return made


def _gaps(run: RunRow, events: Sequence[dict[str, object]]) -> list[tuple[float, float]]:
    """When no plait ran the run: between a stop and the resume after it."""
    resumes = []
    for e in events:
        t, before = e.get("t"), e.get("wall_before_s")
        if e.get("kind") == RESUMED_EVENT and isinstance(t, int | float):
            resumes.append((float(t), float(before) if isinstance(before, int | float) else 0.0))
    return process_gaps(run.started_at, resumes)


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
        # A task that never started did no work: no duration, as `plait status` shows it.
        duration_s=work_s(task, attempts, until) if task.started_at is not None else None,
        cost_usd=task.cost_usd,
        tokens=task.tokens,
        merged=task.merged,
        changed_files=task.changed_files,
        error=task.error or "",
    )
