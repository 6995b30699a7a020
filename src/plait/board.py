"""The live board: one row per task while a run goes, drawn by rich from snapshots.

The runner hands `LiveBoard.update` a frozen `BoardSnapshot` (storing a reference is
all it costs); rich's own refresh thread calls back for the renderable a few times a
second. Drawing therefore never runs on the run's event loop. The clocks keep going
between snapshots: a snapshot says when it was taken, and each frame adds the time
since to what still runs. Without a terminal the runner prints
`plait.eventline.format_event_line` for each event instead.
"""

from __future__ import annotations

import time
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
    #: The attempt still runs: its elapsed time goes on growing after the snapshot.
    ticking: bool = False


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
    #: time.monotonic() when taken, for a run still going: each frame then adds the time
    #: since to the run's and the ticking rows' elapsed. None: the times are final.
    taken_at: float | None = None


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
    "interrupted": ("■", "bold yellow"),
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

# Which rows stay when the terminal is too short for all: what runs, then what ended
# badly, then skips and cancellations, then the queue (its head before its tail).
_KEEP_FIRST = {**dict.fromkeys(ACTIVE, 0), "cancelled": 2, "skipped": 3, "ready": 4, "waiting": 5}

BAR_WIDTH = 24
# Lines above the rows: the title, the progress line, the columns' names.
_CHROME_LINES = 3


def order_rows(rows: tuple[BoardRow, ...] | list[BoardRow]) -> list[BoardRow]:
    """Running first, then ready/waiting, then finished (failures before successes)."""
    return sorted(rows, key=lambda r: _RANK.get(r.state, len(_RANK)))


def _summary(text: str, style: str) -> Text:
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _visible(rows: list[BoardRow], max_lines: int | None) -> tuple[list[BoardRow], list[Text]]:
    """The rows to draw and the summary lines standing in for the rest, in at most
    `max_lines` lines together: successes fold into one line, then the rows that
    matter least into another. Rows of running tasks go last, only when those alone
    outnumber the lines."""
    if max_lines is None or len(rows) <= max_lines:
        return rows, []
    max_lines = max(1, max_lines)
    ok = [r for r in rows if r.state in FINISHED_OK]
    rest = [r for r in rows if r.state not in FINISHED_OK]
    ok_line = 1 if ok else 0
    if len(rest) + ok_line <= max_lines:
        return rest, [_summary(f"✔ {len(ok)} finished and merged", "green")]
    room = max_lines - 1 - ok_line  # one line says what else is hidden
    active = sum(1 for r in rest if r.state in ACTIVE)
    if ok_line and room < active:
        # the successes' own line would push a running row off: they join the other
        ok_line, room, rest = 0, room + 1, rows
    keep = set(
        sorted(range(len(rest)), key=lambda i: (_KEEP_FIRST.get(rest[i].state, 1), i))[:room]
    )
    hidden = Counter(r.state for i, r in enumerate(rest) if i not in keep)
    what = ", ".join(f"{n} {state}" for state, n in hidden.most_common())
    summaries = [_summary(f"… {hidden.total()} more: {what}", "dim")]
    if ok_line:
        summaries.append(_summary(f"✔ {len(ok)} finished and merged", "green"))
    return [r for i, r in enumerate(rest) if i in keep], summaries


def _chrome(rows: list[BoardRow], height: int | None) -> int:
    """How many of the lines above the rows fit `height`: all three, unless the running
    rows would not; then the title goes, then the columns' names (never the progress)."""
    if height is None:
        return _CHROME_LINES
    active = sum(1 for r in rows if r.state in ACTIVE)
    chrome = _CHROME_LINES
    while chrome > 1:
        budget = height - chrome
        if len(rows) <= budget or active + 1 <= budget:
            break
        chrome -= 1
    return chrome


def _header(s: BoardSnapshot, width: int, elapsed: float, title: bool) -> list[Text]:
    """The title and progress lines, each fitting `width`: on a narrow terminal the
    run id, jobs, spend and estimate go first, then the bar shrinks, then goes."""
    lines = []
    if title:
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append("plait ", style="bold")
        head.append(clean_line(s.plan_name), style="bold cyan")
        run = f"  run {s.run_id}"
        if cell_len(head.plain) + len(run) <= width:
            head.append(run, style="dim")
        lines.append(head)
    done = f"{s.done}/{s.total} done"
    left = ""
    if s.done < s.total:
        left = f" · left ~{fmt_duration(s.eta_s)}" if s.eta_s is not None else " · left —"
    extras = [
        f"  elapsed {fmt_duration(elapsed)}",
        left,
        f" · spend {fmt_cost(s.spend_usd)}",
        f" · jobs {s.jobs}",
    ]
    # (how many of the extras, the narrowest bar worth drawing with them)
    for keep, narrowest in ((4, BAR_WIDTH), (3, BAR_WIDTH), (2, 8), (1, 8), (1, 0)):
        bar = min(BAR_WIDTH, width - len(done) - sum(len(e) for e in extras[:keep]) - 1)
        if bar >= narrowest:
            break
    bar = bar if bar >= 4 else 0  # a bar of two cells says nothing
    filled = round(bar * s.done / s.total) if s.total else 0
    progress = Text(no_wrap=True, overflow="ellipsis")
    if bar:
        progress.append("█" * filled, style="green")
        progress.append("░" * (bar - filled) + " ", style="dim")
    progress.append(done, style="bold")
    progress.append("".join(extras[:keep]))
    lines.append(progress)
    return lines


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
# The agent's latest line is what people watch. While it is narrower than it should be,
# in turn: the state's waiting list is cut to 30 cells, the agent column goes (the plan
# says it), the waiting list is cut further, then long task ids; on a narrow terminal
# the cost and try columns go too, the state keeps only its word, task ids shrink more.
# (column, narrowest width; 0: the column goes)
_GIVE_WAY = ((1, 30), (2, 0), (1, 22), (0, 12), (5, 0), (3, 0), (1, 11), (0, 8))


