"""The report as one self-contained HTML file: a Gantt timeline of a run or an estimate.

Pure rendering of a `report.Timeline`: inline CSS and script, no network, every
text escaped. This module lays out the page around the plot: the header with its
figures, the legend, the task and number columns beside each plot row, and the
sections under it (time lost waiting, problems, the critical path). The plot itself
is `plait.report_gantt`; the page's fixed CSS, script and SVG patterns are
`plait.report_assets`.
"""

from __future__ import annotations

from plait.report import (
    KIND_LABELS,
    LOST_WAITS,
    TaskSummary,
    Timeline,
    fmt_cost,
    fmt_duration,
    fmt_saving,
    fmt_speedup,
    lost_s,
    one_line,
    ordered,
    outcome_counts,
    verify_word,
)
from plait.report_assets import CSS, ESTIMATE_HEADS, JS, RUN_HEADS, SVG_DEFS
from plait.report_gantt import (
    DEFAULT_W,
    KIND_NAMES,
    MIN_W,
    PAD,
    ROW,
    STATUS_NAMES,
    axis_max,
    css_word,
    esc,
    secs,
    svg_rows,
    tick_label,
    ticks,
)

__all__ = ["render_html"]


def _header(t: Timeline) -> str:
    if t.is_estimate:
        sub = f"predicted schedule from the plan's estimate · jobs {t.jobs}"
        stats = [
            ("predicted makespan", fmt_duration(t.wall_s)),
            ("sum of estimates", fmt_duration(t.sequential_s)),
            ("predicted speed-up", fmt_speedup(t.speedup)),
            ("predicted saving", fmt_saving(t)),
        ]
    else:
        when = _utc(t.started_at)
        sub = f"run {t.run_id} · {t.status} · started {when} · jobs {t.jobs}"
        stats = [
            ("wall time", fmt_duration(t.wall_s)),
            ("sum of task times", fmt_duration(t.sequential_s)),
            ("speed-up", fmt_speedup(t.speedup)),
            ("saving", fmt_saving(t)),
            ("cost", fmt_cost(t.cost_usd)),
            ("attempts", str(len(t.attempts))),
        ]
        if t.predicted_makespan_s:
            stats.append(("estimate", fmt_duration(t.predicted_makespan_s)))
        if t.verify is not None:
            stats.append(("verify", verify_word(t.verify)))
    chips = "".join(f'<span class="stat"><b>{esc(v)}</b> {esc(k)}</span>' for k, v in stats)
    if not t.is_estimate:
        chips += "".join(
            f'<span class="stat"><i class="dot o-{css_word(k)}"></i><b>{n}</b> {esc(k)}</span>'
            for k, n in outcome_counts(t).items()
        )
    return (
        f"<h1>{esc(t.plan_name)}</h1><span class='sub'>{esc(sub)}</span>"
        f'<div class="stats">{chips}</div>'
    )


def _utc(epoch: float) -> str:
    import datetime as dt  # local: only the header needs a calendar

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _legend(t: Timeline) -> str:
    def sw(cls: str, extra: str = "") -> str:
        return (
            f'<svg class="sw" width="22" height="12"><rect class="{cls}" x="1" y="1" '
            f'width="20" height="10"/>{extra}</svg>'
        )

    items = []
    seen = {a.status for a in t.attempts}
    for s in [*(x for x in STATUS_NAMES if x in seen), *sorted(seen - STATUS_NAMES.keys())]:
        items.append(sw(f"bar s-{css_word(s)}") + esc(STATUS_NAMES.get(s, s)))
    for kind in sorted({a.kind for a in t.attempts}):
        if kind in KIND_LABELS:
            ov = f'<rect class="ov p-{css_word(kind)}" x="1" y="1" width="20" height="10"/>'
            items.append(sw(f"bar s-ok k-{css_word(kind)}", ov) + esc(KIND_NAMES[kind]))
    if t.critical_path:
        items.append(sw("bar s-none crit") + "critical path (◆)")
    if t.predicted and not t.is_estimate:
        items.append(
            '<svg class="sw" width="22" height="12"><rect class="pred" x="1" y="7" width="20" '
            'height="3"/></svg>estimate'
        )
    if any(lost_s(t, x.id) for x in t.tasks):
        items.append(sw("wait") + "ready, held (exclusion / no free slot)")
    if t.edges:
        items.append(
            '<label><input type="checkbox" id="showedges" checked> dependency lines</label>'
        )
    return f'<div class="legend">{"".join(f"<span>{i}</span>" for i in items)}</div>'


