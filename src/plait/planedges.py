"""Which task must come before which, and why (DESIGN §3): the edges of a plan's graph.

Edges come from `needs`, from `{{ tasks.X.… }}` references in prompts, and from a
`reads` glob meeting another task's `writes` glob (writer → reader). An explicit
order wins over a read scope: a reads edge whose reader already comes before its
writer through needs/template edges is dropped, which is how a user resolves a cycle
made by read scopes (the error says so). A cycle is a plan error that names every
step and its reason.

Reachability is asked only for the pairs that need it, with bitsets (Python ints)
over just those tasks, never a full transitive closure (`ancestor_bits`, which
`plait.analysis` also uses to tell which overlapping writers are ordered).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from plait.errors import PlanError, Problem
from plait.globindex import GlobIndex
from plait.model import Plan
from plait.planrules import prompt_refs, template_problem

__all__ = [
    "RANK",
    "Edge",
    "EdgeMap",
    "Reason",
    "ancestor_bits",
    "explicit_edges",
    "reads_edges",
    "reason_text",
    "toposort",
]

Reason = Literal["needs", "template", "reads"]
RANK: dict[str, int] = {"needs": 0, "template": 1, "reads": 2}  # how edges between a pair sort


@dataclass(frozen=True)
class Edge:
    """``source`` must finish before ``target`` starts, because of ``reason``."""

    source: str
    target: str
    reason: Reason
    detail: str = ""  # template: "tasks.x.output"; reads: "reads db/** ∩ writes db/**"


# Keyed by (source, target, reason): one edge per reason between a pair.
EdgeMap = dict[tuple[str, str, str], Edge]


def explicit_edges(plan: Plan) -> EdgeMap:
    """needs and template edges; unknown or self references are plan problems."""
    edges: EdgeMap = {}
    problems: list[Problem] = []
    for task in plan.tasks.values():
        for i, need in enumerate(task.needs):
            if need == task.id:
                where = f"tasks.{task.id}.needs[{i}]"
                problems.append(Problem(where, f"task '{task.id}' cannot need itself", task.line))
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


def reads_edges(
    plan: Plan,
    ids: list[str],
    writers: GlobIndex[str],
    explicit: EdgeMap,
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
    ancestors, bit = ancestor_bits(explicit_order, preds, {t for p in found for t in p})
    return [
        Edge(writer, reader, "reads", detail)
        for (writer, reader), detail in found.items()
        if not ancestors[writer] & bit[reader]
    ]


def ancestor_bits(
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


def toposort(ids: list[str], edges: EdgeMap, plan: Plan, *, from_reads: bool) -> list[str]:
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


def _cycle_error(plan: Plan, edges: EdgeMap, stuck: set[str], from_reads: bool) -> PlanError:
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


def _between(edges: EdgeMap, a: str, b: str) -> list[Edge]:
    return [edges[(a, b, r)] for r in RANK if (a, b, r) in edges]


def reason_text(edge: Edge) -> str:
    """Why an edge exists, as `plait plan` and cycle errors print it."""
    if edge.reason == "reads":
        return edge.detail
    return f"{edge.reason} ({edge.detail})" if edge.detail else edge.reason


def _file(plan: Plan) -> str | None:
    """The plan file as the other plan errors name it: relative to where plait runs."""
    if plan.path is None:
        return None
    try:
        return str(plan.path.relative_to(Path.cwd()))
    except ValueError:
        return str(plan.path)
