"""Group commit: transitions that arrive together are made durable together.

Every transition must be on disk before the step that depends on it, but a run of
2,000 quick tasks must not pay 6,000 separate fsyncs, nor stop the event loop for
each one. Coroutines `write()` their transitions and then `await sync()`.

A write runs its SQL at once, on the loop, in a transaction left open for the writes
that follow; `sync()` commits it, once the loop has run what else was ready, so that
transitions written in the same turn share the commit. The commit itself does not
wait for the disk: while the journal is open the connection runs with ``synchronous =
NORMAL``, and durability comes from an fsync of the write-ahead log on a worker
thread, which `sync()` awaits. One fsync covers every commit made before it started,
so commits that pile up while one fsync runs are made durable together by the next.
That is what ``synchronous = FULL`` guarantees (the WAL synced after the commit,
before anything depends on it), without the loop waiting for the disk or the worker
thread touching the connection: the only thing it does is the fsync, with the GIL
released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from plait.store import Store


class Journal:
    """Writes to the store at once, commits on `sync()`, fsyncs off the loop."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._open = False  # a transaction holds writes not committed yet
        self._committed = 0  # commits made
        self._durable = 0  # commits known to be on disk
        self._committing: asyncio.Future[None] | None = None  # the commit asked for
        self._awaited = False  # a sync() waits for that commit
        self._lost: Exception | None = None  # a commit nothing waited for failed
        self._flushing: asyncio.Future[int] | None = None  # the fsync under way
        self._fsync: ThreadPoolExecutor | None = None
        self._closed = False
        store.defer_sync(True)

    def write(self, op: Callable[[], object]) -> None:
        """Run one store write now; it is committed, and durable, after the next `sync()`."""
        if not self._open and not self._closed:  # once closed, each write commits alone
            self.store.begin()
            self._open = True
        op()

    async def sync(self) -> None:
        """Wait until everything written so far is committed to disk.

        The commit waits for the loop to run what else is ready first: coroutines that
        write and sync in the same turn of the loop (tasks started together, a task
        ending as another starts) share one commit instead of one each.
        """
        lost, self._lost = self._lost, None
        if lost is not None:  # a commit asked for by commit_soon() failed: its rows are gone
            raise lost
        if self._open:
            committing = self._committing or self._schedule_commit()
            self._awaited = True
            # Shielded: a waiter cancelled must not cancel the commit others wait for.
            await asyncio.shield(committing)
        target = self._committed
        while self._durable < target:
            flushing = self._flushing
            if flushing is not None and flushing.done():  # finished; its waiters not run yet
                if not flushing.cancelled() and flushing.exception() is None:
                    self._durable = max(self._durable, flushing.result())
                self._flushing = None
                continue
            if flushing is None:
                flushing = self._flushing = self._start_fsync()
            # Shielded: a waiter cancelled must not cancel the fsync others wait for.
            covered = await asyncio.shield(flushing)
            self._durable = max(self._durable, covered)
            if self._flushing is flushing:
                self._flushing = None

    def commit_soon(self) -> None:
        """Commit what is written so far, as `sync()` would, without waiting for it.

        For rows nothing in this process waits for but other processes read (a task's
        end, its dependants skipped: `plait status` shows them while other agents run).
        The commit runs once the loop has run what is ready, so a sync in the same turn
        (the next tasks' start) shares it; it is durable with the next fsync. If it
        fails, the next `sync()` raises the error.
        """
        if self._open and self._committing is None:
            self._schedule_commit()

    def _schedule_commit(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        committing = self._committing = loop.create_future()
        self._awaited = False
        # Retrieved here so that a failure all waiters stopped waiting for is quiet.
        committing.add_done_callback(lambda f: f.cancelled() or f.exception())
        loop.call_soon(self._commit_now, committing)
        return committing

    def _commit_now(self, committing: asyncio.Future[None]) -> None:
        self._committing = None
        try:
            self._commit()
        except Exception as exc:  # the waiters raise it; the loop goes on
            if not self._awaited:  # no waiter: the next sync() must not pass over it
                self._lost = exc
            committing.set_exception(exc)
        else:
            committing.set_result(None)

    def _commit(self) -> None:
        if self._open:
            self._open = False
            self.store.commit()  # rolls back and raises if it fails
            self._committed += 1

    def _start_fsync(self) -> asyncio.Future[int]:
        """An fsync covering every commit made so far; it gives their count."""
        if self._fsync is None:
            self._fsync = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plait-fsync")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._fsync, self._sync_wal, self._committed)

    def _sync_wal(self, covered: int) -> int:
        self.store.sync_wal()
        return covered

    def close(self) -> None:
        """Commit what is still open, make it durable, and go back to synced commits.

        Safe to call twice; the store must not be used from the loop meanwhile.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._commit()
        finally:
            if self._fsync is not None:
                self._fsync.shutdown(wait=True)
            self.store.sync_wal()
            # Every commit is on disk now: a waiter still to resume needs no fsync of its
            # own (and must not start one on the executor just shut down).
            self._durable = self._committed
            self.store.defer_sync(False)
