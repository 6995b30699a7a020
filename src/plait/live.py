"""What a person sees while a run goes: the live board, or one line per event.

The driver calls the sink with each event. On a terminal the sink also keeps a
snapshot of the run for the board; building it is throttled, and rich's own
refresh thread draws it, so the board never slows the run.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from plait.board import BoardSnapshot
    from plait.runner import Driver

SNAPSHOT_INTERVAL_S = 0.1


class LiveView:
    """Feeds the board from a running driver."""

    def __init__(self, console: Console) -> None:
        from plait.board import LiveBoard  # rich: only a terminal shows the board

        self.board = LiveBoard(console)
        self.driver: Driver | None = None
        self._last = 0.0

    def attach(self, driver: Driver) -> None:
        self.driver = driver

    def __call__(self, event: Mapping[str, Any]) -> None:
        now = time.monotonic()
        final = event.get("kind") == "run_finished"
        if self.driver is None or (now - self._last < SNAPSHOT_INTERVAL_S and not final):
            return
        self._last = now
        self.board.update(snapshot(self.driver))

    def __enter__(self) -> LiveView:
        self.board.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.driver is not None:
            self.board.update(snapshot(self.driver))
        self.board.__exit__(*exc)


def snapshot(driver: Driver) -> BoardSnapshot:
    """The board's view of a driver at this moment."""
    from plait.board import BoardRow, BoardSnapshot  # rich, like the board that shows it

    now = time.monotonic()
    rows = []
    done = 0
    for view in driver.ctx.views.values():
        state = view.state
        if state == "running" and view.attempt > 1:
            state = "rerunning"  # a retry or a conflict re-run: the board marks it
        waiting: tuple[str, ...] = ()
        if state == "waiting" and view.task_id in driver.plan.tasks:
            waiting = tuple(driver.scheduler.waiting_on(view.task_id))
            if not waiting:
                state = "ready"
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
            )
        )
    elapsed_run = now - driver.started
    total = len(rows)
    eta = None
    if 0 < done < total:
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
    )


FINISHED = {"succeeded", "merged", "failed", "errored", "conflicted", "skipped", "cancelled"}


@contextlib.contextmanager
def open_display(as_json: bool, console: Console | None) -> Iterator[Any]:
    """A sink for the driver's events: board on a terminal, lines otherwise, none for
    --json (or without a console: `run --json` never loads rich to make one)."""
    if as_json or console is None:
        yield None
        return
    if console.is_terminal:
        with LiveView(console) as view:
            yield view
        return

    from plait.eventline import format_event_line  # imported here: --json prints no events

    def line(event: Mapping[str, Any]) -> None:
        sys.stdout.write(format_event_line(event) + "\n")
        sys.stdout.flush()

    yield line
