"""How long a plan should take (DESIGN §3): durations, priorities, critical path, makespan.

Pure, on a graph already built by `plait.analysis`: each task's duration comes from
its `estimate`, else the median of its past runs, else one default unit; from those
follow each task's priority (its remaining critical path), the critical path itself,
and the makespan the scheduler would reach with ``jobs`` slots
(`plait.scheduler.simulate`). Kept apart from the graph so run history can change the
estimates without building the graph again (`plait.analysis.reestimate`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from plait.model import DEFAULT_ESTIMATE_S, Plan
from plait.scheduler import simulate

__all__ = ["Estimate", "estimates", "format_duration"]


@dataclass(frozen=True)
class Estimate:
    """Sequential sum against a simulated makespan with ``jobs`` slots."""

    sequential_s: float
    parallel_s: float
    jobs: int
    saving_s: float
    defaulted: tuple[str, ...]  # tasks that used the default one-unit estimate


def estimates(
    plan: Plan,
    order: Sequence[str],
    needs: Mapping[str, frozenset[str]],
    succs: Mapping[str, Collection[str]],
    exclusive: Mapping[str, frozenset[str]],
    history: Mapping[str, Sequence[float]],
    jobs: int,
) -> tuple[dict[str, float], dict[str, float], tuple[str, ...], Estimate]:
    """Durations, priorities (remaining critical path), the critical path and the
    simulated makespan of a built graph."""
    durations, defaulted = _durations(plan, order, history)
    priority: dict[str, float] = {}
    for t in reversed(order):
        after = succs[t]
        priority[t] = durations[t] + (max([priority[s] for s in after]) if after else 0.0)
    critical = _critical_path(order, succs, priority)
    schedule = simulate(durations, needs, exclusive, priority, jobs)
    sequential = sum(durations.values())
    estimate = Estimate(
        sequential_s=sequential,
        parallel_s=schedule.makespan,
        jobs=jobs,
        saving_s=sequential - schedule.makespan,
        defaulted=tuple(defaulted),
    )
    return durations, priority, critical, estimate


def _durations(
    plan: Plan, order: Sequence[str], history: Mapping[str, Sequence[float]]
) -> tuple[dict[str, float], list[str]]:
    durations: dict[str, float] = {}
    defaulted: list[str] = []
    for t in order:
        task = plan.tasks[t]
        past = history.get(t)
        if task.estimate_s is not None:
            durations[t] = float(task.estimate_s)
        elif past:
            import statistics  # imported here: only run history needs it (and its imports)

            durations[t] = float(statistics.median(past))
        else:
            durations[t] = DEFAULT_ESTIMATE_S
            defaulted.append(t)
    return durations, defaulted


def _critical_path(
    order: Sequence[str], succs: Mapping[str, Collection[str]], priority: Mapping[str, float]
) -> tuple[str, ...]:
    """Follow the highest remaining critical path from the highest start (ties by id)."""
    if not order:
        return ()
    node = min(order, key=lambda t: (-priority[t], t))
    path = [node]
    while succs[node]:
        node = min(succs[node], key=lambda t: (-priority[t], t))
        path.append(node)
    return tuple(path)


def format_duration(seconds: float) -> str:
    """``45s``, ``1m 30s``, ``2h 5m``: short, for people."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if 0 < seconds < 10 and seconds != s else f"{s}s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m}m {r}s" if r else f"{m}m"
    h, r = divmod(s, 3600)
    return f"{h}h {r // 60}m" if r // 60 else f"{h}h"
