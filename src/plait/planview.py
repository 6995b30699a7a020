"""How `plait plan` shows an analysis: text for the terminal, JSON, Mermaid and DOT.

Pure rendering of an `analysis.Analysis`; nothing here computes the graph.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style

from plait.analysis import Analysis
from plait.model import DEFAULT_ESTIMATE_S
from plait.planedges import Edge, reason_text
from plait.planestimate import format_duration

__all__ = ["render_text", "to_dot", "to_json", "to_mermaid"]


def _why(edges: Sequence[Edge]) -> str:
    return "; ".join(reason_text(e) for e in edges)


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
                # Numbered from 1, as the text and the graphs say "phase 1"; the
                # task is in phases[phase - 1].
                "phase": a.phase_of[t] + 1,
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


#: Past this many tasks the text view lists a sample of each section: nobody reads
#: 10,000 rows in a terminal, and `--json` / `--graph` still give every one.
LARGE_PLAN = 200
PER_PHASE, PER_SECTION = 12, 60


def _more(n: int) -> _Line:
    return [(f"  … and {n} more (`plait plan --json` lists every one)", "dim")]


def _text_lines(a: Analysis, width: int) -> list[_Line]:
    large = len(a.order) > LARGE_PLAN
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
        shown = phase[:PER_PHASE] if large else phase
        for t in shown:
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
        if len(shown) < len(phase):
            out.append(_more(len(phase) - len(shown)))
    grouped = list(_grouped(a).items())
    if grouped:
        out += [[], [("why tasks wait", "bold underline")]]
        listed = grouped[:PER_SECTION] if large else grouped
        left_w = min(max(len(f"{s} → {t}") for (s, t), _ in listed), 40)
        for (s, t), edges in listed:
            out += _row([(f"{s} → {t}", "cyan")], left_w, _why(edges), width)
        if len(listed) < len(grouped):
            out.append(_more(len(grouped) - len(listed)))
    if a.exclusions:
        out += [[], [("exclusive: overlapping writes, never at the same time", "bold underline")]]
        pairs = a.exclusions[:PER_SECTION] if large else a.exclusions
        left_w = min(max(len(f"{x.a} ↔ {x.b}") for x in pairs), 40)
        for x in pairs:
            globs = ", ".join(f"{g} ∩ {h}" for g, h in x.globs)
            out += _row([(f"{x.a} ↔ {x.b}", "yellow")], left_w, globs, width)
        if len(pairs) < len(a.exclusions):
            out.append(_more(len(a.exclusions) - len(pairs)))
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
