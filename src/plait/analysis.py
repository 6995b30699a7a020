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

import heapq
import statistics
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style

from plait.errors import PlanError, Problem
from plait.globs import GlobIndex
from plait.model import DEFAULT_ESTIMATE_S, Plan
from plait.scheduler import simulate
from plait.templates import TemplateProblem, template_refs

__all__ = [
    "Analysis",
    "Edge",
    "Estimate",
    "Exclusion",
    "analyze",
    "format_duration",
    "render_text",
    "to_dot",
    "to_json",
    "to_mermaid",
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
        phase_of[t] = 1 + max((phase_of[p] for p in preds[t]), default=-1)
    phases: list[list[str]] = [[] for _ in range(max(phase_of.values(), default=-1) + 1)]
    for t in order:
        phases[phase_of[t]].append(t)

    durations, defaulted = _durations(plan, order, history or {})
    priority: dict[str, float] = {}
    for t in reversed(order):
        priority[t] = durations[t] + max((priority[s] for s in succs[t]), default=0.0)
    critical = _critical_path(order, succs, priority)

    frozen_needs = {t: frozenset(preds[t]) for t in ids}
    frozen_excl = {t: frozenset(exclusive[t]) for t in ids}
    schedule = simulate(durations, frozen_needs, frozen_excl, priority, jobs)
    sequential = sum(durations.values())
    estimate = Estimate(
        sequential_s=sequential,
        parallel_s=schedule.makespan,
        jobs=jobs,
        saving_s=sequential - schedule.makespan,
        defaulted=tuple(defaulted),
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


# ------------------------------------------------------------------ edges

_EdgeMap = dict[tuple[str, str, str], Edge]


def _explicit_edges(plan: Plan) -> _EdgeMap:
    """needs and template edges; unknown or self references are plan problems."""
    edges: _EdgeMap = {}
    problems: list[Problem] = []
    for task in plan.tasks.values():
        for i, need in enumerate(task.needs):
            where = f"tasks.{task.id}.needs[{i}]"
            if need == task.id:
                problems.append(Problem(where, "a task cannot need itself", task.line))
            elif need not in plan.tasks:
                problems.append(Problem(where, f"unknown task {need!r}", task.line))
            else:
                edges.setdefault((need, task.id, "needs"), Edge(need, task.id, "needs"))
        # A reference needs both a `{` delimiter and the name: skip the parser otherwise.
        if "{" not in task.prompt or "tasks" not in task.prompt:
            continue
        try:
            refs = template_refs(task.prompt)
        except TemplateProblem as exc:
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
        for glob in dict.fromkeys(plan.tasks[reader].reads):
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
    """Kahn's algorithm, plan order among ready tasks; PlanError naming a cycle."""
    pos = {t: i for i, t in enumerate(ids)}
    succs: dict[str, set[str]] = {t: set() for t in ids}
    indegree = dict.fromkeys(ids, 0)
    for source, target, _ in edges:
        if target not in succs[source]:
            succs[source].add(target)
            indegree[target] += 1
    heap = [pos[t] for t in ids if not indegree[t]]
    order: list[str] = []
    while heap:
        t = ids[heapq.heappop(heap)]
        order.append(t)
        for s in succs[t]:
            indegree[s] -= 1
            if not indegree[s]:
                heapq.heappush(heap, pos[s])
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
        f"{a} → {b}: " + ", ".join(_reason_text(e) for e in _between(edges, a, b)) for a, b in steps
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


def _reason_text(edge: Edge) -> str:
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
    for glob, tasks in writers.entries():
        for other, others in writers.overlapping(glob):
            for t in tasks:
                for u in others:
                    # Each unordered pair once: from its earlier task in `order`.
                    if rank[t] < rank[u]:
                        pairs.setdefault((t, u), []).append((glob, other))
    if not pairs:
        return []
    ancestors, bit = _ancestor_bits(order, preds, {t for p in pairs for t in p})
    out: list[Exclusion] = []
    for (t, u), found in pairs.items():
        if ancestors[u] & bit[t]:
            continue  # t comes before u: ordered, never at the same time anyway
        a, b = sorted((t, u))
        globs = sorted(set(found) if a == t else {(y, x) for x, y in found})
        out.append(Exclusion(a, b, tuple(globs)))
    return sorted(out, key=lambda e: (e.a, e.b))


# ------------------------------------------------------------------ estimates


def _durations(
    plan: Plan, order: list[str], history: Mapping[str, Sequence[float]]
) -> tuple[dict[str, float], list[str]]:
    durations: dict[str, float] = {}
    defaulted: list[str] = []
    for t in order:
        task = plan.tasks[t]
        past = history.get(t)
        if task.estimate_s is not None:
            durations[t] = float(task.estimate_s)
        elif past:
            durations[t] = float(statistics.median(past))
        else:
            durations[t] = DEFAULT_ESTIMATE_S
            defaulted.append(t)
    return durations, defaulted


def _critical_path(
    order: list[str], succs: Mapping[str, set[str]], priority: Mapping[str, float]
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


# ------------------------------------------------------------------ views


def _why(edges: Sequence[Edge]) -> str:
    return "; ".join(_reason_text(e) for e in edges)


def _grouped(a: Analysis) -> dict[tuple[str, str], list[Edge]]:
    """Edges of the same pair together (one arrow, every reason on it)."""
    out: dict[tuple[str, str], list[Edge]] = {}
    for edge in a.edges:
        out.setdefault((edge.source, edge.target), []).append(edge)
    return out


def to_json(a: Analysis) -> dict[str, Any]:
    """The `plait plan --json` object of DESIGN §7 (edges also carry their detail)."""
    pos = {t: i for i, t in enumerate(a.order)}
    est = a.estimate
    return {
        "tasks": [
            {
                "id": t,
                "agent": a.plan.tasks[t].agent,
                "needs": sorted(a.needs[t], key=pos.__getitem__),
                "writes": list(a.plan.tasks[t].writes),
                "phase": a.phase_of[t],
                "estimate_s": round(a.durations[t], 3),
            }
            for t in a.order
        ],
        "edges": [
            {"from": e.source, "to": e.target, "reason": e.reason, "detail": e.detail}
            for e in a.edges
        ],
        "exclusive": [
            {"tasks": [x.a, x.b], "globs": [list(pair) for pair in x.globs]} for x in a.exclusions
        ],
        "phases": [list(p) for p in a.phases],
        "critical_path": list(a.critical_path),
        "estimate": {
            "sequential_s": round(est.sequential_s, 3),
            "parallel_s": round(est.parallel_s, 3),
            "jobs": est.jobs,
            "saving_s": round(est.saving_s, 3),
            "defaulted": list(est.defaulted),
        },
    }


def _node_label(a: Analysis, t: str) -> str:
    return f"{a.plan.tasks[t].agent} · {format_duration(a.durations[t])}"


def to_mermaid(a: Analysis) -> str:
    """A Mermaid flowchart: phases as subgraphs, edges labelled with their reasons,
    exclusions as dashed undirected links."""

    def q(text: str) -> str:
        return '"' + text.replace('"', "#quot;") + '"'

    node = {t: f"n{i}" for i, t in enumerate(a.order)}
    lines = ["flowchart LR"]
    for i, phase in enumerate(a.phases):
        lines.append(f"  subgraph phase{i + 1}[{q(f'phase {i + 1}')}]")
        lines += [f"    {node[t]}[{q(f'{t}<br/>{_node_label(a, t)}')}]" for t in phase]
        lines.append("  end")
    for (s, t), edges in _grouped(a).items():
        lines.append(f"  {node[s]} -->|{q(_why(edges))}| {node[t]}")
    for x in a.exclusions:
        globs = ", ".join(f"{g} ∩ {h}" for g, h in x.globs)
        lines.append(f"  {node[x.a]} -.-|{q('exclusive: ' + globs)}| {node[x.b]}")
    return "\n".join(lines) + "\n"


def to_dot(a: Analysis) -> str:
    """Graphviz DOT: edges labelled with their reasons, exclusions dashed, undirected."""

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["digraph plan {", "  rankdir=LR;", "  node [shape=box];"]
    for t in a.order:
        lines.append(f"  {q(t)} [label={q(t + chr(10) + _node_label(a, t))}];")
    for (s, t), edges in _grouped(a).items():
        lines.append(f"  {q(s)} -> {q(t)} [label={q(_why(edges))}];")
    for x in a.exclusions:
        label = "exclusive\n" + "\n".join(f"{g} ∩ {h}" for g, h in x.globs)
        lines.append(
            f"  {q(x.a)} -> {q(x.b)} [label={q(label)}, style=dashed, dir=none, constraint=false];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _names(ids: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


_Line = list[tuple[str, str]]  # (text, style) pieces of one output line


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, max(width, 8), subsequent_indent=indent, break_on_hyphens=False) or [
        ""
    ]


def _row(left: _Line, left_w: int, right: str, width: int, style: str = "") -> list[_Line]:
    """Two columns: ``left`` padded to ``left_w``, ``right`` wrapped beside it."""
    pad = 2 + left_w + 2
    used = sum(len(text) for text, _ in left)
    if width - pad < 16:  # no room beside: the right column goes underneath
        return [[("  ", ""), *left]] + [
            [("      ", ""), (chunk, style)] for chunk in _wrap(right, width - 6)
        ]
    chunks = _wrap(right, width - pad)
    lines: list[_Line] = []
    if used > left_w:
        lines.append([("  ", ""), *left])
        first: _Line = [(" " * pad, "")]
    else:
        first = [("  ", ""), *left, (" " * (left_w - used + 2), "")]
    lines.append([*first, (chunks[0], style)])
    lines += [[(" " * pad, ""), (chunk, style)] for chunk in chunks[1:]]
    return lines


def _text_lines(a: Analysis, width: int) -> list[_Line]:
    est = a.estimate
    tasks = a.plan.tasks
    defaulted = set(est.defaulted)
    out: list[_Line] = []

    def prose(text: str, head: str = "", style: str = "") -> None:
        for i, chunk in enumerate(_wrap(head + text, width, "  ")):
            if i == 0 and head:
                out.append([(head, "bold"), (chunk[len(head) :], style)])
            else:
                out.append([(chunk, style)])

    title = f"plan {a.plan.name}"
    facts = [
        _plural(len(a.order), "task"),
        _plural(len(a.edges), "edge"),
        _plural(len(a.exclusions), "exclusive pair"),
        _plural(len(a.phases), "phase"),
    ]
    prose(" · " + " · ".join(facts), title)
    # Columns fit the usual names; a longer id takes a line of its own.
    id_w = max((len(t) for t in a.order if len(t) <= 24), default=0)
    agent_w = min(max((len(tasks[t].agent) for t in a.order), default=0), 18)
    est_w = max((len(format_duration(d)) + 1 for d in a.durations.values()), default=0)
    for i, phase in enumerate(a.phases):
        out += [
            [],
            [(f"phase {i + 1}", "bold underline"), (f" · {_plural(len(phase), 'task')}", "")],
        ]
        for t in phase:
            task = tasks[t]
            agent = task.agent if len(task.agent) <= agent_w else task.agent[: agent_w - 1] + "…"
            duration = format_duration(a.durations[t]) + ("*" if t in defaulted else " ")
            name = (t, "bold cyan")
            rest: _Line = [(agent.ljust(agent_w) + "  ", "magenta"), (duration.rjust(est_w), "")]
            writes = ", ".join(task.writes) if task.writes else "(no writes: beside anything)"
            if len(t) > id_w:
                out.append([("  ", ""), name])
                out += _row(
                    [(" " * id_w + "  ", ""), *rest], id_w + 2 + agent_w + 2 + est_w, writes, width
                )
            else:
                left = [name, (" " * (id_w - len(t) + 2), ""), *rest]
                out += _row(left, id_w + 2 + agent_w + 2 + est_w, writes, width)
    grouped = _grouped(a)
    if grouped:
        out += [[], [("why tasks wait", "bold underline")]]
        left_w = min(max(len(f"{s} → {t}") for s, t in grouped), 40)
        for (s, t), edges in grouped.items():
            out += _row([(f"{s} → {t}", "cyan")], left_w, _why(edges), width)
    if a.exclusions:
        out += [[], [("exclusive: overlapping writes, never at the same time", "bold underline")]]
        left_w = min(max(len(f"{x.a} ↔ {x.b}") for x in a.exclusions), 40)
        for x in a.exclusions:
            globs = ", ".join(f"{g} ∩ {h}" for g, h in x.globs)
            out += _row([(f"{x.a} ↔ {x.b}", "yellow")], left_w, globs, width)
    out.append([])
    length = sum(a.durations[t] for t in a.critical_path)
    prose(f"{' → '.join(a.critical_path)} ({format_duration(length)})", "critical path: ")
    saving = f"saving {format_duration(est.saving_s)}"
    if est.sequential_s > 0:
        saving += f" ({est.saving_s / est.sequential_s:.0%})"
    prose(
        f"sequential {format_duration(est.sequential_s)} · parallel "
        f"{format_duration(est.parallel_s)} with {_plural(est.jobs, 'job')} · {saving}",
        "estimate: ",
    )
    if est.defaulted:
        prose(
            f"* no estimate and no history, so one unit ({format_duration(DEFAULT_ESTIMATE_S)})"
            f" each: {_names(list(est.defaulted))}; give them an `estimate:`",
            style="dim",
        )
    return out


class _PlanText:
    """The plan view as a rich renderable, laid out for the console's width."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        styles: dict[str, Style] = {"": Style.null()}
        for line in _text_lines(self.analysis, options.max_width):
            # Fewer, longer segments render faster: padding joins the piece before it.
            merged: _Line = []
            for text, style in line:
                if merged and (style == merged[-1][1] or not text.strip()):
                    merged[-1] = (merged[-1][0] + text, merged[-1][1])
                else:
                    merged.append((text, style))
            for text, style in merged:
                if style not in styles:
                    styles[style] = console.get_style(style)
                yield Segment(text, styles[style])
            yield Segment.line()


def render_text(a: Analysis) -> RenderableType:
    """The human view of `plait plan`: tasks by phase (agent, estimate, writes), why
    each edge is there, exclusions with their globs, critical path and estimate.

    Laid out for the console's width (80 columns reads well); fast for large plans.
    """
    return _PlanText(a)
