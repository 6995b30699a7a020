"""The report as one self-contained HTML file: a Gantt timeline of a run or an estimate.

Pure rendering of a `report.Timeline`: inline CSS and script, no network, every
text escaped. Python writes every bar at a default width so the file reads without
script; the script only re-lays the same elements out to the window's width.
"""

from __future__ import annotations

import html

from plait.report import (
    HELD_WAITS,
    KIND_LABELS,
    LOST_WAITS,
    AttemptSpan,
    TaskSummary,
    Timeline,
    fmt_cost,
    fmt_duration,
    fmt_speedup,
    lost_s,
    one_line,
    ordered,
    outcome_counts,
    verify_word,
)

# ---------------------------------------------------------------- HTML timeline
#
# Python writes every bar at a default plot width so the file reads without script;
# the inline script then re-lays the same elements out to the window's width from
# their data-start/data-end (seconds), with the same formulas as `_svg_rows` and `_ticks`.

ROW = 18  # px per task row: 50 tasks fit in ~900 px, a laptop screen and a scroll
BAR_Y, BAR_H = 2, 11
PRED_Y, PRED_H = 14, 3  # the estimate: a thin bar under the real one
PAD = 8  # px of air at both ends of the time axis
MIN_W = 2  # an instant attempt still shows as a sliver
DEFAULT_W = 900
TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
STATUS_NAMES = {
    "ok": "succeeded",
    "failed": "failed",
    "timeout": "timed out",
    "crashed": "crashed",
    "rate_limited": "rate-limited",
    "errored": "errored",
    "conflict": "merge conflict",
    "cancelled": "cancelled",
    "running": "running",
    "predicted": "predicted",
}
KIND_NAMES = {**KIND_LABELS, "rate_limit": "after rate limit"}


def esc(value: object) -> str:
    """Escape any text for HTML text and attribute positions."""
    return html.escape(str(value), quote=True)


def _cls(word: str) -> str:
    """A CSS class fragment from a status or kind: known words pass, the rest is 'other'."""
    return word if word.replace("_", "").isalpha() and word.isascii() else "other"


def axis_max(t: Timeline) -> float:
    """The right end of the time axis, in seconds."""
    ends = [t.wall_s, t.predicted_makespan_s, *(a.end_s for a in t.attempts)]
    ends += [f for _, f in t.predicted.values()]
    return max([1.0, *ends])


def tick_step(span: float, plot_px: float) -> float:
    """The smallest round step that keeps tick labels ~90 px apart."""
    most = max(2.0, plot_px / 90)
    return next((s for s in TICK_STEPS if span / s <= most), span / most)


