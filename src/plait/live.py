"""What a person sees while a run goes: the live board, or one line per event.

The driver calls the sink with each event. On a terminal the sink keeps a snapshot of
the run for the board: a timer on the run's event loop takes one a few times a second
while the run goes, so that no state is lost (the last of a burst of events is drawn
within one interval), the agents' latest lines show though they are no events, and an
event costs the run one check. rich's own refresh thread draws the snapshot, and the
board adds the time since it was taken to what still runs, so the clocks move.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plait.board import BoardSnapshot
    from plait.runner import Driver

SNAPSHOT_INTERVAL_S = 0.2
# A snapshot is O(tasks): on a very large run its timer waits this many times as long
# as the last one took, so the board never takes more than ~5% of the run's loop.
_COST_FACTOR = 20


class LiveView:
    """Feeds the board from a running driver."""

    def __init__(self, console: Console) -> None:
        from plait.board import LiveBoard  # rich: only a terminal shows the board

        self.board = LiveBoard(console)
        self.driver: Driver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def attach(self, driver: Driver) -> None:
        self.driver = driver

    def __call__(self, event: Mapping[str, Any]) -> None:
        if self.driver is None:
            return
        if event.get("kind") == "run_finished":
            self._stop_timer()
            self.board.update(snapshot(self.driver))
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on a loop: nothing can redraw later, so draw now
            self.board.update(snapshot(self.driver))
            return
        if self._loop is not loop:  # the first event (or a new loop): start the timer
            self._stop_timer()
            self._loop = loop
            self._tick()

    def _tick(self) -> None:
        """Take a snapshot, and come back for the next one."""
        if self.driver is None or self._loop is None:
            return
        began = time.perf_counter()
        self.board.update(snapshot(self.driver))
        cost = time.perf_counter() - began
        self._timer = self._loop.call_later(
            max(SNAPSHOT_INTERVAL_S, cost * _COST_FACTOR), self._tick
        )

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._loop = None, None

    def __enter__(self) -> LiveView:
        self.board.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop_timer()
        if self.driver is not None:
            # The run is over, whatever the rows say: an attempt still shown as running
            # was interrupted (Ctrl-C), as `plait status` says too.
            self.board.update(snapshot(self.driver, final=True))
        self.board.__exit__(*exc)


def snapshot(driver: Driver, *, final: bool = False) -> BoardSnapshot:
    """The board's view of a driver at this moment. `final`: the run has ended, its
    times stop, and what was still under way shows as interrupted."""
    from plait.board import ACTIVE, BoardRow, BoardSnapshot  # rich, like the board

    now = time.monotonic()
    rows = []
    done = 0
    for view in list(driver.ctx.views.values()):
        state = view.state
        if state == "running" and view.attempt > 1:
            state = "rerunning"  # a retry or a conflict re-run: the board marks it
        waiting: tuple[str, ...] = ()
        if state == "waiting" and view.task_id in driver.plan.tasks:
            waiting = tuple(driver.scheduler.waiting_on(view.task_id))
            if not waiting:
                state = "ready"
        if final and state in ACTIVE:
            state = "interrupted"
        if view.ended is not None or state in FINISHED:
            done += 1
        elapsed = None
        if view.started is not None:
            elapsed = (view.ended or now) - view.started
        rows.append(
            BoardRow(
                task_id=view.task_id,
                state=state,
                waiting_on=waiting,
                agent=view.agent,
                attempt=view.attempt,
                elapsed_s=elapsed,
                cost_usd=view.cost_usd,
                last_line=view.last_line,
                ticking=view.started is not None and view.ended is None and not final,
            )
        )
    elapsed_run = now - driver.started
    total = len(rows)
    eta = None
    if 0 < done < total and not final:
        eta = elapsed_run / done * (total - done)
    spend = driver.ctx.spent_usd if any(r.cost_usd is not None for r in rows) else None
    return BoardSnapshot(
        run_id=driver.run_id,
        plan_name=driver.plan.name,
        rows=tuple(rows),
        done=done,
        total=total,
        elapsed_s=elapsed_run,
        eta_s=eta,
        spend_usd=spend,
        jobs=driver.scheduler_jobs or driver.jobs,
        taken_at=None if final else now,
    )


FINISHED = {"succeeded", "merged", "failed", "errored", "conflicted", "skipped", "cancelled"}


@contextlib.contextmanager
def open_display(as_json: bool, console: Console | None) -> Iterator[Any]:
    """A sink for the driver's events: board on a terminal, lines otherwise, none for
    --json (or without a console: `run --json` never loads rich to make one)."""
    if as_json or console is None:
        yield None
        return
    # A dumb terminal (TERM=dumb: Emacs shells and the like) cannot move the cursor to
    # redraw a board: rich would draw it once, at the end. It gets the lines.
    if console.is_terminal and not console.is_dumb_terminal:
        with LiveView(console) as view:
            yield view
        return

    from plait.cliio import output_lost
    from plait.eventline import format_event_line  # imported here: --json prints no events

    def line(event: Mapping[str, Any]) -> None:
        try:
            sys.stdout.write(format_event_line(event) + "\n")
            sys.stdout.flush()
        except OSError as exc:  # `plait run | head`: the run goes on, unprinted
            if not output_lost(exc):
                raise

    yield line
