"""What a resumed run carries over from the attempts made before its interruption.

DESIGN §5: finished tasks never run again, and a task cut short starts again with
what its earlier attempts left: the retries and conflict re-runs they used, the note
its next attempt gets when the last one failed or conflicted (made again from the
recorded error and log), and, for a re-run after a conflict that was due, the files
it holds while it runs (`plait.lanes`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from plait.agents.base import LOG_SUFFIX, VERIFY_LOG_SUFFIX, attempt_file
from plait.attemptjudge import note
from plait.store import AttemptRow

__all__ = [
    "FAILED_ATTEMPT_STATUSES",
    "conflicted_last",
    "due_lanes",
    "resumed_note",
    "tries_used",
]

#: Attempt statuses of an attempt that failed and so used one of the task's retries (or,
#: "errored" by its agent or its prompt template, ended the task).
FAILED_ATTEMPT_STATUSES = frozenset({"failed", "timeout", "crashed", "rejected", "errored"})


def tries_used(attempts: Sequence[AttemptRow]) -> tuple[int, int]:
    """The retries and conflict re-runs that one task's recorded attempts used: one retry
    for each attempt that failed, one re-run for each that conflicted.

    Counted from how attempts ended, not from why they started (their kind): an attempt
    plait's death interrupted uses nothing, and its run again after the interruption
    (kind "resume", DESIGN §5: at most once per interruption) is the same try, which may
    have been a retry. So across any number of interruptions a task fails at most
    1 + `retries` times and conflicts at most 1 + `max_conflict_reruns` times; a failure
    recorded just before a kill used its retry even though the retry never started.
    """
    retries = sum(1 for a in attempts if a.status in FAILED_ATTEMPT_STATUSES)
    reruns = sum(1 for a in attempts if a.status == "conflict")
    return retries, reruns


def resumed_note(attempts: Sequence[AttemptRow], attempt_stem: Callable[[int], Path]) -> str:
    """The note the next attempt gets when the task's latest finished attempt failed or
    conflicted before an interruption ("" if none did).

    The note itself is not stored: it is made again from that attempt's recorded error
    and the end of its log (its check's log, if the check is what failed), so a retry
    resumed by another process is told what a retry in the same process would have been.
    """
    last = _last_unanswered(attempts)
    if last is None:
        return ""
    if last.status == "conflict":
        return note(f"The previous attempt conflicted with work merged meanwhile ({last.error})"
                    "; start again from the current code and keep both changes", "")  # fmt: skip
    # The task's own check failing is recorded as "verify <command> failed" (see
    # plait.attempt); its log, not the agent's, says why.
    failed_check = (last.error or "").startswith("verify ")
    log = attempt_file(
        attempt_stem(last.attempt), VERIFY_LOG_SUFFIX if failed_check else LOG_SUFFIX
    )
    tail = _log_tail(log)
    return note(f"The previous attempt failed: {last.error or last.status}", tail)


def conflicted_last(attempts: Sequence[AttemptRow]) -> int | None:
    """The number of the task's latest finished attempt if it conflicted (and nothing
    succeeded since): its re-run was due, holding the files it conflicted on."""
    last = _last_unanswered(attempts)
    return last.attempt if last is not None and last.status == "conflict" else None


def _last_unanswered(attempts: Sequence[AttemptRow]) -> AttemptRow | None:
    """The latest attempt that failed or conflicted, unless a later one succeeded."""
    ended = [a for a in attempts if a.status in FAILED_ATTEMPT_STATUSES or a.status == "conflict"]
    last = max(ended, key=lambda a: a.attempt, default=None)
    if last is None or any(a.attempt > last.attempt and a.status == "ok" for a in attempts):
        return None
    return last


def _log_tail(path: Path, size: int = 65536) -> str:
    """The end of a log file ("" if there is none)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - size))
            return log.read().decode("utf-8", "replace")
    except OSError:
        return ""


def due_lanes(
    due: Mapping[str, int], events: Iterable[Mapping[str, Any]]
) -> dict[str, tuple[str, ...]]:
    """The files each task's due re-run holds: `due` maps a task to the attempt that
    conflicted (`conflicted_last`); its `conflict` event names the files."""
    lanes: dict[str, tuple[str, ...]] = {}
    for event in events:
        task_id = str(event.get("task"))
        if event.get("kind") == "conflict" and due.get(task_id) == event.get("attempt"):
            lanes[task_id] = tuple(event.get("files") or ())
    return lanes
