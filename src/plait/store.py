"""The run journal: `Store`, the SQLite state of runs, tasks and attempts.

A `Store` is built in layers, one concept per module: where the state lives and
what its files are called (`plait.statehome`); the connection to ``state.db``, its
transactions and their durability (`plait.storedb`); each run's events, mirrored
to ``runs/<run>/events.jsonl`` after the commit that holds them
(`plait.storeevents`, `plait.eventlog`); the schema and row types
(`plait.storeschema`). This module adds the rows of runs, tasks and attempts, the
queries over them, and the run folders.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from plait import storeschema as schema
from plait.errors import RunNotFound
from plait.runjson import status_json
from plait.statehome import DB_FILE, component
from plait.storedb import connect
from plait.storeevents import RunEvents
from plait.storeschema import AttemptRow, RunRow, TaskRow

__all__ = [
    "FINISHED_TASK_STATUSES",
    "RUN_STATUSES",
    "TASK_STATUSES",
    "AttemptRow",
    "RunRow",
    "Store",
    "TaskRow",
]

RUN_STATUSES = schema.RUN_STATUSES
TASK_STATUSES = schema.TASK_STATUSES
FINISHED_TASK_STATUSES = schema.FINISHED_TASK_STATUSES


class Store(RunEvents):
    """SQLite state for runs, tasks, attempts and events. Use from one thread.

    Another process may open the same home to read (``plait status --follow``):
    WAL lets readers see the last commit without blocking the writer.

    Transactions (`batch`, `begin`, `commit`, `defer_sync`, `sync_wal`) come from
    `plait.storedb.Database`, events (`add_event`, `events`, `events_path`) from
    `plait.storeevents.RunEvents`.
    """

    def __init__(self, home: Path, conn: sqlite3.Connection, *, fsync_events: bool = True) -> None:
        super().__init__(home, conn, fsync_events=fsync_events)
        self._runs = os.fspath(home / "runs")

    # --- opening and closing -----------------------------------------------------

    @classmethod
    def open(
        cls,
        home: Path,
        *,
        busy_timeout_ms: int = 10_000,
        fsync_events: bool = True,
        any_thread: bool = False,
    ) -> Store:
        """Open (creating if needed) the store in `home` and bring its schema up to date.

        `fsync_events=False` skips the fsync of events.jsonl at each commit (the
        database is still synced; the file is rebuilt from it if a crash cut it
        short), halving the syncs per batch. `any_thread=True` lets another thread
        use the connection (one thread at a time, never two).
        """
        home = Path(home)
        conn = connect(home, busy_timeout_ms=busy_timeout_ms, any_thread=any_thread)
        return cls(home, conn, fsync_events=fsync_events)

    @staticmethod
    def exists(home: Path) -> bool:
        """True if a store was ever created in `home` (so opening it creates nothing)."""
        return (Path(home) / DB_FILE).is_file()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- runs ----------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        plan_name: str,
        plan_path: str | None,
        plan_json: str,
        base: str | None,
        branch: str | None,
        jobs: int,
        started_at: float,
        task_ids: Sequence[str],
    ) -> None:
        """Record a new run (status "running") and one "pending" row per task."""
        component(run_id)
        for task_id in task_ids:
            component(task_id)
        with self._transaction():
            where = (os.getpid(), socket.gethostname())
            self._exec(
                "INSERT INTO runs (id, plan_name, plan_path, plan_json, base, branch, jobs,"
                " status, started_at, pid, host) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (run_id, plan_name, plan_path, plan_json, base, branch, jobs, started_at, *where),
            )
            self._conn.executemany(
                "INSERT INTO tasks (run_id, task_id, position, status) VALUES (?, ?, ?, 'pending')",
                [(run_id, task_id, i) for i, task_id in enumerate(task_ids)],
            )

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set run columns: status, finished_at, head, verify, wall_s, error, pid, base, branch."""
        sql, params = schema.update_sql("runs", schema.RUN_FIELDS, fields, "id = ?", (run_id,))
        if self._write(sql, params) == 0:
            raise RunNotFound(f"no run {run_id!r}")

    def run(self, run_id: str) -> RunRow:
        """One run's row; RunNotFound if there is none."""
        row = self._conn.execute(f"SELECT {schema.RUN_COLS} FROM runs WHERE id = ?", (run_id,))
        found = row.fetchone()
        if found is None:
            raise RunNotFound(f"no run {run_id!r} in {self.home}")
        return RunRow.from_row(found)

    def runs(self, limit: int | None = None) -> list[RunRow]:
        """Runs, newest first."""
        sql = f"SELECT {schema.RUN_COLS} FROM runs ORDER BY started_at DESC, rowid DESC"
        params: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [RunRow.from_row(r) for r in self._conn.execute(sql, params)]

    def latest_run_id(self) -> str | None:
        """The newest run's id, or None if there are no runs."""
        found = self._conn.execute(
            "SELECT id FROM runs ORDER BY started_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return None if found is None else str(found[0])

    def resolve_run_id(self, given: str | None) -> str:
        """The run a user means: the latest for None, else an exact id or unique prefix."""
        if given is None:
            latest = self.latest_run_id()
            if latest is None:
                raise RunNotFound(f"no runs yet in {self.home}")
            return latest
        rows = self._conn.execute(
            "SELECT id FROM runs WHERE id = ? OR substr(id, 1, ?) = ? ORDER BY id",
            (given, len(given), given),
        ).fetchall()
        ids = [str(r[0]) for r in rows]
        if given in ids:
            return given
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise RunNotFound(f"no run {given!r} in {self.home}")
        raise RunNotFound(f"run {given!r} is ambiguous: {', '.join(ids[:5])}")

    # --- tasks -----------------------------------------------------------------------

    def add_task(self, run_id: str, task_id: str, *, status: str = "pending") -> None:
        """Add a task to a running run (e.g. the plan's `on_verify_failure` fixer), last."""
        component(task_id)
        if status not in TASK_STATUSES:
            raise ValueError(f"status {status!r} is not one of {sorted(TASK_STATUSES)}")
        self._write(
            "INSERT INTO tasks (run_id, task_id, position, status) SELECT ?, ?,"
            " COALESCE(MAX(position) + 1, 0), ? FROM tasks WHERE run_id = ?",
            (run_id, task_id, status, run_id),
        )

    def update_task(self, run_id: str, task_id: str, **fields: Any) -> None:
        """Set task columns (status, attempts, started_at, finished_at, commit, merged, …)."""
        sql, params = schema.update_sql(
            "tasks", schema.TASK_FIELDS, fields, "run_id = ? AND task_id = ?", (run_id, task_id)
        )
        if self._write(sql, params) == 0:
            raise RunNotFound(f"no task {task_id!r} in run {run_id!r}")

    def tasks(self, run_id: str) -> list[TaskRow]:
        """A run's tasks, in the order the run listed them."""
        rows = self._conn.execute(
            f"SELECT {schema.TASK_COLS} FROM tasks WHERE run_id = ? ORDER BY position", (run_id,)
        )
        return [TaskRow.from_row(r) for r in rows]

    def task(self, run_id: str, task_id: str) -> TaskRow:
        """One task's row; RunNotFound if the run has no such task."""
        found = self._conn.execute(
            f"SELECT {schema.TASK_COLS} FROM tasks WHERE run_id = ? AND task_id = ?",
            (run_id, task_id),
        ).fetchone()
        if found is None:
            raise RunNotFound(f"no task {task_id!r} in run {run_id!r}")
        return TaskRow.from_row(found)

    # --- attempts ----------------------------------------------------------------------

    def start_attempt(
        self,
        run_id: str,
        task_id: str,
        attempt: int,
        *,
        kind: str,
        started_at: float,
        workspace: str | None = None,
        start_commit: str | None = None,
    ) -> None:
        """Record that attempt number `attempt` (1-based) of a task has started."""
        if kind not in schema.ATTEMPT_KINDS:
            raise ValueError(f"attempt kind {kind!r} is not one of {sorted(schema.ATTEMPT_KINDS)}")
        self._write(
            "INSERT INTO attempts (run_id, task_id, attempt, kind, status, started_at,"
            " workspace, start_commit) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
            (run_id, task_id, attempt, kind, started_at, workspace, start_commit),
        )

    def note_workspace(self, run_id: str, task_id: str, attempt: int, path: str) -> None:
        """Record where an attempt's workspace is kept (a failed one, to look at)."""
        self._write(
            "UPDATE attempts SET workspace = ? WHERE run_id = ? AND task_id = ? AND attempt = ?",
            (path, run_id, task_id, attempt),
        )

    def finish_attempt(
        self,
        run_id: str,
        task_id: str,
        attempt: int,
        *,
        status: str,
        finished_at: float,
        exit_code: int | None = None,
        error: str = "",
        cost_usd: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        session_id: str | None = None,
        commit: str | None = None,
    ) -> None:
        """Record how an attempt ended (status: an AttemptStatus value or "interrupted")."""
        usage = (cost_usd, input_tokens, output_tokens, session_id, commit)
        changed = self._write(
            "UPDATE attempts SET status = ?, finished_at = ?, exit_code = ?, error = ?,"
            " cost_usd = ?, input_tokens = ?, output_tokens = ?, session_id = ?,"
            " commit_sha = ? WHERE run_id = ? AND task_id = ? AND attempt = ?",
            (status, finished_at, exit_code, error, *usage, run_id, task_id, attempt),
        )
        if changed == 0:
            raise RunNotFound(f"no attempt {attempt} of task {task_id!r} in run {run_id!r}")

    def attempts(self, run_id: str, task_id: str | None = None) -> list[AttemptRow]:
        """A run's attempts (or one task's), in the order they started."""
        sql = f"SELECT {schema.ATTEMPT_COLS} FROM attempts WHERE run_id = ?"
        params: tuple[str, ...] = (run_id,)
        if task_id is not None:
            sql += " AND task_id = ?"
            params = (run_id, task_id)
        sql += " ORDER BY started_at, task_id, attempt"
        return [AttemptRow.from_row(r) for r in self._conn.execute(sql, params)]

    def unfinished_attempts(self, run_id: str) -> list[AttemptRow]:
        """Attempts that were in flight when the run stopped (no finished_at)."""
        rows = self._conn.execute(
            f"SELECT {schema.ATTEMPT_COLS} FROM attempts WHERE run_id = ? AND finished_at IS NULL"
            " ORDER BY started_at, task_id, attempt",
            (run_id,),
        )
        return [AttemptRow.from_row(r) for r in rows]

    def close_unfinished_attempts(
        self, run_id: str, *, finished_at: float, status: str = "interrupted"
    ) -> list[AttemptRow]:
        """For resume: end every attempt left in flight by a crash; return them as they were."""
        with self._transaction():
            left = self.unfinished_attempts(run_id)
            self._exec(
                "UPDATE attempts SET status = ?, finished_at = ?, error = ?"
                " WHERE run_id = ? AND finished_at IS NULL",
                (status, finished_at, "the run stopped while this attempt was in flight", run_id),
            )
        return left

    def next_attempt(self, run_id: str, task_id: str) -> int:
        """The number the task's next attempt should use (1 for its first)."""
        found = self._conn.execute(
            "SELECT COALESCE(MAX(attempt), 0) FROM attempts WHERE run_id = ? AND task_id = ?",
            (run_id, task_id),
        ).fetchone()
        return int(found[0]) + 1

    # --- history ------------------------------------------------------------------------

    def durations(
        self,
        plan_name: str,
        task_ids: Iterable[str] | None = None,
        *,
        exclude_run: str | None = None,
        before: float | None = None,
        per_task: int = 20,
    ) -> dict[str, list[float]]:
        """Durations (s) of succeeded tasks in runs of plan `plan_name`, oldest first.

        A duration is the task's work, as `duration_s` reports it (`runjson.work_s`):
        its attempts, not those that conflicted (they happen only beside others), nor
        waits or the time a run was stopped (both are in its span). Only the latest
        `per_task` per task are kept; `exclude_run` leaves out the run being planned,
        `before` the runs that started at or after it (a report of an old run uses the
        history that run was estimated by). Tasks with no history are absent.
        """
        worked = (
            "SELECT SUM(a.finished_at - a.started_at) FROM attempts a"
            " WHERE a.run_id = t.run_id AND a.task_id = t.task_id"
            " AND a.status != 'conflict' AND a.finished_at IS NOT NULL"
        )
        sql = (
            f"SELECT t.task_id, COALESCE(({worked}), t.finished_at - t.started_at) FROM tasks t"
            " JOIN runs r ON r.id = t.run_id"
            " WHERE r.plan_name = ? AND t.status IN ('succeeded', 'merged')"
            " AND t.started_at IS NOT NULL AND t.finished_at IS NOT NULL AND r.id IS NOT ?"
            " AND (? IS NULL OR r.started_at < ?)"
            " ORDER BY r.started_at, r.rowid"
        )
        wanted = None if task_ids is None else set(task_ids)
        out: dict[str, list[float]] = {}
        for task_id, duration in self._conn.execute(sql, (plan_name, exclude_run, before, before)):
            if wanted is None or task_id in wanted:
                out.setdefault(task_id, []).append(max(0.0, float(duration)))
        return {task_id: values[-per_task:] for task_id, values in out.items()}

    # --- the JSON of `plait status --json` -------------------------------------------

    def status_json(self, run_id: str) -> dict[str, Any]:
        """A run as DESIGN §7 shapes it for ``run``/``status --json``."""
        return status_json(self.run(run_id), self.tasks(run_id))

    # --- files -----------------------------------------------------------------------

    def run_dir(self, run_id: str, *, create: bool = True) -> Path:
        """``<home>/runs/<run>/``, created unless `create` is False."""
        path = self.home / "runs" / component(run_id)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path

    def attempt_stem(self, run_id: str, task_id: str, attempt: int) -> Path:
        """``<home>/runs/<run>/<task>.<attempt>``: the stem of the attempt's files.

        Its prompt, log and output are files beside it (`plait.agents.base.attempt_file`);
        the folder of this name is made only by a backend that keeps files of its own.
        Task ids have no dot, so the names are unambiguous. Nothing is created here.
        """
        return Path(
            os.path.join(self._runs, component(run_id), f"{component(task_id)}.{int(attempt)}")
        )
