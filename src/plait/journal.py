"""Group commit: transitions that arrive together are made durable together.

Every transition must be on disk before the step that depends on it, but a run of
2,000 quick tasks must not pay 6,000 separate fsyncs, nor stop the event loop for
each one. Coroutines `write()` their transitions and then `await sync()`. Commits
happen on one writer thread: while one commit is being synced, new writes queue
up, and the next commit takes all of them at once. Every waiter resumes once the
commit holding its writes is on disk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from plait.store import Store


class Journal:
    """Queues store writes and commits them in groups, off the event loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[Callable[[], object]] = []
        self._waiter: asyncio.Future[None] | None = None  # resolves when _pending is durable
        self._inflight: asyncio.Future[None] | None = None  # the commit being synced now
        self._lock = threading.Lock()  # one user of the connection at a time
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plait-journal")

    def write(self, op: Callable[[], object]) -> None:
        """Queue one store write; it is durable after the next `sync()`."""
        self._pending.append(op)

    async def sync(self) -> None:
        """Wait until everything written so far is committed to disk."""
        if self._pending:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            waiter = self._waiter
            if self._inflight is None:
                self._start_commit()
        elif self._inflight is not None:
            waiter = self._inflight  # our writes may be in the commit under way
        else:
            return
        await asyncio.shield(waiter)

    def _start_commit(self) -> None:
        loop = asyncio.get_running_loop()
        ops, self._pending = self._pending, []
        waiter, self._waiter = self._waiter or loop.create_future(), None
        self._inflight = waiter
        done = self._writer.submit(self._commit, ops)

        def finished(result: Future[None]) -> None:
            loop.call_soon_threadsafe(self._committed, result, waiter)

        done.add_done_callback(finished)

    def _committed(self, result: Future[None], waiter: asyncio.Future[None]) -> None:
        self._inflight = None
        error = result.exception()
        if not waiter.done():
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(None)
        if self._pending and self._waiter is not None:
            self._start_commit()  # what queued up during that commit goes next

    def _commit(self, ops: list[Callable[[], object]]) -> None:
        with self._lock, self.store.batch():
            for op in ops:
                op()

    def close(self) -> None:
        """Commit whatever is still queued, then stop the writer thread."""
        self._writer.shutdown(wait=True)
        ops, self._pending = self._pending, []
        if ops:
            self._commit(ops)
