"""One re-run at a time per file: what a conflict teaches the scheduler.

A task without `writes` may run beside anything (DESIGN §3.5); if its merge
conflicts, it is re-run from the new tip (§4.8). When several such tasks collided on
one file (four tasks appending to CHANGELOG.md), their re-runs, started together,
would collide again, each merge invalidating the others, until they run out of
re-runs. So a re-run holds the files its task conflicted on, from opening its
workspace until its merge: re-runs on the same file follow each other, each starting
from the tip that holds the one before, while re-runs on other files still run beside
them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

__all__ = ["FileLanes"]


class FileLanes:
    """A lock per file path, taken in sorted order so that two holders never deadlock."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, files: Iterable[str]) -> AsyncIterator[None]:
        """Hold `files` (none: nothing to wait for) until the block ends."""
        taken: list[asyncio.Lock] = []
        try:
            for path in sorted(set(files)):
                lock = self._locks.setdefault(path, asyncio.Lock())
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()
