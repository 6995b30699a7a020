"""The ready-set state machine: which tasks may start now, and what a finish releases.

Pure (no asyncio, no I/O), in the spirit of :class:`graphlib.TopologicalSorter`: the
runner asks :meth:`Scheduler.start_ready` for tasks to start, reports each end with
:meth:`Scheduler.finish`, and stops when :meth:`Scheduler.is_active` is false.

Cost: every task carries a counter of needs not yet succeeded and a counter of
running exclusive partners, so a start or a finish touches only its own edges; ready
tasks wait in a heap ordered by priority (then id). A ready task that a running
exclusive partner blocks is parked beside the heap and pushed back when its last
blocking partner ends, so it is neither lost nor in the way of other ready tasks.

:func:`simulate` drives the same class through a discrete-event loop, so a plan's
estimate follows exactly the rule a run follows.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from plait.model import Outcome

State = Literal["waiting", "ready", "running", "done"]

# Internal states; "ready" covers both the heap and the parked set.
_WAITING, _READY, _RUNNING, _DONE = 0, 1, 2, 3
_STATE_NAMES: tuple[State, ...] = ("waiting", "ready", "running", "done")


class Scheduler:
    """Decides which tasks start when, under needs, a jobs limit and exclusivity.

    ``needs[t]`` are the tasks that must succeed before ``t`` starts; ``exclusive[t]``
    are tasks that must never run at the same time as ``t`` (taken symmetrically);
    ``priority[t]`` orders ready tasks, highest first (missing: 0). ``done`` holds
    outcomes recorded by an earlier run (resume): those tasks never start again, and
    their dependants are released or skipped here; see :attr:`ended_on_resume`.
    """

    def __init__(
        self,
        tasks: Iterable[str],
        needs: Mapping[str, Collection[str]],
        exclusive: Mapping[str, Collection[str]],
        priority: Mapping[str, float],
        jobs: int,
        *,
        continue_on_error: Collection[str] = (),
        fail_fast: bool = False,
        done: Mapping[str, Outcome] | None = None,
    ) -> None:
        self._order: list[str] = list(dict.fromkeys(tasks))
        known = set(self._order)
        self._check_jobs(jobs)
        self._jobs = jobs
        self._fail_fast = fail_fast
        self._needs: dict[str, tuple[str, ...]] = dict.fromkeys(self._order, ())
        self._dependants: dict[str, list[str]] = {t: [] for t in self._order}
        # Membership is tested in line and the message built only for an unknown task:
        # 10,000 tasks have tens of thousands of needs and exclusive partners.
        dependants = self._dependants
        for task, task_needs in needs.items():
            if task not in known:
                _require_known(task, known, "needs")
            unique = tuple(dict.fromkeys(task_needs))
            for need in unique:
                if need not in known:
                    _require_known(need, known, f"needs[{task!r}]")
                dependants[need].append(task)
            self._needs[task] = unique
        _check_acyclic(self._order, self._needs, dependants)
        self._exclusive: dict[str, set[str]] = {t: set() for t in self._order}
        excl = self._exclusive
        for task, partners in exclusive.items():
            if task not in known:
                _require_known(task, known, "exclusive")
            own = excl[task]
            for partner in partners:
                if partner not in known:
                    _require_known(partner, known, f"exclusive[{task!r}]")
                if partner != task:  # a task cannot overlap with itself anyway
                    own.add(partner)
                    excl[partner].add(task)
        self._key: dict[str, tuple[float, str]] = {
            t: (-float(priority.get(t, 0.0)), t) for t in self._order
        }
        self._continue_on_error = frozenset(continue_on_error)
        for task in self._continue_on_error:
            _require_known(task, known, "continue_on_error")

        self._state: dict[str, int] = dict.fromkeys(self._order, _WAITING)
        self._outcomes: dict[str, Outcome] = {}
        self._running: set[str] = set()
        self._heap: list[tuple[float, str]] = []
        self._parked: set[str] = set()
        self._blockers: dict[str, int] = dict.fromkeys(self._order, 0)
        self._unfinished = len(self._order)
        self._failures = 0
        self._stopped = False

        recorded = dict(done or {})
        for task, outcome in recorded.items():
            _require_known(task, known, "done")
            self._end(task, Outcome(outcome))
        succeeded = Outcome.SUCCEEDED
        self._remaining: dict[str, int] = (
            {
                t: sum(1 for n in self._needs[t] if self._outcomes.get(n) != succeeded)
                for t in self._order
            }
            if self._outcomes
            else {t: len(n) for t, n in self._needs.items()}  # a fresh run: every need unmet
        )
        ended: list[str] = []
        for task in self._order:
            if task in recorded and not recorded[task].ok:
                self._skip_dependants(task, ended)
        for task in self._order:
            if self._state[task] == _WAITING and self._remaining[task] == 0:
                self._make_ready(task)
        if fail_fast and self._failures:
            # The interrupted run had already failed: it must not start anything new.
            ended.extend(self._end_not_started(Outcome.CANCELLED))
        #: Tasks this constructor ended because of the ``done`` outcomes (skipped
        #: dependants of recorded failures; with fail_fast, the rest cancelled).
        self.ended_on_resume: tuple[str, ...] = tuple(ended)

    # ------------------------------------------------------------------ driving

    def start_ready(self) -> list[str]:
        """Mark and return the tasks to start now, highest priority first (ties by id).

        Fills free slots (``jobs`` minus running) with ready tasks that no running
        exclusive partner blocks. O(k log n) for k tasks popped.
        """
        started: list[str] = []
        if self._stopped:
            return started
        heap, state, blockers = self._heap, self._state, self._blockers
        while heap and len(self._running) < self._jobs:
            _, task = heapq.heappop(heap)
            if state[task] != _READY:
                continue  # stale entry: ended by stop_starting or fail_fast
            if blockers[task]:
                self._parked.add(task)  # back in the heap when its last blocker ends
                continue
            state[task] = _RUNNING
            self._running.add(task)
            for partner in self._exclusive[task]:
                blockers[partner] += 1
            started.append(task)
        return started

    def finish(self, task: str, outcome: Outcome) -> list[str]:
        """Record the outcome of a running task; return the tasks it ended in turn.

        Success releases dependants whose needs have all succeeded. Any other outcome
        skips its dependants, transitively (``make -k``). With ``fail_fast``, a failure
        that counts against the run also cancels every task not yet started.
        """
        outcome = outcome if type(outcome) is Outcome else Outcome(outcome)
        if self._state[task] != _RUNNING:
            raise ValueError(f"task {task!r} is not running (it is {self.state(task)})")
        self._running.discard(task)
        for partner in self._exclusive[task]:
            self._blockers[partner] -= 1
            if not self._blockers[partner] and partner in self._parked:
                self._parked.discard(partner)
                heapq.heappush(self._heap, self._key[partner])
        failures_before = self._failures
        self._end(task, outcome)
        ended: list[str] = []
        if outcome.ok:
            for dependant in self._dependants[task]:
                self._remaining[dependant] -= 1
                if not self._remaining[dependant] and self._state[dependant] == _WAITING:
                    self._make_ready(dependant)
        else:
            self._skip_dependants(task, ended)
        if self._fail_fast and self._failures > failures_before:
            ended.extend(self._end_not_started(Outcome.CANCELLED))
        return ended

    def set_jobs(self, jobs: int) -> None:
        """Change the jobs limit; running tasks are never stopped by lowering it."""
        self._check_jobs(jobs)
        self._jobs = jobs

    def stop_starting(self, outcome: Outcome = Outcome.CANCELLED) -> list[str]:
        """Start nothing more: every task not yet started ends with ``outcome``.

        For an exhausted budget or an interrupt. Running tasks go on until finished.
        """
        outcome = outcome if type(outcome) is Outcome else Outcome(outcome)
        if outcome.ok:
            raise ValueError("tasks that never ran cannot have succeeded")
        return self._end_not_started(outcome)

    # ------------------------------------------------------------------ queries

    def is_active(self) -> bool:
        """True while a task runs or may still start (false once every task ended)."""
        # In an acyclic graph a not-yet-ended task is always reachable: some need
        # chain leads to a running or ready task, so no rescan is needed here.
        return self._unfinished > 0

    @property
    def jobs(self) -> int:
        """The current jobs limit."""
        return self._jobs

    @property
    def running(self) -> frozenset[str]:
        """The tasks started and not yet finished."""
        return frozenset(self._running)

    def outcome(self, task: str) -> Outcome | None:
        """The task's outcome, or None while it has not ended."""
        if task not in self._state:
            raise KeyError(f"unknown task {task!r}")
        return self._outcomes.get(task)

    @property
    def outcomes(self) -> Mapping[str, Outcome]:
        """The outcome of every task that has ended so far (a read-only view)."""
        return MappingProxyType(self._outcomes)

    def state(self, task: str) -> State:
        """``waiting`` (needs unmet), ``ready``, ``running`` or ``done``."""
        return _STATE_NAMES[self._state[task]]

    def waiting_on(self, task: str) -> list[str]:
        """What keeps a task from starting: unmet needs, or running exclusive partners."""
        state = self._state[task]
        if state == _WAITING:
            return [n for n in self._needs[task] if self._outcomes.get(n) != Outcome.SUCCEEDED]
        if state == _READY and self._blockers[task]:
            return sorted(p for p in self._exclusive[task] if p in self._running)
        return []

    @property
    def run_failed(self) -> bool:
        """Whether the run counts as failed.

        Any task ending FAILED, ERRORED or CONFLICTED fails the run unless it is marked
        ``continue_on_error``; CANCELLED always does. SKIPPED never does by itself: the
        need that caused it is the one that counts (or is excused).
        """
        return self._failures > 0

    # ------------------------------------------------------------------ internals

    def _end(self, task: str, outcome: Outcome) -> None:
        self._state[task] = _DONE
        self._outcomes[task] = outcome
        self._unfinished -= 1
        if outcome is Outcome.CANCELLED or (
            outcome not in (Outcome.SUCCEEDED, Outcome.SKIPPED)
            and task not in self._continue_on_error
        ):
            self._failures += 1

    def _make_ready(self, task: str) -> None:
        self._state[task] = _READY
        heapq.heappush(self._heap, self._key[task])

    def _skip_dependants(self, task: str, ended: list[str]) -> None:
        # Only waiting tasks can depend on a need that did not succeed: a ready or
        # running one had all its needs succeed, a done one has already ended.
        stack = [task]
        while stack:
            for dependant in self._dependants[stack.pop()]:
                if self._state[dependant] == _WAITING:
                    self._end(dependant, Outcome.SKIPPED)
                    ended.append(dependant)
                    stack.append(dependant)

    def _end_not_started(self, outcome: Outcome) -> list[str]:
        self._stopped = True
        ended = [t for t in self._order if self._state[t] in (_WAITING, _READY)]
        for task in ended:
            self._end(task, outcome)
        self._heap.clear()
        self._parked.clear()
        return ended

    @staticmethod
    def _check_jobs(jobs: int) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {jobs!r}")