def tick_label(t: float) -> str:
    """Axis label: 0s, 30s, 1m, 1m30, 1h05."""
    if t < 60:
        return f"{round(t, 1):g}s"
    s = round(t)
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60:02d}" if s % 60 else "")
    return f"{s // 3600}h" + (f"{s % 3600 // 60:02d}" if s % 3600 // 60 else "")


def _ticks(span: float, width: int, height: int) -> tuple[str, str]:
    """Grid lines for the plot and labelled ticks for the sticky axis."""
    k = (width - 2 * PAD) / span
    step = tick_step(span, width - 2 * PAD)
    grid, axis = [], []
    for i in range(int(span / step + 1e-9) + 1):
        x = f"{PAD + i * step * k:.1f}"
        grid.append(f'<line x1="{x}" x2="{x}" y1="0" y2="{height}"/>')
        axis.append(f'<line x1="{x}" x2="{x}" y1="17" y2="24"/>')
        anchor = _anchor(i, PAD + i * step * k, width)
        axis.append(f'<text x="{x}" y="13"{anchor}>{tick_label(i * step)}</text>')
    return "".join(grid), "".join(axis)


def _num(x: float) -> str:
    """Seconds for a data attribute: millisecond precision, no trailing zeros."""
    return f"{x:.3f}".rstrip("0").rstrip(".") or "0"


def _anchor(i: int, x: float, width: int) -> str:
    """Keep the first and last tick labels inside the axis instead of under a column."""
    if i == 0:
        return ' text-anchor="start"'
    return ' text-anchor="end"' if x > width - 20 else ""


def _bar_label(a: AttemptSpan) -> str:
    words = [KIND_LABELS.get(a.kind, "")]
    if a.status not in ("ok", "predicted", "running"):
        words.append(STATUS_NAMES.get(a.status, a.status))
    return " · ".join(w for w in words if w)


def _svg_rows(t: Timeline, rows: list[TaskSummary], span: float) -> tuple[str, str]:
    """The plot's body: stripes, waits, edges, predicted bars, attempt bars and labels."""
    k = (DEFAULT_W - 2 * PAD) / span
    index = {x.id: i for i, x in enumerate(rows)}
    crit = set(t.critical_path)
    crit_edges = set(zip(t.critical_path, t.critical_path[1:], strict=False))
    by_task: dict[str, list[AttemptSpan]] = {}
    for a in t.attempts:
        by_task.setdefault(a.task_id, []).append(a)

    def span_attrs(start: float, end: float) -> str:
        x0, x1 = PAD + start * k, PAD + end * k
        return (
            f'data-start="{_num(start)}" data-end="{_num(end)}" x="{x0:.2f}" '
            f'width="{max(x1 - x0, MIN_W):.2f}"'
        )

    under, over = [], []
    for i, task in enumerate(rows):
        y = i * ROW
        if i % 2:
            under.append(f'<rect class="stripe" x="0" y="{y}" width="100%" height="{ROW}"/>')
        spans = sorted(by_task.get(task.id, []), key=lambda a: (a.start_s, a.attempt))
        if not spans:  # skipped, cancelled or pending: say so where it would have run
            at = t.predicted.get(task.id, (0.0, 0.0))[0]
            over.append(
                f'<text class="note" data-at="{_num(at)}" x="{PAD + at * k + 3:.2f}" '
                f'y="{y + BAR_Y + 9}">{esc(task.outcome)}</text>'
            )
        held = sum(v for key, v in t.waits.get(task.id, {}).items() if key in HELD_WAITS)
        if spans and held > 0:
            start = spans[0].start_s
            held = min(held, start)
            under.append(
                f'<rect class="wait" data-task="{esc(task.id)}" {span_attrs(start - held, start)}'
                f' y="{y + BAR_Y}" height="{BAR_H}"><title>{esc(task.id)}: ready but held'
                f" {fmt_duration(held)} (exclusive partner running / no free slot)</title></rect>"
            )
        if task.id in t.predicted and not t.is_estimate:
            ps, pf = t.predicted[task.id]
            over.append(
                f'<rect class="pred" data-task="{esc(task.id)}" {span_attrs(ps, pf)}'
                f' y="{y + PRED_Y}" height="{PRED_H}"><title>{esc(task.id)}: estimate'
                f" {tick_label(ps)}–{tick_label(pf)}</title></rect>"
            )
        for a in spans:
            classes = f"bar s-{_cls(a.status)} k-{_cls(a.kind)}" + (
                " crit" if task.id in crit else ""
            )
            tip = (
                f"{task.id} · attempt {a.attempt} ({KIND_NAMES.get(a.kind, a.kind)})"
                f" · {STATUS_NAMES.get(a.status, a.status)} · {tick_label(a.start_s)}–"
                f"{tick_label(a.end_s)} ({fmt_duration(a.end_s - a.start_s)})"
                + (f" · {fmt_cost(a.cost_usd)}" if a.cost_usd is not None else "")
            )
            ident = f'data-task="{esc(a.task_id)}" data-attempt="{a.attempt}"'
            attrs = f'{span_attrs(a.start_s, a.end_s)} y="{y + BAR_Y}" height="{BAR_H}"'
            over.append(f'<rect class="{classes}" {ident} {attrs}><title>{esc(tip)}</title></rect>')
            if a.kind in KIND_LABELS:
                over.append(f'<rect class="ov p-{_cls(a.kind)}" {attrs}/>')
            label = _bar_label(a)
            if label:
                need = 7 + 6 * len(label)  # ~6 px per 10 px glyph; hidden when it won't fit
                x0, x1 = PAD + a.start_s * k, PAD + a.end_s * k
                hide = "" if x1 - x0 >= need else ' style="display:none"'
                over.append(
                    f'<text class="bl" data-at="{_num(a.start_s)}" data-to="{_num(a.end_s)}"'
                    f' data-need="{need}" x="{x0 + 3:.2f}" y="{y + BAR_Y + 9}"{hide}>'
                    f"{esc(label)}</text>"
                )
    for src, dst, reason in t.edges:
        if src not in index or dst not in index or not by_task.get(src) or not by_task.get(dst):
            continue
        t1 = max(a.end_s for a in by_task[src])
        t2 = min(a.start_s for a in by_task[dst])
        r1, r2 = index[src], index[dst]
        d = _edge_path(PAD + t1 * k, r1, PAD + t2 * k, r2)
        cls = "edge crit" if (src, dst) in crit_edges else "edge"
        under.append(
            f'<path class="{cls}" data-from="{esc(src)}" data-to="{esc(dst)}" data-t1="{_num(t1)}"'
            f' data-t2="{_num(t2)}" data-r1="{r1}" data-r2="{r2}" d="{d}">'
            f"<title>{esc(src)} → {esc(dst)} ({esc(reason)})</title></path>"
        )
    return "".join(under), "".join(over)


def _edge_path(x1: float, r1: int, x2: float, r2: int) -> str:
    y1, y2 = r1 * ROW + ROW / 2, r2 * ROW + ROW / 2
    xm = x1 + 4 if x2 >= x1 + 6 else x1
    return f"M{x1:.1f} {y1:g}H{xm:.1f}V{y2:g}H{x2:.1f}"


def _header(t: Timeline) -> str:
    if t.is_estimate:
        sub = f"predicted schedule from the plan's estimate · jobs {t.jobs}"
        stats = [
            ("predicted makespan", fmt_duration(t.wall_s)),
            ("sum of estimates", fmt_duration(t.sequential_s)),
            ("predicted speed-up", fmt_speedup(t.speedup)),
        ]
    else:
        when = _utc(t.started_at)
        sub = f"run {t.run_id} · {t.status} · started {when} · jobs {t.jobs}"
        stats = [
            ("wall time", fmt_duration(t.wall_s)),
            ("sum of task times", fmt_duration(t.sequential_s)),
            ("speed-up", fmt_speedup(t.speedup)),
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
            f'<span class="stat"><i class="dot o-{_cls(k)}"></i><b>{n}</b> {esc(k)}</span>'
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
        items.append(sw(f"bar s-{_cls(s)}") + esc(STATUS_NAMES.get(s, s)))
    for kind in sorted({a.kind for a in t.attempts}):
        if kind in KIND_LABELS:
            ov = f'<rect class="ov p-{_cls(kind)}" x="1" y="1" width="20" height="10"/>'
            items.append(sw(f"bar s-ok k-{_cls(kind)}", ov) + esc(KIND_NAMES[kind]))
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
            f'data-task="{esc(x.id)}" title="{esc(tip)}"><i class="dot o-{_cls(x.outcome)}">'
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
    under, over = _svg_rows(t, rows, span)
    grid, axis = _ticks(span, DEFAULT_W, height)
    label_w = min(240, max(130, 40 + 7 * max([4, *(len(x.id) + len(x.agent) for x in rows)])))
    title = f"plait · {t.plan_name}" + (" · estimate" if t.is_estimate else f" · {t.run_id}")
    plot = (
        f'<svg id="plot" class="c2" style="grid-row:1/span {max(1, len(rows))}" '
        f'width="{DEFAULT_W}" height="{height}" data-pad="{PAD}" data-max="{_num(span)}" '
        f'data-minw="{MIN_W}" data-row="{ROW}">{_DEFS}<g id="grid">{grid}</g>{under}{over}</svg>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>"
        f'<body style="--labw:{label_w}px"><header>{_header(t)}{_legend(t)}'
        '<div class="grid axisrow"><div class="colh c1">task</div>'
        f'<svg id="axis" class="c2" width="{DEFAULT_W}" height="24">{axis}</svg>'
        f"{_ESTIMATE_HEADS if t.is_estimate else _RUN_HEADS}</div></header>"
        f'<main><div class="grid rows">{_columns(t, rows)}{plot}</div>{_sections(t)}</main>'
        f"<script>{_JS}</script></body></html>\n"
    )


_RUN_HEADS = (
    '<div class="colh num c3" title="attempts">tries</div>'
    '<div class="colh num c4" title="cost of all attempts">cost</div>'
    '<div class="colh num c5" title="time held by exclusions, conflicts, retries">lost</div>'
)
_ESTIMATE_HEADS = (
    '<div class="colh num c3"></div><div class="colh num c4">estimate</div>'
    '<div class="colh num c5">start</div>'
)

_DEFS = (
    "<defs>"
    '<pattern id="pat-retry" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="2.5" height="6" fill="#fff" opacity=".5"/>'
    "</pattern>"
    '<pattern id="pat-conflict" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<path d="M0 0L5 5M5 0L0 5" stroke="#fff" stroke-width="1.1" opacity=".6"/></pattern>'
    '<pattern id="pat-resume" width="5" height="5" patternUnits="userSpaceOnUse">'
    '<rect width="1.6" height="5" fill="#fff" opacity=".55"/></pattern>'
    '<pattern id="pat-dots" width="4" height="4" patternUnits="userSpaceOnUse">'
    '<circle cx="2" cy="2" r="1" fill="#fff" opacity=".7"/></pattern>'
    '<marker id="arr" viewBox="0 0 6 6" refX="6" refY="3" markerWidth="5" markerHeight="5" '
    'orient="auto"><path d="M0 0L6 3L0 6z" fill="#57606a"/></marker>'
    "</defs>"
)

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:12px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1f2328;background:#fff}
header{position:sticky;top:0;z-index:5;background:#fff;border-bottom:1px solid #d0d7de;
padding:6px 12px 0;box-shadow:0 2px 4px rgba(0,0,0,.06)}
h1{font-size:16px;margin:0;display:inline}h2{font-size:14px;margin:18px 0 6px}
.sub{color:#57606a;margin-left:10px}
.stats{display:flex;flex-wrap:wrap;gap:2px 18px;margin:4px 0}
.stat b{font-size:14px}.stat .dot{margin-right:4px}
.legend{display:flex;flex-wrap:wrap;gap:2px 14px;color:#444;margin-bottom:2px;align-items:center}
.legend span,.legend label{display:inline-flex;align-items:center;gap:4px;white-space:nowrap}
.grid{display:grid;grid-template-columns:var(--labw) minmax(0,1fr) 40px 62px 58px}
.axisrow{align-items:end}.colh{color:#57606a;font-weight:600;padding:0 6px 3px 0}
#axis text{font-size:11px;fill:#57606a}#axis line{stroke:#8c959f}
#axis text:not([text-anchor]){text-anchor:middle}
main{padding:0 12px 32px}.rows{grid-auto-rows:18px}
.c1{grid-column:1}.c2{grid-column:2}.c3{grid-column:3}.c4{grid-column:4}.c5{grid-column:5}
svg.c2{display:block;width:100%}
.lab{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;padding:0 6px 0 2px;line-height:18px}
.lab.crit{font-weight:600}.cp{color:#b42318;margin-right:3px;font-size:10px}
.ag{color:#6e7781;font-weight:400;font-size:11px}
.num{text-align:right;padding-right:6px;line-height:18px;font-variant-numeric:tabular-nums;
color:#424a53;white-space:nowrap}
.odd{background:#f3f5f7}.stripe{fill:#f3f5f7}.hl{background:#fff4c2}
.dot{display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:5px;
background:#8c959f}
#grid line{stroke:#d8dee4;stroke-width:1}
.bar{stroke:rgba(0,0,0,.25);stroke-width:.6}
.s-ok,.o-succeeded{fill:#2da44e;background:#2da44e}
.s-failed,.o-failed{fill:#cf222e;background:#cf222e}
.s-timeout{fill:#e16f24}.s-crashed{fill:#82071e}.s-errored,.o-errored{fill:#a4286a;background:#a4286a}
.s-rate_limited{fill:#8250df}.s-conflict,.o-conflicted{fill:#d4a72c;background:#d4a72c}
.s-cancelled,.o-cancelled,.o-skipped{fill:#8c959f;background:#8c959f}
.o-skipped{background:#d0d7de}.s-running,.o-running{fill:#0969da;background:#0969da}
.s-predicted{fill:#8ca2c4}.s-other{fill:#6e7781}.s-none{fill:#fff}
.o-pending{background:#8ca2c4}
.p-retry{fill:url(#pat-retry)}.p-conflict{fill:url(#pat-conflict)}
.p-resume,.p-fixer{fill:url(#pat-resume)}.p-rate_limit{fill:url(#pat-dots)}
.ov{pointer-events:none}
.k-conflict{stroke:#6b4e00;stroke-width:1.2;stroke-dasharray:3 2}
.k-retry{stroke:#24292f;stroke-width:1}
.bar.crit{stroke:#111;stroke-width:1.8}
.pred{fill:#57606a;opacity:.55}.note{font-size:10px;font-style:italic;fill:#57606a}
.wait{fill:#d8dee4;stroke:#57606a;stroke-width:.7;stroke-dasharray:2 2}
.bl{font-size:10px;font-weight:600;fill:#111;paint-order:stroke;stroke:#fff;stroke-width:2.5px;
stroke-linejoin:round;pointer-events:none}
.edge{fill:none;stroke:#57606a;stroke-width:.8;opacity:.35;marker-end:url(#arr)}
.edge.crit{stroke:#b42318;opacity:.8;stroke-width:1.2}
#plot.focus .edge{opacity:.06}#plot.focus .edge.hl{opacity:1;stroke-width:1.6}
#plot.noedges .edge{display:none}
table{border-collapse:collapse}td,th{padding:2px 10px 2px 0;text-align:left}
td+td{text-align:right;font-variant-numeric:tabular-nums}th{color:#57606a}
pre{white-space:pre-wrap;margin:2px 0 8px;background:#f6f8fa;padding:6px;max-height:12em;
overflow:auto}dt{font-weight:600}dd{margin-left:12px}
"""

_JS = r"""
(()=>{const P=document.getElementById('plot'),A=document.getElementById('axis');
const D=P.dataset,PAD=+D.pad,MAX=+D.max,MINW=+D.minw,ROW=+D.row;
const STEPS=[0.1,0.2,0.5,1,2,5,10,15,30,60,120,300,600,900,1800,3600,7200];
const lab=t=>{if(t<60)return(+t.toFixed(1))+'s';const s=Math.round(t);
const two=n=>String(n).padStart(2,'0');
if(s<3600)return Math.floor(s/60)+'m'+(s%60?two(s%60):'');
const m=Math.floor(s%3600/60);return Math.floor(s/3600)+'h'+(m?two(m):'');};
const path=(x1,r1,x2,r2)=>{const y1=r1*ROW+ROW/2,y2=r2*ROW+ROW/2,xm=x2>=x1+6?x1+4:x1;
return 'M'+x1.toFixed(1)+' '+y1+'H'+xm.toFixed(1)+'V'+y2+'H'+x2.toFixed(1);};
function layout(){const w=Math.floor(P.getBoundingClientRect().width);if(w<60)return;
const k=(w-2*PAD)/MAX,X=t=>PAD+t*k;P.setAttribute('width',w);A.setAttribute('width',w);
P.querySelectorAll('[data-start]').forEach(e=>{const a=X(+e.dataset.start),
b=X(+e.dataset.end);e.setAttribute('x',a.toFixed(2));
e.setAttribute('width',Math.max(b-a,MINW).toFixed(2));});
P.querySelectorAll('.ov').forEach(e=>{const b=e.previousElementSibling;
e.setAttribute('x',b.getAttribute('x'));e.setAttribute('width',b.getAttribute('width'));});
P.querySelectorAll('text.bl').forEach(e=>{const d=e.dataset,a=X(+d.at),b=X(+d.to);
e.setAttribute('x',(a+3).toFixed(2));e.style.display=b-a>=+d.need?'':'none';});
P.querySelectorAll('text.note').forEach(e=>e.setAttribute('x',(X(+e.dataset.at)+3).toFixed(2)));
P.querySelectorAll('path.edge').forEach(e=>{const d=e.dataset;
e.setAttribute('d',path(X(+d.t1),+d.r1,X(+d.t2),+d.r2));});
const most=Math.max(2,(w-2*PAD)/90);let step=STEPS.find(s=>MAX/s<=most)||MAX/most;
let g='',ax='';for(let i=0;i<=Math.floor(MAX/step+1e-9);i++){const x=X(i*step).toFixed(1);
g+='<line x1="'+x+'" x2="'+x+'" y1="0" y2="'+P.getAttribute('height')+'"/>';
const an=i==0?' text-anchor="start"':+x>w-20?' text-anchor="end"':'';
ax+='<line x1="'+x+'" x2="'+x+'" y1="17" y2="24"/>';
ax+='<text x="'+x+'" y="13"'+an+'>'+lab(i*step)+'</text>';}
document.getElementById('grid').innerHTML=g;A.innerHTML=ax;D.laidOut=String(w);
const r=P.getBoundingClientRect();D.left=String(r.left+scrollX);D.top=String(r.top+scrollY);}
function focus(id){P.classList.toggle('focus',!!id);
P.querySelectorAll('text.note').forEach(e=>e.setAttribute('x',(X(+e.dataset.at)+3).toFixed(2)));
P.querySelectorAll('path.edge').forEach(e=>e.classList.toggle('hl',
!!id&&(e.dataset.from===id||e.dataset.to===id)));
document.querySelectorAll('.lab').forEach(e=>e.classList.toggle('hl',e.dataset.task===id));}
document.querySelector('main').addEventListener('mouseover',ev=>{
const el=ev.target.closest('[data-task]');focus(el?el.dataset.task:null);});
const cb=document.getElementById('showedges');
if(cb)cb.addEventListener('change',()=>P.classList.toggle('noedges',!cb.checked));
layout();addEventListener('resize',layout);})();
"""
