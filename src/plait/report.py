"""What a run did, as text, JSON and one self-contained HTML timeline (pure rendering).

The runner or the CLI fills a `Timeline` from the store; everything here is a pure
function of it. The HTML is a single file with inline CSS, SVG and a few lines of
script: no network, no fonts, no CDN, so it can be mailed or attached to a CI run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plait.textsafe import clean_text
from plait.textsafe import one_line as safe_line


@dataclass(frozen=True)
class AttemptSpan:
    """One try of a task, placed on the run's clock (seconds since the run started)."""

    task_id: str
    attempt: int
    kind: str  # why it started: first|retry|conflict|resume|rate_limit|fixer|predicted
    status: str  # how it ended: ok|failed|timeout|crashed|rate_limited|errored|conflict|…
    start_s: float
    end_s: float
    cost_usd: float | None = None


@dataclass(frozen=True)
class TaskSummary:
    """How one task ended, over all its attempts."""

    id: str
    agent: str
    outcome: str  # succeeded|failed|errored|conflicted|skipped|cancelled|running|pending
    attempts: int
    start_s: float | None
    end_s: float | None
    duration_s: float | None  # None: it never started (skipped, cancelled, pending)
    cost_usd: float | None
    tokens: int | None
    merged: bool
    changed_files: tuple[str, ...]
    error: str = ""


@dataclass(frozen=True)
class Timeline:
    """Everything a report draws: one run, or (status "predicted") a plan's estimate."""

    run_id: str
    plan_name: str
    status: str
    started_at: float  # epoch seconds
    wall_s: float
    jobs: int
    tasks: tuple[TaskSummary, ...]
    attempts: tuple[AttemptSpan, ...]
    edges: tuple[tuple[str, str, str], ...]  # (from, to, reason)
    critical_path: tuple[str, ...]
    predicted: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    predicted_makespan_s: float = 0.0
    #: task → {"needs"|"exclusion"|"conflict"|"retry"|…: seconds}
    waits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    verify: Mapping[str, Any] | None = None

    @property
    def sequential_s(self) -> float:
        """The sum of task durations (their work, conflict re-runs left out: see
        `runjson.work_s`): what running one task at a time would have taken."""
        return sum(t.duration_s for t in self.tasks if t.duration_s is not None)

    @property
    def speedup(self) -> float | None:
        """Sum of task times over wall time; None before anything took time.

        A run in which no task has finished yet (or ever will: one interrupted early)
        has no speed-up to speak of, rather than one of 0.
        """
        if self.wall_s <= 0 or self.sequential_s <= 0:
            return None
        if not any(x.end_s is not None for x in self.tasks):
            return None  # nothing finished: a ratio of work in flight says nothing yet
        return self.sequential_s / self.wall_s

    @property
    def saved_s(self) -> float | None:
        """Time saved by running side by side: the sum of task times less the wall time
        (negative when merges, verifies and waits cost more than parallelism gave);
        None when there is no speed-up to speak of."""
        return None if self.speedup is None else self.sequential_s - self.wall_s

    @property
    def cost_usd(self) -> float | None:
        """Total spend, or None when no task reported a cost."""
        costs = [t.cost_usd for t in self.tasks if t.cost_usd is not None]
        return sum(costs) if costs else None

    @property
    def is_estimate(self) -> bool:
        """True for `plait plan --html`: nothing ran, every bar is predicted."""
        return self.status == "predicted"


# A run's statuses while it has no end (yet).
UNFINISHED = ("running", "interrupted")

# Waits that are time lost (the task was ready but held); "needs" is just the graph.
LOST_WAITS = ("exclusion", "slots", "interrupted", "conflict", "retry", "rate_limit")
# Of those, the ones spent ready but not started: drawn as a light segment before the bar.
HELD_WAITS = ("exclusion", "slots")

KIND_LABELS = {
    "retry": "retry",
    "conflict": "conflict re-run",
    "resume": "resumed",
    "rate_limit": "rate-limit retry",
    "fixer": "fixer",
}
_PLURALS = {
    "retry": "retries",
    "fixer": "fixers",
    "resume": "resumed",
    "rate_limit": "rate-limit retries",
}