def _require_known(task: str, known: set[str], where: str) -> None:
    if task not in known:
        raise KeyError(f"unknown task {task!r} in {where}")


def _check_acyclic(
    order: list[str], needs: Mapping[str, tuple[str, ...]], dependants: Mapping[str, list[str]]
) -> None:
    """`_topological_order`'s check, on needs already deduplicated and known."""
    indegree = {t: len(n) for t, n in needs.items()}
    result = [t for t in order if not indegree[t]]
    for task in result:  # grows while iterating
        for dependant in dependants[task]:
            indegree[dependant] -= 1
            if not indegree[dependant]:
                result.append(dependant)
    if len(result) != len(order):
        stuck = sorted(t for t in order if indegree[t])
        raise ValueError(f"the needs form a cycle among: {', '.join(stuck)}")


def _topological_order(tasks: Iterable[str], needs: Mapping[str, Collection[str]]) -> list[str]:
    """Kahn's algorithm: needs before dependants; ValueError naming a cycle's tasks."""
    order = list(tasks)
    indegree = {t: 0 for t in order}
    dependants: dict[str, list[str]] = {t: [] for t in order}
    for task, task_needs in needs.items():
        for need in dict.fromkeys(task_needs):
            if need not in indegree:
                raise KeyError(f"unknown task {need!r} in needs[{task!r}]")
            indegree[task] += 1
            dependants[need].append(task)
    result = [t for t in order if indegree[t] == 0]
    for task in result:  # grows while iterating: a queue without deque overhead
        for dependant in dependants[task]:
            indegree[dependant] -= 1
            if not indegree[dependant]:
                result.append(dependant)
    if len(result) != len(order):
        stuck = sorted(t for t in order if indegree[t])
        raise ValueError(f"the needs form a cycle among: {', '.join(stuck)}")
    return result


