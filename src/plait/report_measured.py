"""What a run measured, as the report tells it: the critical path by the time each task
really worked, and the time each task spent ready but not running, split by cause.

Pure functions of the run's rows (no I/O): `plait.reports` reads them from the store.
The plan's estimate says what a run should do; these say what it did, so a task that
took longer than its estimate moves the critical path, and a partner's merge counts as
the partner's hold on its exclusive writes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from plait.storeschema import AttemptRow, TaskRow

__all__ = ["covered", "measured_critical_path", "process_gaps", "waits"]

#: Waits shorter than this are scheduling noise, not time lost.
NOISE_S = 0.05

Span = tuple[float, float]


def measured_critical_path(
    order: Sequence[str],
    needs: Mapping[str, Collection[str]],
    durations: Mapping[str, float],
) -> tuple[str, ...]:
    """The chain through `needs` whose measured durations add up to the most.

    `order` is topological; tasks absent from `durations` (never ran) are on no chain.
    Ties go to the task earlier in `order`, so the same run always gives the same path.
    """
    pos = {t: i for i, t in enumerate(order)}
    best: dict[str, float] = {}
    back: dict[str, str] = {}
    end: str | None = None
    for t in order:
        if t not in durations:
            continue
        longest, before = 0.0, None
        for p in sorted((p for p in needs.get(t, ()) if p in best), key=pos.__getitem__):
            if before is None or best[p] > longest:
                longest, before = best[p], p
        best[t] = longest + max(0.0, durations[t])
        if before is not None:
            back[t] = before
        if end is None or best[t] > best[end]:
            end = t
    chain: list[str] = []
    while end is not None:
        chain.append(end)
        end = back.get(end)
    return tuple(reversed(chain))


def process_gaps(started_at: float, resumes: Iterable[tuple[float, float]]) -> list[Span]:
    """When no plait ran the run: from each process's stop to the next one's start.

    `resumes` are the resumes' (start, wall of the processes before it), oldest first,
    as their `run_resumed` events record them; each process stopped where the walls say.
    """
    gaps: list[Span] = []
    start, wall_before = started_at, 0.0
    for resumed_at, wall in resumes:
        stopped = start + max(0.0, wall - wall_before)
        if resumed_at > stopped:
            gaps.append((stopped, resumed_at))
        start, wall_before = resumed_at, wall
    return gaps


def covered(start: float, end: float, spans: Iterable[Span]) -> float:
    """How much of [start, end] the union of `spans` covers (overlaps counted once)."""
    total, cursor = 0.0, start
    for lo, hi in sorted(spans):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            total += hi - lo
            cursor = hi
    return total


def waits(
    tasks: Sequence[TaskRow],
    attempts: Sequence[AttemptRow],
    needs: Mapping[str, Collection[str]],
    exclusive: Mapping[str, Collection[str]],
    *,
    t0: float,
    until: float,
    ready_at: Mapping[str, float] | None = None,
    gaps: Sequence[Span] = (),
) -> dict[str, dict[str, float]]:
    """Time lost per task, by cause, in seconds.

    Held, ready but not started: "exclusion" while an exclusive partner held its writes,
    "interrupted" while no plait ran (`gaps`), "slots" for the rest. A task in `needs` is
    ready when its last need finished; one that is not (the verify fixer) at `ready_at`,
    else at its first attempt. Thrown away, the attempts whose work was not kept:
    "conflict", "interrupted" (cut short by a stop), "rate_limit" (refused, with the wait
    for its reset), "retry" (failed).
    """
    by_task: dict[str, list[AttemptRow]] = {}
    for attempt in attempts:
        by_task.setdefault(attempt.task_id, []).append(attempt)
    for mine in by_task.values():
        mine.sort(key=lambda a: a.attempt)
    finished = {t.id: t.finished_at for t in tasks}
    holds = {t.id: held_spans(t, by_task.get(t.id, []), until) for t in tasks}
    lost: dict[str, dict[str, float]] = {}
    for task in tasks:
        mine = by_task.get(task.id, [])
        entry: dict[str, float] = {}
        _thrown(mine, entry)
        if mine:
            if task.id in needs:
                ready = max([finished.get(n) or t0 for n in needs[task.id]] + [t0])
            else:  # not a plan task: it became ready when it was made
                ready = (ready_at or {}).get(task.id, mine[0].started_at)
            _held(entry, ready, mine[0].started_at, exclusive.get(task.id, ()), holds, gaps)
        if entry:
            lost[task.id] = entry
    return lost


def held_spans(task: TaskRow, mine: Sequence[AttemptRow], until: float) -> list[Span]:
    """When the task kept its exclusive partners out: from each attempt's start to the
    next one's (it holds on between tries), the last to the task's end (its merge and
    the verify of it included). A stop ends a hold: a resumed attempt starts a new one."""
    spans: list[Span] = []
    for a, after in zip(mine, [*mine[1:], None], strict=False):  # the last: None after it
        end = a.finished_at if a.finished_at is not None else until
        if after is None:
            end = max(end, task.finished_at if task.finished_at is not None else until)
        elif after.kind != "resume":
            end = max(end, after.started_at)
        spans.append((a.started_at, end))
    return spans


def _thrown(mine: Sequence[AttemptRow], entry: dict[str, float]) -> None:
    # Every attempt but the last was thrown away; so was the last, if it conflicted
    # (the task ended `conflicted`: none of its work was kept).
    thrown = [*mine[:-1], *(a for a in mine[-1:] if a.status == "conflict")]
    for a, after in zip(thrown, [*mine[1:], None], strict=False):
        if a.status == "conflict":
            cause = "conflict"
        elif a.status == "interrupted" or (after is not None and after.kind == "resume"):
            cause = "interrupted"  # lost to the stop, not to a failure
        elif a.status == "rate_limited":
            cause = "rate_limit"
            if after is not None and a.finished_at is not None:  # and the wait for its reset
                waited = max(0.0, after.started_at - a.finished_at)
                entry[cause] = entry.get(cause, 0.0) + waited
        else:
            cause = "retry"
        entry[cause] = entry.get(cause, 0.0) + (a.duration_s or 0.0)


def _held(
    entry: dict[str, float],
    ready: float,
    started: float,
    partners: Collection[str],
    holds: Mapping[str, Sequence[Span]],
    gaps: Sequence[Span],
) -> None:
    held = started - ready
    if held <= NOISE_S:
        return
    down = covered(ready, started, gaps)
    spans = [s for p in partners for s in holds.get(p, ())]
    blocked = covered(ready, started, [*spans, *gaps]) - down
    if down > NOISE_S:
        entry["interrupted"] = entry.get("interrupted", 0.0) + down
    if blocked > 0:
        entry["exclusion"] = blocked
    if held - blocked - down > NOISE_S:
        entry["slots"] = held - blocked - down
