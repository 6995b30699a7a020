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
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable

__all__ = ["FileLanes", "StepAside"]


class FileLanes:
    """A lock per file path, taken in sorted order so that two holders never deadlock."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        #: Per path, the holders that hold it or wait for it. (`Lock.locked()` alone
        #: is False in the moment between a release and the next holder's wake-up,
        #: and a newcomer then waits behind that holder all the same.)
        self._users: dict[str, int] = {}

    def busy(self, files: Iterable[str]) -> bool:
        """True if holding `files` now would wait for another holder."""
        return any(self._users.get(path, 0) for path in files)

    @contextlib.asynccontextmanager
    async def hold(self, files: Iterable[str]) -> AsyncIterator[None]:
        """Hold `files` (none: nothing to wait for) until the block ends."""
        paths = sorted(set(files))
        for path in paths:
            self._users[path] = self._users.get(path, 0) + 1
        taken: list[asyncio.Lock] = []
        try:
            for path in paths:
                lock = self._locks.setdefault(path, asyncio.Lock())
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()
            for path in paths:
                self._users[path] -= 1
                if not self._users[path]:
                    del self._users[path]


class StepAside:
    """Job slots lent by tasks that wait without running an agent.

    The scheduler counts a task as running from its start to its end; `-j` bounds the
    agents running at once. A task that steps aside (`while_waiting`) still counts as
    running but lends its slot: the limit given to the scheduler (`limit`) grows by
    one, so a ready task starts in it. When its wait ends, the task takes the first
    free slot back: at once if the tasks running agents are fewer than `jobs()`, else
    in turn with others stepping back, each as a running task ends (`admit`, which
    the driver calls before it starts anything new).

    `running()` is the number of tasks the scheduler counts as running; `changed()` is
    called whenever `limit()` changed, to hand it to the scheduler and start what fits.
    """

    def __init__(
        self, jobs: Callable[[], int], running: Callable[[], int], changed: Callable[[], None]
    ) -> None:
        self._jobs = jobs
        self._running = running
        self._changed = changed
        self._waiting = 0  # stepped aside, still waiting
        self._returning: deque[asyncio.Future[None]] = deque()  # done waiting, want a slot

    def lent(self) -> int:
        """Slots lent now: tasks aside, and those in line to step back."""
        return self._waiting + len(self._returning)

    def limit(self) -> int:
        """The jobs limit for the scheduler: `jobs()` plus the slots lent."""
        return self._jobs() + self.lent()

    @contextlib.asynccontextmanager
    async def while_waiting(self) -> AsyncIterator[None]:
        """Lend the slot while the block waits; take one back before going on."""
        self._waiting += 1
        # The slot it frees goes first to a task in line to step back (one whose own
        # wait ended while this one still ran its agent), then to what is ready.
        self.admit()
        self._changed()
        try:
            yield
        except BaseException:  # the task ends: it gives its slot back by ending
            self._waiting -= 1
            self._changed()
            raise
        self._waiting -= 1
        if not self._returning and self._agents() <= self._jobs():
            self._changed()
            return
        back = asyncio.get_running_loop().create_future()
        self._returning.append(back)
        self.admit()  # a slot may be free already: the first in line takes it
        try:
            await back
        except BaseException:
            with contextlib.suppress(ValueError):  # cancelled while in line: leave it
                self._returning.remove(back)
                self._changed()
            raise

    def admit(self) -> None:
        """Give the slots free now to tasks stepping back, first come first."""
        admitted = False
        while self._returning and self._agents() < self._jobs():
            back = self._returning.popleft()
            if not back.done():
                back.set_result(None)
            admitted = True
        if admitted:
            self._changed()

    def _agents(self) -> int:
        """Running tasks that are not aside or in line: those running (or about to
        run) an agent."""
        return self._running() - self.lent()