def critical_path_priority(
    durations: Mapping[str, float], needs: Mapping[str, Collection[str]]
) -> dict[str, float]:
    """Each task's remaining critical path: its own duration plus the longest chain
    of dependants after it. Ordering ready tasks by this is critical-path-first."""
    dependants: dict[str, list[str]] = {t: [] for t in durations}
    for task, task_needs in needs.items():
        if task not in dependants:
            raise KeyError(f"unknown task {task!r} in needs")
        for need in dict.fromkeys(task_needs):
            if need not in dependants:
                raise KeyError(f"unknown task {need!r} in needs[{task!r}]")
            dependants[need].append(task)
    result: dict[str, float] = {}
    for task in reversed(_topological_order(durations, needs)):
        tail = max((result[d] for d in dependants[task]), default=0.0)
        result[task] = float(durations[task]) + tail
    return result


@dataclass(frozen=True)
class Schedule:
    """A simulated run: when each task starts and finishes, and the total span."""

    start: Mapping[str, float]
    finish: Mapping[str, float]
    makespan: float


def simulate(
    durations: Mapping[str, float],
    needs: Mapping[str, Collection[str]],
    exclusive: Mapping[str, Collection[str]],
    priority: Mapping[str, float],
    jobs: int,
) -> Schedule:
    """Simulate a run where every task succeeds and takes its duration.

    Drives a :class:`Scheduler` with an event heap of finish times, so the estimate
    uses exactly the rule of a real run. Tasks that end at the same instant are all
    finished before the next start, as a runner would see them one event-loop turn apart.
    """
    scheduler = Scheduler(durations, needs, exclusive, priority, jobs)
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    events: list[tuple[float, str]] = []
    now = 0.0
    while True:
        for task in scheduler.start_ready():
            start[task] = now
            end = now + float(durations[task])
            finish[task] = end
            heapq.heappush(events, (end, task))
        if not events:
            break
        now, task = heapq.heappop(events)
        scheduler.finish(task, Outcome.SUCCEEDED)
        while events and events[0][0] <= now:
            scheduler.finish(heapq.heappop(events)[1], Outcome.SUCCEEDED)
    return Schedule(start=start, finish=finish, makespan=max(finish.values(), default=0.0))
