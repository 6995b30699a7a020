"""The live board: one row per task while a run goes, drawn by rich from snapshots.

The runner hands `LiveBoard.update` a frozen `BoardSnapshot` (storing a reference is
all it costs); rich's own refresh thread calls back for the renderable a few times a
second. Drawing therefore never runs on the run's event loop. Without a terminal
the runner prints `plait.eventline.format_event_line` for each event instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import TracebackType

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from plait.eventline import clean_line
from plait.report import fmt_cost, fmt_duration


@dataclass(frozen=True)
class BoardRow:
    """One task as the board shows it."""

    task_id: str
    state: str  # waiting|ready|running|verifying|merging|merged|succeeded|failed|skipped|…
    waiting_on: tuple[str, ...]
    agent: str
    attempt: int
    elapsed_s: float | None
    cost_usd: float | None
    last_line: str


@dataclass(frozen=True)
class BoardSnapshot:
    """The whole run at one moment."""

    run_id: str
    plan_name: str
    rows: tuple[BoardRow, ...]
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    spend_usd: float | None
    jobs: int


# state → (icon, style). Icons are one cell wide in every terminal font we know of;
# emoji would be two cells in some and break the columns.
STATES: dict[str, tuple[str, str]] = {
    "running": ("▶", "bold blue"),
    "verifying": ("◎", "cyan"),
    "merging": ("⇢", "cyan"),
    "rerunning": ("↻", "bold magenta"),
    "ready": ("○", "none"),
    "waiting": ("◷", "dim"),
    "failed": ("✘", "bold red"),
    "errored": ("!", "bold red"),
    "conflicted": ("≠", "bold yellow"),
    "cancelled": ("⊘", "dim"),
    "skipped": ("↷", "dim"),
    "merged": ("✔", "green"),
    "succeeded": ("✔", "green"),
}
ACTIVE = ("running", "verifying", "merging", "rerunning")
PENDING = ("ready", "waiting")
FINISHED_OK = ("merged", "succeeded")
# Order on the board: what is moving (in the runner's order), what comes next, then what
# ended, failures first.
_RANK = {s: 0 if s in ACTIVE else i for i, s in enumerate(STATES)}

_HIDE_FIRST = {"waiting": 0, "ready": 1, "skipped": 2, "cancelled": 3}

BAR_WIDTH = 24


def order_rows(rows: tuple[BoardRow, ...] | list[BoardRow]) -> list[BoardRow]:
    """Running first, then ready/waiting, then finished (failures before successes)."""
    return sorted(rows, key=lambda r: _RANK.get(r.state, len(_RANK)))


def _visible(rows: list[BoardRow], max_rows: int | None) -> tuple[list[BoardRow], list[Text]]:
    """The rows to draw and the summary lines standing in for the rest."""
    if max_rows is None or len(rows) <= max_rows:
        return rows, []
    ok = [r for r in rows if r.state in FINISHED_OK]
    rest = [r for r in rows if r.state not in FINISHED_OK]
    budget = max(1, max_rows - (1 if ok else 0))
    summaries = []
    if len(rest) > budget:
        # hide what matters least first: the queue's tail, then skips, never running rows
        drop = sorted(range(len(rest)), key=lambda i: (_HIDE_FIRST.get(rest[i].state, 9), -i))[
            : len(rest) - (budget - 1)
        ]
        hidden = [rest[i] for i in sorted(drop)]
        keep = [r for i, r in enumerate(rest) if i not in set(drop)]
        counts = Counter(r.state for r in hidden)
        what = ", ".join(f"{n} {s}" for s, n in counts.most_common())
        summaries.append(Text(f"… {len(hidden)} more: {what}", style="dim"))
        rest = keep
    if ok:
        summaries.append(Text(f"✔ {len(ok)} finished and merged", style="green"))
    return rest, summaries


def _header(s: BoardSnapshot) -> Text:
    filled = round(BAR_WIDTH * s.done / s.total) if s.total else 0
    head = Text()
    head.append("plait ", style="bold")
    head.append(s.plan_name, style="bold cyan")
    head.append(f"  run {s.run_id}\n", style="dim")
    head.append("█" * filled, style="green")
    head.append("░" * (BAR_WIDTH - filled), style="dim")
    head.append(f" {s.done}/{s.total} done", style="bold")
    head.append(f"  elapsed {fmt_duration(s.elapsed_s)}")
    if s.done < s.total:
        head.append(f" · left ~{fmt_duration(s.eta_s)}" if s.eta_s is not None else " · left —")
    head.append(f" · spend {fmt_cost(s.spend_usd)} · jobs {s.jobs}")
    return head


# (header, max width, right-aligned, style) of the fixed columns; "latest" takes the rest.
_COLUMNS = (
    ("task", 24, False, ""),
    ("state", 48, False, ""),
    ("agent", 18, False, "dim"),
    ("try", 3, True, ""),
    ("elapsed", 7, True, ""),
    ("cost", 8, True, ""),
)
_GAP = "  "
_LATEST_MIN = 30


def _fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut `text` to exactly `width` terminal cells, with an ellipsis when cut."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 0 else ""
    return set_cell_size(text, width) if not right else " " * (width - cell_len(text)) + text


class _Board:
    """The board as a rich renderable. It yields segments itself rather than using
    rich.Table, which measured ~90 ms a frame for 40 rows on two busy cores: too much
    for a thread that shares the GIL with the run, four times a second."""

    def __init__(self, s: BoardSnapshot, rows: list[BoardRow], summaries: list[Text]) -> None:
        self.s, self.rows, self.summaries = s, rows, summaries

    @staticmethod
    def _cells(r: BoardRow) -> tuple[str, ...]:
        icon = STATES.get(r.state, ("?", ""))[0]
        label = r.state
        if r.state == "waiting" and r.waiting_on:
            label = "waiting on " + ", ".join(r.waiting_on)
        return (
            clean_line(r.task_id),
            f"{icon} {label}",
            clean_line(r.agent),
            str(r.attempt) if r.attempt else "",
            fmt_duration(r.elapsed_s) if r.elapsed_s is not None else "",
            fmt_cost(r.cost_usd) if r.cost_usd is not None else "",
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        cells = [self._cells(r) for r in self.rows]
        widths = [
            min(limit, max([len(head), *(cell_len(c[i]) for c in cells)]))
            for i, (head, limit, _, _) in enumerate(_COLUMNS)
        ]
        gap = len(_GAP)
        latest = width - sum(widths) - gap * len(widths)
        # The agent's latest line is what people watch. On a narrow terminal the state's
        # waiting list is cut to 30 cells, then the agent column goes (the plan says it),
        # then the waiting list is cut further, then long task ids.
        for i, floor in ((1, 30), (2, 0), (1, 22), (0, 12)):
            if latest >= _LATEST_MIN:
                break
            if floor == 0:
                latest += widths[i] + gap
                widths[i] = 0
                continue
            give = min(_LATEST_MIN - latest, max(0, widths[i] - floor))
            widths[i] -= give
            latest += give
        shown = [(col, w, i) for i, (col, w) in enumerate(zip(_COLUMNS, widths, strict=True)) if w]
        yield _header(self.s)
        head = "".join(_fit(col[0], w, col[2]) + _GAP for col, w, _ in shown) + "latest"
        yield Segment(_fit(head, width).rstrip(), _BOLD)
        yield Segment.line()
        for r, row in zip(self.rows, cells, strict=True):
            state_style = _STYLES.get(r.state, _PLAIN)
            for (_, _, right, style), w, i in shown:
                cell_style = state_style if i == 1 else _STYLES.get(style, _PLAIN)
                yield Segment(_fit(row[i], w, right), cell_style)
                yield Segment(_GAP)
            if latest > 1:
                yield Segment(_fit(clean_line(r.last_line), latest).rstrip(), _DIM)
            yield Segment.line()
        yield from self.summaries


_PLAIN, _BOLD, _DIM = Style(), Style(bold=True), Style(dim=True)
_STYLES = {state: Style.parse(style) for state, (_, style) in STATES.items()} | {"dim": _DIM}


def render_board(s: BoardSnapshot, max_rows: int | None = None) -> RenderableType:
    """The board for one snapshot; with `max_rows`, finished successes fold into one line."""
    rows, summaries = _visible(order_rows(s.rows), max_rows)
    return _Board(s, rows, summaries)


# Lines the board itself takes besides task rows: two header lines, the table header
# and the summary lines.
_CHROME_LINES = 5


class LiveBoard:
    """rich.live.Live around the latest snapshot; `update` only swaps a reference."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4) -> None:
        self.console = console or Console()
        self._snapshot: BoardSnapshot | None = None
        self._live = Live(
            console=self.console,
            refresh_per_second=refresh_per_second,
            get_renderable=self._renderable,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def _renderable(self) -> RenderableType:
        snap = self._snapshot  # one read: the runner may swap it meanwhile
        if snap is None:
            return Text("plait: starting…", style="dim")
        return render_board(snap, max_rows=max(3, self.console.size.height - _CHROME_LINES))

    def update(self, snapshot: BoardSnapshot) -> None:
        """Show this snapshot from the next refresh on (no drawing happens here)."""
        self._snapshot = snapshot

    def __enter__(self) -> LiveBoard:
        self._live.start(refresh=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # stop() draws one last frame, so the final state stays on screen
        self._live.stop()
