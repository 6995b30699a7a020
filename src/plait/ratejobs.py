"""How many agents run at once while vendors' rate limits are hit (pure: no I/O).

A limited attempt is not a failure: its task waits for the vendor's reset, with one
agent fewer running than ran when the limit came, so the run stops feeding a limit it
keeps hitting. A success raises the limit one agent again, up to the run's `jobs`, but
only a success that says the limit lifted: not that of a task that was already running
when the limit came, nor, while a task still waits for a reset, one of another vendor
(those run in the slots the waiting tasks lend).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

__all__ = ["RateLimitJobs"]


class RateLimitJobs:
    """The jobs limit under rate limits; the driver applies what it returns."""

    def __init__(self, jobs: int, backend_of: Callable[[str], str]) -> None:
        self.jobs = jobs  # the run's own limit
        self.current = jobs  # the limit now
        self._backend_of = backend_of
        self._limited: set[str] = set()  # rate limited, waiting to try again
        self._limited_backends: set[str] = set()  # whose limits lowered the jobs
        self._started_before_limit: set[str] = set()

    def limited(self, task_id: str, running: Collection[str], agents: int) -> int | None:
        """An attempt of `task_id` was rate limited while `running` tasks (`agents` of
        them running an agent) ran: the lowered limit, or None if it stays."""
        self._limited.add(task_id)
        self._limited_backends.add(self._backend_of(task_id))
        # The others running now started before the limit was hit: their success says
        # nothing about whether it has lifted. Limited tasks try again after their wait:
        # their success does.
        self._started_before_limit = set(running) - self._limited
        # Below what actually runs, so a second limit while the first waits lowers again.
        lowered = max(1, min(self.current, agents) - 1)
        if lowered >= self.current:
            return None
        self.current = lowered
        return lowered

    def succeeded(self, task_id: str) -> int | None:
        """`task_id` succeeded: the raised limit, or None if it stays."""
        self._limited.discard(task_id)
        if task_id in self._started_before_limit:
            self._started_before_limit.discard(task_id)
            return None
        # While a task still waits for a vendor's reset, a success says the limit lifted
        # only if it is that vendor's. Once none waits (the limited tasks succeeded,
        # failed or gave up), any success does.
        if self._limited and self._backend_of(task_id) not in self._limited_backends:
            return None
        raised = None
        if self.current < self.jobs:
            self.current += 1
            raised = self.current
        if self.current == self.jobs and not self._limited:
            self._limited_backends.clear()  # all lifted: a new limit starts afresh
        return raised

    def ended(self, task_id: str) -> None:
        """`task_id` ended, however: it waits for no reset any more."""
        self._limited.discard(task_id)
