"""From plan to graph (DESIGN §3): the `Analysis` that `plait plan` shows and a run schedules by.

Pure: takes a `Plan` (and optional history), returns an `Analysis`; no I/O.

This module assembles the graph: the edges and the order they impose come from
`plait.planedges`, durations, priorities, the critical path and the simulated makespan
from `plait.planestimate`; what is decided here is the rest, which needs the finished
order: the exclusive pairs (two tasks whose writes overlap and that no path orders)
and the phases.

Large plans stay fast: globs are compared only within compatible literal prefixes
(`GlobIndex`), and reachability is asked only for the pairs that need it, with
bitsets (Python ints) over just those tasks, never a full transitive closure
(`plait.planedges.ancestor_bits`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from plait.globindex import GlobIndex
from plait.model import Plan
from plait.planedges import RANK, Edge, ancestor_bits, explicit_edges, reads_edges, toposort
from plait.planestimate import Estimate, estimates

__all__ = ["Analysis", "Exclusion", "analyze", "reestimate"]


@dataclass(frozen=True)
class Exclusion:
    """Tasks ``a`` < ``b`` write overlapping scopes and are unordered: never together."""

    a: str
    b: str
    globs: tuple[tuple[str, str], ...]  # (glob of a, glob of b) pairs that overlap


@dataclass(frozen=True)
class Analysis:
    """Everything `plait plan` shows and a run schedules by."""

    plan: Plan
    order: tuple[str, ...]  # a topological order (plan order where free)
    edges: tuple[Edge, ...]
    needs: Mapping[str, frozenset[str]]  # predecessors, all reasons together
    dependants: Mapping[str, frozenset[str]]
    exclusions: tuple[Exclusion, ...]
    exclusive: Mapping[str, frozenset[str]]
    phases: tuple[tuple[str, ...], ...]
    phase_of: Mapping[str, int]
    durations: Mapping[str, float]
    priority: Mapping[str, float]  # remaining critical path, the task itself included
    critical_path: tuple[str, ...]
    estimate: Estimate


def analyze(
    plan: Plan,
    *,
    jobs: int | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
) -> Analysis:
    """Build the graph of a plan; raises PlanError for bad references and cycles."""
    jobs = plan.jobs if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    ids = list(plan.tasks)
    edges = explicit_edges(plan)
    explicit_order = toposort(ids, edges, plan, from_reads=False)
    writers: GlobIndex[str] = GlobIndex()
    for t in ids:
        for glob in dict.fromkeys(plan.tasks[t].writes):
            writers.add(glob, t)
    for edge in reads_edges(plan, ids, writers, edges, explicit_order):
        edges.setdefault((edge.source, edge.target, edge.reason), edge)
    order = toposort(ids, edges, plan, from_reads=True)
    pos = {t: i for i, t in enumerate(order)}
    preds: dict[str, set[str]] = {t: set() for t in ids}
    succs: dict[str, set[str]] = {t: set() for t in ids}
    for source, target, _ in edges:
        preds[target].add(source)
        succs[source].add(target)

    exclusions = _exclusions(writers, order, preds)
    exclusive: dict[str, set[str]] = {t: set() for t in ids}
    for ex in exclusions:
        exclusive[ex.a].add(ex.b)
        exclusive[ex.b].add(ex.a)

    phase_of: dict[str, int] = {}
    for t in order:
        before = preds[t]
        phase_of[t] = 1 + max([phase_of[p] for p in before]) if before else 0
    phases: list[list[str]] = [[] for _ in range(max(phase_of.values(), default=-1) + 1)]
    for t in order:
        phases[phase_of[t]].append(t)

    frozen_needs = {t: frozenset(preds[t]) for t in ids}
    frozen_excl = {t: frozenset(exclusive[t]) for t in ids}
    durations, priority, critical, estimate = estimates(
        plan, order, frozen_needs, succs, frozen_excl, history or {}, jobs
    )
    ordered_edges = sorted(
        edges.values(), key=lambda e: (pos[e.target], pos[e.source], RANK[e.reason])
    )
    return Analysis(
        plan=plan,
        order=tuple(order),
        edges=tuple(ordered_edges),
        needs=MappingProxyType(frozen_needs),
        dependants=MappingProxyType({t: frozenset(succs[t]) for t in ids}),
        exclusions=tuple(exclusions),
        exclusive=MappingProxyType(frozen_excl),
        phases=tuple(tuple(p) for p in phases),
        phase_of=MappingProxyType(phase_of),
        durations=MappingProxyType(durations),
        priority=MappingProxyType(priority),
        critical_path=critical,
        estimate=estimate,
    )


def reestimate(analysis: Analysis, history: Mapping[str, Sequence[float]]) -> Analysis:
    """`analysis` with its estimates taken from run history: what `analyze` returns for
    the same plan, jobs and history, without building the graph again."""
    durations, priority, critical, estimate = estimates(
        analysis.plan,
        analysis.order,
        analysis.needs,
        analysis.dependants,
        analysis.exclusive,
        history,
        analysis.estimate.jobs,
    )
    return dataclasses.replace(
        analysis,
        durations=MappingProxyType(durations),
        priority=MappingProxyType(priority),
        critical_path=critical,
        estimate=estimate,
    )


# ------------------------------------------------------------------ exclusions


def _exclusions(
    writers: GlobIndex[str], order: list[str], preds: Mapping[str, set[str]]
) -> list[Exclusion]:
    """Unordered task pairs whose write globs overlap."""
    rank = {t: i for i, t in enumerate(order)}
    pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for glob, tasks, other, others in writers.overlapping_pairs():
        for t in tasks:
            rank_t = rank[t]
            for u in others:
                # Each unordered pair once: keyed by its earlier task in `order`.
                if rank_t < rank[u]:
                    pairs.setdefault((t, u), []).append((glob, other))
                elif rank[u] < rank_t:
                    pairs.setdefault((u, t), []).append((other, glob))
    if not pairs:
        return []
    ancestors, bit = ancestor_bits(order, preds, {t for p in pairs for t in p})
    found: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    for (t, u), globs in pairs.items():
        if ancestors[u] & bit[t]:
            continue  # t comes before u: ordered, never at the same time anyway
        if len(globs) == 1:  # the usual case: one glob of each
            (x, y) = globs[0]
            found.append((t, u, ((x, y),)) if t < u else (u, t, ((y, x),)))
        elif t < u:
            found.append((t, u, tuple(sorted(set(globs)))))
        else:
            found.append((u, t, tuple(sorted({(y, x) for x, y in globs}))))
    found.sort()  # by (a, b): each pair is there once
    return [Exclusion(a, b, globs) for a, b, globs in found]