def fmt_duration(seconds: float | None) -> str:
    """A short human duration: 0.4s, 12s, 3m 05s, 1h 02m; a dash for None."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def fmt_cost(usd: float | None) -> str:
    """Dollars with cents (more digits under a cent), or a dash when unknown."""
    if usd is None:
        return "—"
    return f"${usd:.4f}" if 0 < usd < 0.01 else f"${usd:.2f}"


def fmt_saving(t: Timeline) -> str:
    """Time saved as `plait plan` words it: '5.6s (40%)' of the sum of task times; a
    loss gets a minus sign; a dash when there is none to speak of."""
    saved = t.saved_s
    if saved is None:
        return "—"
    sign = "-" if saved < 0 and fmt_duration(abs(saved)) != fmt_duration(0.0) else ""
    share = saved / t.sequential_s
    return f"{sign}{fmt_duration(abs(saved))} ({share if sign else abs(share):.0%})"


def fmt_speedup(x: float | None) -> str:
    """Speed-up as '3.02×', or a dash."""
    return "—" if x is None else f"{x:.2f}×"


def lost_s(t: Timeline, task_id: str) -> float:
    """Seconds the task was held back by exclusions, conflicts, retries and slots."""
    w = t.waits.get(task_id, {})
    return sum(v for k, v in w.items() if k in LOST_WAITS)


def _attempt_counts(t: Timeline) -> Counter[str]:
    return Counter(a.kind for a in t.attempts)


def outcome_counts(t: Timeline) -> dict[str, int]:
    """Outcome → number of tasks, in a stable, readable order."""
    order = ("succeeded", "failed", "errored", "conflicted", "skipped", "cancelled")
    c = Counter(task.outcome for task in t.tasks)
    keys = [k for k in order if c[k]] + sorted(k for k in c if k not in order)
    return {k: c[k] for k in keys}


def one_line(text: str, limit: int = 120) -> str:
    """An error (of any length, from any agent) as one safe line for the report."""
    return safe_line(text, limit)


def render_text(t: Timeline) -> str:
    """The plain report: outcomes, attempts, conflicts, wall time, sum, saving, speed-up,
    cost."""
    kinds = _attempt_counts(t)
    title = "predicted schedule" if t.is_estimate else f"run {t.run_id}"
    out = [f"plait report — {title} ({safe_line(t.plan_name)}) · {t.status}"]
    out.append(
        f"  wall {fmt_duration(t.wall_s)} · sum of task times {fmt_duration(t.sequential_s)}"
        f" · saving {fmt_saving(t)} · speed-up {fmt_speedup(t.speedup)}"
        f" · cost {fmt_cost(t.cost_usd)} · jobs {t.jobs}"
    )
    counts = outcome_counts(t)
    out.append("  outcomes: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "none"))
    extra = [
        f"{kinds[k]} {_PLURALS.get(k, KIND_LABELS[k] + 's') if kinds[k] > 1 else KIND_LABELS[k]}"
        for k in KIND_LABELS
        if kinds[k]
    ]
    conflicts = sum(1 for a in t.attempts if a.status == "conflict")
    out.append(
        f"  attempts: {len(t.attempts)}"
        + (f" ({', '.join(extra)})" if extra else "")
        + f" · conflicts: {conflicts}"
    )
    # Only a finished run can be compared with the estimate: one that is still
    # running, or was interrupted, would be "-100%" for want of an end.
    if t.predicted_makespan_s and not t.is_estimate and t.status not in UNFINISHED:
        delta = (t.wall_s / t.predicted_makespan_s - 1) * 100
        out.append(
            f"  estimate: {fmt_duration(t.predicted_makespan_s)}, "
            f"actual {fmt_duration(t.wall_s)} ({delta:+.0f}%)"
        )
    if t.verify is not None:
        out.append(f"  verify: {verify_word(t.verify)}")
        out.extend(verify_failure_lines(t.verify, indent="    "))
    out.append("")
    width = max([4, *(len(x.id) for x in t.tasks)])
    agent_w = max([5, *(len(x.agent) for x in t.tasks)])
    out.append(
        f"  {'task':<{width}}  {'agent':<{agent_w}}  {'outcome':<10}  tries"
        f"  {'start':>7}  {'duration':>8}  {'cost':>8}  {'lost':>7}"
    )
    for task in ordered(t):
        lost = lost_s(t, task.id)
        out.append(
            f"  {task.id:<{width}}  {task.agent:<{agent_w}}  {task.outcome:<10}  {task.attempts:>5}"
            f"  {fmt_duration(task.start_s):>7}  {fmt_duration(task.duration_s):>8}"
            f"  {fmt_cost(task.cost_usd):>8}  {fmt_duration(lost) if lost else '':>7}"
        )
    if t.critical_path:
        out.append("")
        out.append("  critical path: " + " → ".join(t.critical_path))
    errors = [x for x in t.tasks if x.error]
    if errors:
        out.append("")
        out.append("  problems:")
        out.extend(f"    {x.id}: {one_line(x.error)}" for x in errors)
    return "\n".join(out) + "\n"


#: How many of a failed verify's last output lines the text views show.
VERIFY_TAIL_LINES = 12


def verify_failure_lines(verify: Mapping[str, Any], indent: str = "  ") -> list[str]:
    """The end of a failed verify's output, as indented lines (none if it passed): the
    reason it failed, where the user reads the run, not only in `--json`."""
    if verify.get("ok") is not False:
        return []
    tail = clean_text(str(verify.get("output") or "")).rstrip().splitlines()
    shown = [f"{indent}| {line}" for line in tail[-VERIFY_TAIL_LINES:]]
    return shown or [f"{indent}(it printed nothing)"]


def verify_word(v: Mapping[str, Any]) -> str:
    if "status" in v:
        return str(v["status"])
    if "ok" in v:
        return "passed" if v["ok"] else "failed"
    return "ran"


def ordered(t: Timeline) -> list[TaskSummary]:
    """Rows by start time; tasks that never started go last, by predicted start."""

    def key(x: TaskSummary) -> tuple[int, float, str]:
        if x.start_s is not None:
            return (0, x.start_s, x.id)
        return (1, t.predicted.get(x.id, (math.inf, 0.0))[0], x.id)

    return sorted(t.tasks, key=key)


def to_json(t: Timeline) -> dict[str, Any]:
    """The report as plain JSON-ready data (`plait report --json`)."""
    return {
        "run": t.run_id,
        "plan": t.plan_name,
        "status": t.status,
        "started_at": t.started_at,
        "wall_s": t.wall_s,
        "jobs": t.jobs,
        "totals": {
            "sequential_s": t.sequential_s,
            "wall_s": t.wall_s,
            "speedup": t.speedup,
            "saved_s": t.saved_s,
            "cost_usd": t.cost_usd,
            "attempts": len(t.attempts),
            "conflicts": sum(1 for a in t.attempts if a.status == "conflict"),
            "outcomes": outcome_counts(t),
        },
        "tasks": [
            {
                "id": x.id,
                "agent": x.agent,
                "outcome": x.outcome,
                "attempts": x.attempts,
                "start_s": x.start_s,
                "end_s": x.end_s,
                "duration_s": x.duration_s,
                "cost_usd": x.cost_usd,
                "tokens": x.tokens,
                "merged": x.merged,
                "changed_files": list(x.changed_files),
                "error": x.error,
                "lost_s": lost_s(t, x.id),
                "waits": dict(t.waits.get(x.id, {})),
            }
            for x in ordered(t)
        ],
        "attempts": [
            {
                "task": a.task_id,
                "attempt": a.attempt,
                "kind": a.kind,
                "status": a.status,
                "start_s": a.start_s,
                "end_s": a.end_s,
                "cost_usd": a.cost_usd,
            }
            for a in t.attempts
        ],
        "edges": [{"from": a, "to": b, "reason": r} for a, b, r in t.edges],
        "critical_path": list(t.critical_path),
        "predicted": {k: {"start_s": s, "finish_s": f} for k, (s, f) in t.predicted.items()},
        "predicted_makespan_s": t.predicted_makespan_s,
        "verify": dict(t.verify) if t.verify is not None else None,
    }


def predicted_timeline(
    plan_name: str,
    durations: Mapping[str, float],
    schedule_start: Mapping[str, float],
    schedule_finish: Mapping[str, float],
    edges: Iterable[tuple[str, str, str]],
    critical_path: Iterable[str],
    jobs: int,
    agents: Mapping[str, str] | None = None,
) -> Timeline:
    """A Timeline drawn from the plan's estimate (`plait plan --html`): every bar predicted."""
    agents = agents or {}
    tasks = []
    spans = []
    for tid in sorted(durations, key=lambda k: (schedule_start.get(k, 0.0), k)):
        start, finish = schedule_start.get(tid, 0.0), schedule_finish.get(tid, 0.0)
        tasks.append(
            TaskSummary(
                id=tid,
                agent=agents.get(tid, ""),
                outcome="pending",
                attempts=1,
                start_s=start,
                end_s=finish,
                duration_s=durations[tid],
                cost_usd=None,
                tokens=None,
                merged=False,
                changed_files=(),
            )
        )
        spans.append(AttemptSpan(tid, 1, "predicted", "predicted", start, finish))
    makespan = max(schedule_finish.values(), default=0.0)
    return Timeline(
        run_id="",
        plan_name=plan_name,
        status="predicted",
        started_at=0.0,
        wall_s=makespan,
        jobs=jobs,
        tasks=tuple(tasks),
        attempts=tuple(spans),
        edges=tuple(edges),
        critical_path=tuple(critical_path),
        predicted={k: (schedule_start.get(k, 0.0), schedule_finish[k]) for k in schedule_finish},
        predicted_makespan_s=makespan,
    )
