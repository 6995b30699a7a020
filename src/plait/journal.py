"""Group commit: transitions that arrive together are made durable together.

Every transition must be on disk before the step that depends on it, but a run of
2,000 quick tasks must not pay 6,000 separate fsyncs. Coroutines `write()` their
transitions and then `await sync()`; all writes queued during the same event-loop
turn are committed in one store batch, and every waiter resumes after that commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from plait.store import Store


class Journal:
    """Queues store writes and commits them in groups."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[Callable[[], object]] = []
        self._flushed: asyncio.Future[None] | None = None

    def write(self, op: Callable[[], object]) -> None:
        """Queue one store write; it is durable after the next `sync()`."""
        self._pending.append(op)

    async def sync(self) -> None:
        """Wait until everything written so far is committed to disk."""
        if not self._pending:
            return
        if self._flushed is None:
            loop = asyncio.get_running_loop()
            self._flushed = loop.create_future()
            # call_soon: let every coroutine that is ready this turn queue its
            # writes first, then commit them all at once.
            loop.call_soon(self._flush)
        await asyncio.shield(self._flushed)

    def flush_now(self) -> None:
        """Commit synchronously (used outside the event loop and at shutdown)."""
        self._flush()

    def _flush(self) -> None:
        ops, self._pending = self._pending, []
        waiter, self._flushed = self._flushed, None
        try:
            if ops:
                with self.store.batch():
                    for op in ops:
                        op()
        except Exception as exc:
            if waiter is None:
                raise
            if not waiter.done():
                waiter.set_exception(exc)  # every waiter sees the failure
            return
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