def _columns(t: Timeline, rows: list[TaskSummary]) -> str:
    crit = set(t.critical_path)
    needs: dict[str, list[str]] = {}
    for src, dst, reason in t.edges:
        needs.setdefault(dst, []).append(f"{src} ({reason})")
    out = []
    for i, x in enumerate(rows):
        r = f"grid-row:{i + 1}"
        odd = " odd" if i % 2 else ""
        tip = f"{x.id} · {x.agent or 'agent ?'} · {x.outcome} · {fmt_duration(x.duration_s)}"
        if needs.get(x.id):
            tip += " · after " + ", ".join(needs[x.id])
        if x.changed_files:
            tip += f" · {len(x.changed_files)} files changed"
        if x.error:
            tip += " · " + one_line(x.error, 300)
        mark = '<b class="cp" title="on the critical path">◆</b>' if x.id in crit else ""
        out.append(
            f'<div class="lab c1{odd}{" crit" if x.id in crit else ""}" style="{r}" '
            f'data-task="{esc(x.id)}" title="{esc(tip)}"><i class="dot o-{css_word(x.outcome)}">'
            f'</i>{mark}{esc(x.id)} <span class="ag">{esc(x.agent)}</span></div>'
        )
        if t.is_estimate:  # nothing ran: show the estimate and the planned start instead
            cells = ("", fmt_duration(x.duration_s), tick_label(x.start_s or 0.0), "")
        else:
            waits = t.waits.get(x.id, {})
            lost = lost_s(t, x.id)
            wtip = ", ".join(f"{k} {fmt_duration(v)}" for k, v in waits.items() if v)
            cells = (str(x.attempts), fmt_cost(x.cost_usd), _dur_or_blank(lost), wtip)
        out.append(f'<div class="num c3{odd}" style="{r}">{cells[0]}</div>')
        out.append(f'<div class="num c4{odd}" style="{r}">{cells[1]}</div>')
        out.append(f'<div class="num c5{odd}" style="{r}" title="{esc(cells[3])}">{cells[2]}</div>')
    return "".join(out)


def _dur_or_blank(seconds: float) -> str:
    return fmt_duration(seconds) if seconds else ""


def _sections(t: Timeline) -> str:
    parts = []
    lost = sorted((x for x in t.tasks if lost_s(t, x.id)), key=lambda x: -lost_s(t, x.id))
    if lost:
        seen = {k for x in lost for k in t.waits.get(x.id, {})}
        # causes of lost time first, then the rest ("needs": waiting on the graph, not lost)
        keys = [k for k in LOST_WAITS if k in seen] + sorted(seen - set(LOST_WAITS))
        head = "".join(f"<th>{esc(k)}</th>" for k in keys)
        body = "".join(
            f"<tr><td>{esc(x.id)}</td><td>{fmt_duration(lost_s(t, x.id))}</td>"
            + "".join(f"<td>{_dur_or_blank(t.waits[x.id].get(k, 0.0))}</td>" for k in keys)
            + "</tr>"
            for x in lost[:20]
        )
        parts.append(
            "<section id='lost'><h2>Time lost waiting</h2><table><tr><th>task</th>"
            f"<th>lost in all</th>{head}</tr>{body}</table></section>"
        )
    problems = [x for x in t.tasks if x.error]
    if problems:
        items = "".join(
            f"<dt>{esc(x.id)} <span class='ag'>{esc(x.outcome)}</span></dt>"
            f"<dd><pre>{esc(x.error[:4000])}</pre></dd>"
            for x in problems
        )
        parts.append(f"<section id='problems'><h2>Problems</h2><dl>{items}</dl></section>")
    if t.critical_path:
        chain = " → ".join(esc(c) for c in t.critical_path)
        parts.append(f"<section><h2>Critical path</h2><p>{chain}</p></section>")
    return "".join(parts)


def render_html(t: Timeline) -> str:
    """One self-contained HTML file: a Gantt of every attempt, critical path, edges, waits."""
    rows = ordered(t)
    span = axis_max(t)
    height = max(1, len(rows)) * ROW
    under, over = svg_rows(t, rows, span)
    grid, axis = ticks(span, DEFAULT_W, height)
    label_w = min(240, max(130, 40 + 7 * max([4, *(len(x.id) + len(x.agent) for x in rows)])))
    title = f"plait · {t.plan_name}" + (" · estimate" if t.is_estimate else f" · {t.run_id}")
    plot = (
        f'<svg id="plot" class="c2" style="grid-row:1/span {max(1, len(rows))}" '
        f'width="{DEFAULT_W}" height="{height}" data-pad="{PAD}" data-max="{secs(span)}" '
        f'data-minw="{MIN_W}" data-row="{ROW}">{SVG_DEFS}<g id="grid">{grid}</g>{under}{over}</svg>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body style="--labw:{label_w}px"><header>{_header(t)}{_legend(t)}'
        '<div class="grid axisrow"><div class="colh c1">task</div>'
        f'<svg id="axis" class="c2" width="{DEFAULT_W}" height="24">{axis}</svg>'
        f"{ESTIMATE_HEADS if t.is_estimate else RUN_HEADS}</div></header>"
        f'<main><div class="grid rows">{_columns(t, rows)}{plot}</div>{_sections(t)}</main>'
        f"<script>{JS}</script></body></html>\n"
    )
