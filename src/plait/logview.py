"""`plait logs`: an attempt's log as the agent wrote it, and with `--follow` as it grows.

The log is the agent's own output (and its task verify's), so it is copied byte for
byte, as `tail` would: carriage returns, colours and bytes that are not UTF-8 reach
the terminal as the program printed them. Following ends when the attempt does, or
when the plait running it is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from plait.agents.base import LOG_SUFFIX, VERIFY_LOG_SUFFIX, attempt_file
from plait.errors import RunNotFound
from plait.status import shown_status
from plait.store import Store

__all__ = ["show_log"]

FOLLOW_POLL_S = 0.2


def show_log(
    store: Store,
    run_id: str,
    task: str,
    attempt: int | None,
    *,
    follow: bool,
    write: Callable[[bytes], object],
    say: Callable[[str], object],
) -> None:
    """Write the attempt's logs (the last attempt's by default) through `write`; `say`
    gets plait's own remarks (an attempt that printed nothing)."""
    store.run(run_id)  # RunNotFound for an unknown id
    number = _attempt_number(store, run_id, task, attempt)
    stem = store.attempt_stem(run_id, task, number)
    logs = [attempt_file(stem, LOG_SUFFIX), attempt_file(stem, VERIFY_LOG_SUFFIX)]
    if not any(path.exists() for path in logs):  # a run recorded before the files were flat
        legacy = stem.parent / task / str(number)
        if (legacy / "agent.log").exists():
            logs = [legacy / "agent.log", legacy / "verify.log"]
    read = {path: 0 for path in logs}
    while True:
        running = follow and _still_running(store, run_id, task, number)
        for path in logs:  # the agent's log, then its verify's, each as far as it goes
            read[path] += _copy_from(path, read[path], write)
        if not running:
            break
        time.sleep(FOLLOW_POLL_S)
    if not any(read.values()):  # a log is only made once the program prints
        ended = _ending(store, run_id, task, number)
        say(f"{task} attempt {number} printed nothing{ended}")


def _attempt_number(store: Store, run_id: str, task: str, attempt: int | None) -> int:
    rows = store.attempts(run_id, task)
    if not rows:
        tasks = {t.id: t.status for t in store.tasks(run_id)}
        if task not in tasks:
            listed = ", ".join(tasks) if tasks else "none"
            raise RunNotFound(f"run {run_id} has no task {task!r}; its tasks: {listed}")
        raise RunNotFound(
            f"task {task!r} of run {run_id} has no attempts, so no log (it is {tasks[task]})"
        )
    number = attempt if attempt is not None else max(r.attempt for r in rows)
    if number not in {r.attempt for r in rows}:
        raise RunNotFound(f"run {run_id} has no attempt {number} of task {task!r}")
    return number


def _still_running(store: Store, run_id: str, task: str, number: int) -> bool:
    if shown_status(store.run(run_id)) != "running":
        return False  # finished, or its plait is gone: nothing more will be written
    row = next(r for r in store.attempts(run_id, task) if r.attempt == number)
    return row.finished_at is None


def _ending(store: Store, run_id: str, task: str, number: int) -> str:
    row = next(r for r in store.attempts(run_id, task) if r.attempt == number)
    return f" (it ended: {row.status})" if row.finished_at is not None else ""


def _copy_from(path: Path, offset: int, write: Callable[[bytes], object]) -> int:
    """Write what `path` holds past `offset`; how many bytes that was."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return 0
    if data:
        write(data)
    return len(data)
