"""A running plait's heartbeat: a file whose modification time it keeps fresh.

A plait killed with SIGKILL records nothing as it dies. What it recorded last (its
events, its agents' logs) can lie minutes before the kill when a quiet agent worked
alone, and resume would end that agent's attempt there, or status stop the run's
clock there. The heartbeat bounds that error to `BEAT_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

#: The file, in the run's folder (`Store.run_dir`).
ALIVE_FILE = "alive"
#: How often it is touched: the most a dead run's last sign of life can be off by.
BEAT_S = 2.0


@contextlib.contextmanager
def beating(folder: Path, every_s: float = BEAT_S) -> Iterator[None]:
    """Touch `folder/ALIVE_FILE` now and every `every_s` seconds while inside.

    A timer on the running loop, not a task: nothing to await, and an error of the
    body leaves as it is (a task group would wrap it in an exception group).
    """
    loop = asyncio.get_running_loop()
    path = folder / ALIVE_FILE
    timer: asyncio.TimerHandle | None = None

    def touch() -> None:
        nonlocal timer
        with contextlib.suppress(OSError):  # a full disk must not end the run
            path.touch()  # (an existing file: its times set to now)
        timer = loop.call_later(every_s, touch)

    touch()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def last_beat(folder: Path) -> float | None:
    """When the run's plait was last known alive by its heartbeat (None: no beat)."""
    try:
        return (folder / ALIVE_FILE).stat().st_mtime
    except OSError:
        return None
