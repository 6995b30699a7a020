"""From plan to graph (DESIGN §3): edges with reasons, exclusions, phases, estimates.

Pure: takes a `Plan` (and optional history), returns an `Analysis`; no I/O.

Edges come from `needs`, from `{{ tasks.X.… }}` references in prompts, and from a
`reads` glob meeting another task's `writes` glob (writer → reader). An explicit
order wins over a read scope: a reads edge whose reader already comes before its
writer through needs/template edges is dropped, which is how a user resolves a cycle
made by read scopes (the error says so). Two tasks whose writes overlap and that no
path orders are exclusive.

Large plans stay fast: globs are compared only within compatible literal prefixes
(`GlobIndex`), and reachability is asked only for the pairs that need it, with
bitsets (Python ints) over just those tasks, never a full transitive closure.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from plait.errors import PlanError, Problem
from plait.globindex import GlobIndex
from plait.model import DEFAULT_ESTIMATE_S, Plan
from plait.planrules import prompt_refs, template_problem
from plait.scheduler import simulate

__all__ = [
    "Analysis",
    "Edge",
    "Estimate",
    "Exclusion",
    "analyze",
    "format_duration",
    "reestimate",
]

Reason = Literal["needs", "template", "reads"]
_RANK: dict[str, int] = {"needs": 0, "template": 1, "reads": 2}


@dataclass(frozen=True)
class Edge:
    """``source`` must finish before ``target`` starts, because of ``reason``."""

    source: str
    target: str
    reason: Reason
    detail: str = ""  # template: "tasks.x.output"; reads: "reads db/** ∩ writes db/**"


@dataclass(frozen=True)
class Exclusion:
    """Tasks ``a`` < ``b`` write overlapping scopes and are unordered: never together."""

    a: str
    b: str
    globs: tuple[tuple[str, str], ...]  # (glob of a, glob of b) pairs that overlap


@dataclass(frozen=True)
class Estimate:
    """Sequential sum against a simulated makespan with ``jobs`` slots."""

    sequential_s: float
    parallel_s: float
    jobs: int
    saving_s: float
    defaulted: tuple[str, ...]  # tasks that used the default one-unit estimate


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
    edges = _explicit_edges(plan)
    explicit_order = _toposort(ids, edges, plan, from_reads=False)
    writers: GlobIndex[str] = GlobIndex()
    for t in ids:
        for glob in dict.fromkeys(plan.tasks[t].writes):
            writers.add(glob, t)
    for edge in _reads_edges(plan, ids, writers, edges, explicit_order):
        edges.setdefault((edge.source, edge.target, edge.reason), edge)
    order = _toposort(ids, edges, plan, from_reads=True)
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
    durations, priority, critical, estimate = _estimates(
        plan, order, frozen_needs, succs, frozen_excl, history or {}, jobs
    )
    ordered_edges = sorted(
        edges.values(), key=lambda e: (pos[e.target], pos[e.source], _RANK[e.reason])
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
    durations, priority, critical, estimate = _estimates(
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


def _estimates(
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


# ------------------------------------------------------------------ edges

_EdgeMap = dict[tuple[str, str, str], Edge]


def _explicit_edges(plan: Plan) -> _EdgeMap:
    """needs and template edges; unknown or self references are plan problems."""
    edges: _EdgeMap = {}
    problems: list[Problem] = []
    for task in plan.tasks.values():
        for i, need in enumerate(task.needs):
            if need == task.id:
                where = f"tasks.{task.id}.needs[{i}]"
                problems.append(Problem(where, "a task cannot need itself", task.line))
            elif need not in plan.tasks:
                where = f"tasks.{task.id}.needs[{i}]"
                problems.append(Problem(where, f"unknown task {need!r}", task.line))
            elif (need, task.id, "needs") not in edges:
                edges[(need, task.id, "needs")] = Edge(need, task.id, "needs")
        # A reference needs both a `{` delimiter and the name: skip the parser otherwise.
        if "{" not in task.prompt or "tasks" not in task.prompt:
            continue
        try:
            refs = prompt_refs(task.prompt)
        except template_problem() as exc:
            problems.append(Problem(f"tasks.{task.id}.prompt", str(exc), task.line))
            continue
        for ref, attrs in sorted(refs.items()):
            where = f"tasks.{task.id}.prompt"
            if ref == task.id:
                problems.append(Problem(where, "the prompt refers to its own task", task.line))
            elif ref not in plan.tasks:
                problems.append(Problem(where, f"refers to unknown task {ref!r}", task.line))
            else:
                detail = ", ".join(f"tasks.{ref}.{a}" for a in sorted(attrs)) or f"tasks.{ref}"
                edges[(ref, task.id, "template")] = Edge(ref, task.id, "template", detail)
    if problems:
        raise PlanError(problems, _file(plan))
    return edges


def _reads_edges(
    plan: Plan,
    ids: list[str],
    writers: GlobIndex[str],
    explicit: _EdgeMap,
    explicit_order: list[str],
) -> list[Edge]:
    """writer → reader for every read glob meeting another task's write glob, unless
    the reader already runs before the writer by needs/template edges."""
    found: dict[tuple[str, str], str] = {}
    for reader in ids:
        reads = plan.tasks[reader].reads
        for glob in dict.fromkeys(reads) if reads else ():
            for wglob, writers_of in writers.overlapping(glob):
                for writer in writers_of:
                    if writer != reader and (writer, reader) not in found:
                        found[(writer, reader)] = f"reads {glob} ∩ writes {wglob}"
    if not found:
        return []
    preds: dict[str, set[str]] = {t: set() for t in ids}
    for source, target, _ in explicit:
        preds[target].add(source)
    ancestors, bit = _ancestor_bits(explicit_order, preds, {t for p in found for t in p})
    return [
        Edge(writer, reader, "reads", detail)
        for (writer, reader), detail in found.items()
        if not ancestors[writer] & bit[reader]
    ]


def _ancestor_bits(
    order: Sequence[str], preds: Mapping[str, Iterable[str]], interesting: set[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """For each interesting task, the interesting tasks that reach it, as a bitset
    (and each interesting task's bit).

    Bits exist only for interesting tasks, and a task's set is dropped once its last
    dependant has read it, so memory follows the graph's width, not its size.
    """
    bit = {t: 1 << i for i, t in enumerate(sorted(interesting))}
    waiting: dict[str, int] = {}
    for t in order:
        for p in preds[t]:
            waiting[p] = waiting.get(p, 0) + 1
    live: dict[str, int] = {}
    out: dict[str, int] = {}
    for t in order:
        acc = 0
        for p in preds[t]:
            acc |= live[p] | bit.get(p, 0)
            waiting[p] -= 1
            if not waiting[p]:
                del live[p]
        if waiting.get(t):
            live[t] = acc
        if t in bit:
            out[t] = acc
    return out, bit


def _toposort(ids: list[str], edges: _EdgeMap, plan: Plan, *, from_reads: bool) -> list[str]:
    """Kahn's algorithm; PlanError naming a cycle.

    The final order (``from_reads``) keeps plan order among ready tasks; the order of
    needs and template edges alone only feeds reachability, so any order will do and
    a plain queue is used.
    """
    succs: dict[str, set[str]] = {t: set() for t in ids}
    indegree = dict.fromkeys(ids, 0)
    for source, target, _ in edges:
        if target not in succs[source]:
            succs[source].add(target)
            indegree[target] += 1
    order: list[str] = []
    if from_reads:
        pos = {t: i for i, t in enumerate(ids)}
        heap = [pos[t] for t in ids if not indegree[t]]
        while heap:
            t = ids[heapq.heappop(heap)]
            order.append(t)
            for s in succs[t]:
                indegree[s] -= 1
                if not indegree[s]:
                    heapq.heappush(heap, pos[s])
    else:
        order = [t for t in ids if not indegree[t]]
        for t in order:  # grows while iterating
            for s in succs[t]:
                indegree[s] -= 1
                if not indegree[s]:
                    order.append(s)
    if len(order) < len(ids):
        raise _cycle_error(plan, edges, {t for t in ids if indegree[t]}, from_reads)
    return order


def _cycle_error(plan: Plan, edges: _EdgeMap, stuck: set[str], from_reads: bool) -> PlanError:
    # Every stuck task has a stuck predecessor: walking back from one must repeat.
    preds: dict[str, list[str]] = {t: [] for t in stuck}
    for source, target, _ in sorted(edges):
        if source in stuck and target in stuck:
            preds[target].append(source)
    pos = {t: i for i, t in enumerate(plan.tasks)}
    node = min(stuck, key=pos.__getitem__)
    seen: list[str] = []
    while node not in seen:
        seen.append(node)
        node = preds[node][0]
    cycle = list(reversed(seen[seen.index(node) :]))  # forward: each needs the next
    first = min(cycle, key=pos.__getitem__)
    cycle = cycle[cycle.index(first) :] + cycle[: cycle.index(first)]
    steps = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
    why = "; ".join(
        f"{a} → {b}: " + ", ".join(reason_text(e) for e in _between(edges, a, b)) for a, b in steps
    )
    text = f"dependency cycle {' → '.join([*cycle, cycle[0]])} ({why})"
    if from_reads:
        writer, reader = next((a, b) for a, b in steps if (a, b, "reads") in edges)
        text += (
            "; read scopes make this cycle: say which task goes first with an explicit "
            f"`needs` (e.g. `needs: [{reader}]` on {writer}, if {reader} may read before "
            f"{writer} writes; a reads edge against the needs is dropped), or narrow the scopes"
        )
    task = plan.tasks[first]
    return PlanError([Problem(f"tasks.{first}.needs", text, task.line)], _file(plan))


def _between(edges: _EdgeMap, a: str, b: str) -> list[Edge]:
    return [edges[(a, b, r)] for r in _RANK if (a, b, r) in edges]


def reason_text(edge: Edge) -> str:
    if edge.reason == "reads":
        return edge.detail
    return f"{edge.reason} ({edge.detail})" if edge.detail else edge.reason


def _file(plan: Plan) -> str | None:
    return str(plan.path) if plan.path is not None else None


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
    ancestors, bit = _ancestor_bits(order, preds, {t for p in pairs for t in p})
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


# ------------------------------------------------------------------ estimates


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
