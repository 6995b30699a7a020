"""The Gantt plot of an HTML report: one SVG row per task, bars placed on a time axis.

Pure rendering of a `report.Timeline` into SVG fragments, every text escaped: the
bars of each attempt, the estimate under them, time held waiting, dependency lines
and the time axis with round ticks. `plait.report_html` puts them into the page.

Python writes every bar at a default plot width (`DEFAULT_W`) so the file reads
without script; the page's script (`plait.report_assets.JS`) then re-lays the same
elements out to the window's width from their data-start/data-end (seconds), with
the same formulas as `svg_rows`, `ticks` and `_edge_path` here: change both together.
"""

from __future__ import annotations

import html

from plait.report import (
    HELD_WAITS,
    KIND_LABELS,
    AttemptSpan,
    TaskSummary,
    Timeline,
    fmt_cost,
    fmt_duration,
)

__all__ = [
    "BAR_H",
    "DEFAULT_W",
    "KIND_NAMES",
    "MIN_W",
    "PAD",
    "ROW",
    "STATUS_NAMES",
    "TICK_STEPS",
    "axis_max",
    "css_word",
    "esc",
    "secs",
    "svg_rows",
    "tick_label",
    "tick_step",
    "ticks",
]

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
    "interrupted": "interrupted",
    "predicted": "predicted",
}
KIND_NAMES = {**KIND_LABELS, "rate_limit": "after rate limit"}


def esc(value: object) -> str:
    """Escape any text for HTML text and attribute positions."""
    return html.escape(str(value), quote=True)


def css_word(word: str) -> str:
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


def ticks(span: float, width: int, height: int) -> tuple[str, str]:
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


def secs(x: float) -> str:
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


def svg_rows(t: Timeline, rows: list[TaskSummary], span: float) -> tuple[str, str]:
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
            f'data-start="{secs(start)}" data-end="{secs(end)}" x="{x0:.2f}" '
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
                f'<text class="note" data-at="{secs(at)}" x="{PAD + at * k + 3:.2f}" '
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
            classes = f"bar s-{css_word(a.status)} k-{css_word(a.kind)}" + (
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
                over.append(f'<rect class="ov p-{css_word(a.kind)}" {attrs}/>')
            label = _bar_label(a)
            if label:
                need = 7 + 6 * len(label)  # ~6 px per 10 px glyph; hidden when it won't fit
                x0, x1 = PAD + a.start_s * k, PAD + a.end_s * k
                hide = "" if x1 - x0 >= need else ' style="display:none"'
                over.append(
                    f'<text class="bl" data-at="{secs(a.start_s)}" data-to="{secs(a.end_s)}"'
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
            f'<path class="{cls}" data-from="{esc(src)}" data-to="{esc(dst)}" data-t1="{secs(t1)}"'
            f' data-t2="{secs(t2)}" data-r1="{r1}" data-r2="{r2}" d="{d}">'
            f"<title>{esc(src)} → {esc(dst)} ({esc(reason)})</title></path>"
        )
    return "".join(under), "".join(over)


def _edge_path(x1: float, r1: int, x2: float, r2: int) -> str:
    y1, y2 = r1 * ROW + ROW / 2, r2 * ROW + ROW / 2
    xm = x1 + 4 if x2 >= x1 + 6 else x1
    return f"M{x1:.1f} {y1:g}H{xm:.1f}V{y2:g}H{x2:.1f}"