def _fit(text: str, width: int, right: bool = False) -> str:
    """Pad or cut `text` to exactly `width` terminal cells, with an ellipsis when cut."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 0 else ""
    return set_cell_size(text, width) if not right else " " * (width - cell_len(text)) + text


class _Board:
    """The board as a rich renderable. It yields segments itself rather than using
    rich.Table, which measured ~90 ms a frame for 40 rows on two busy cores: too much
    for a thread that shares the GIL with the run, four times a second."""

    def __init__(self, s: BoardSnapshot, height: int | None) -> None:
        self.s, self.height = s, height

    @staticmethod
    def _cells(r: BoardRow, since: float) -> tuple[str, ...]:
        icon = STATES.get(r.state, ("?", ""))[0]
        label = r.state
        if r.state == "waiting" and r.waiting_on:
            label = "waiting on " + ", ".join(r.waiting_on)
        elapsed = r.elapsed_s
        if elapsed is not None and r.ticking:
            elapsed += since
        return (
            clean_line(r.task_id),
            f"{icon} {label}",
            clean_line(r.agent),
            str(r.attempt) if r.attempt else "",
            fmt_duration(elapsed) if elapsed is not None else "",
            fmt_cost(r.cost_usd) if r.cost_usd is not None else "",
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s, width = self.s, options.max_width
        # the time since the snapshot was taken, which what still runs has run on for
        since = max(0.0, time.monotonic() - s.taken_at) if s.taken_at is not None else 0.0
        ordered = order_rows(s.rows)
        chrome = _chrome(ordered, self.height)
        rows, summaries = _visible(ordered, None if self.height is None else self.height - chrome)
        cells = [self._cells(r, since) for r in rows]
        widths = [
            min(limit, max([len(head), *(cell_len(c[i]) for c in cells)]))
            for i, (head, limit, _, _) in enumerate(_COLUMNS)
        ]
        gap = len(_GAP)
        latest = width - sum(widths) - gap * len(widths)
        wanted = min(_LATEST_MIN, width // 3)
        for i, floor in _GIVE_WAY:
            if latest >= wanted:
                break
            if floor == 0:
                latest += widths[i] + gap if widths[i] else 0
                widths[i] = 0
                continue
            give = min(wanted - latest, max(0, widths[i] - floor))
            widths[i] -= give
            latest += give
        shown = [(col, w, i) for i, (col, w) in enumerate(zip(_COLUMNS, widths, strict=True)) if w]
        yield from _header(s, width, s.elapsed_s + since, title=chrome == _CHROME_LINES)
        if chrome > 1:
            head = "".join(_fit(col[0], w, col[2]) + _GAP for col, w, _ in shown) + "latest"
            yield Segment(_fit(head, width).rstrip(), _BOLD)
            yield Segment.line()
        for r, row in zip(rows, cells, strict=True):
            state_style = _STYLES.get(r.state, _PLAIN)
            for (_, _, right, style), w, i in shown:
                cell_style = state_style if i == 1 else _STYLES.get(style, _PLAIN)
                yield Segment(_fit(row[i], w, right), cell_style)
                yield Segment(_GAP)
            if latest > 1:
                yield Segment(_fit(clean_line(r.last_line), latest).rstrip(), _DIM)
            yield Segment.line()
        yield from summaries


_PLAIN, _BOLD, _DIM = Style(), Style(bold=True), Style(dim=True)
_STYLES = {state: Style.parse(style) for state, (_, style) in STATES.items()} | {"dim": _DIM}


def render_board(s: BoardSnapshot, height: int | None = None) -> RenderableType:
    """The board for one snapshot. With `height`, it takes at most that many lines:
    finished successes fold into one line, then the rows that matter least into
    another; rows of running tasks stay, and the title gives way to them first."""
    return _Board(s, height)


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
        return render_board(snap, height=self.console.size.height)

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
        try:
            self._live.stop()
        except OSError:  # the terminal hung up (EIO): nothing left to draw on
            from plait.cliio import reader_gone

            reader_gone(terminal=True)
