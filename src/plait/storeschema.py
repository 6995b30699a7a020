"""The store's tables, typed rows and encodings (no connection is opened here).

Kept apart from `store.py` so that the SQL that defines and reads the journal
sits in one place: the schema with its ``user_version`` migrations, the column
lists each row type is read with, and how Python values become column values.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plait.errors import EnvironmentProblem

RUN_STATUSES = frozenset({"running", "succeeded", "failed", "interrupted", "cancelled"})


def run_exit_code(status: str) -> int:
    """The exit code of a run that ended with `status` (DESIGN §7): 0, 1, or 130."""
    if status == "succeeded":
        return 0
    if status in ("interrupted", "running"):  # "running" with nobody running it: killed
        return 130
    return 1


TASK_STATUSES = frozenset(
    {
        "pending",
        "ready",
        "waiting",  # a conflict re-run waiting its turn on a file (`plait.lanes`)
        "running",
        "verifying",
        "merging",
        "merged",
        "succeeded",
        "failed",
        "errored",
        "conflicted",
        "skipped",
        "cancelled",
    }
)
#: A task in one of these states is never run again, not even by resume.
FINISHED_TASK_STATUSES = frozenset(
    {"merged", "succeeded", "failed", "errored", "conflicted", "skipped", "cancelled"}
)
ATTEMPT_KINDS = frozenset({"first", "retry", "conflict", "resume", "rate_limit"})

SCHEMA_VERSION = 1
#: MIGRATIONS[v] takes a database from user_version v to v + 1.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, plan_name TEXT NOT NULL, plan_path TEXT,
            plan_json TEXT NOT NULL, base TEXT, branch TEXT, head TEXT,
            jobs INTEGER NOT NULL, status TEXT NOT NULL, started_at REAL NOT NULL,
            finished_at REAL, wall_s REAL, verify TEXT, error TEXT, pid INTEGER, host TEXT)""",
        "CREATE INDEX runs_by_plan ON runs (plan_name, started_at)",
        """CREATE TABLE tasks (
            run_id TEXT NOT NULL, task_id TEXT NOT NULL, position INTEGER NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            started_at REAL, finished_at REAL, commit_sha TEXT, branch TEXT,
            merged INTEGER NOT NULL DEFAULT 0,
            changed_files TEXT NOT NULL DEFAULT '[]',
            scope_violations TEXT NOT NULL DEFAULT '[]',
            output TEXT, error TEXT, cost_usd REAL, tokens INTEGER,
            PRIMARY KEY (run_id, task_id))""",
        """CREATE TABLE attempts (
            run_id TEXT NOT NULL, task_id TEXT NOT NULL, attempt INTEGER NOT NULL,
            kind TEXT NOT NULL, status TEXT NOT NULL, started_at REAL NOT NULL,
            finished_at REAL, workspace TEXT, start_commit TEXT, exit_code INTEGER,
            error TEXT, cost_usd REAL, input_tokens INTEGER, output_tokens INTEGER,
            session_id TEXT, commit_sha TEXT,
            PRIMARY KEY (run_id, task_id, attempt))""",
        """CREATE TABLE events (
            run_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL,
            task_id TEXT, line TEXT NOT NULL, PRIMARY KEY (run_id, seq))""",
    ],
]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION (a no-op, and no write lock, when it is there)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise EnvironmentProblem(
            f"state.db has schema version {version}, newer than this plait knows "
            f"({SCHEMA_VERSION}); upgrade plait"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the write lock.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for step in MIGRATIONS[version:SCHEMA_VERSION]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# --- writing columns -------------------------------------------------------------------


def _status(allowed: frozenset[str]) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"status {value!r} is not one of {sorted(allowed)}")
        return str(value)

    return encode


def _json_list(value: Any) -> str:
    return json.dumps([str(v) for v in value]) if value else "[]"


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _same(value: Any) -> Any:
    return value


def _flag(value: Any) -> int:
    return int(bool(value))


#: Keyword accepted by update_run / update_task -> (column, encoder).
RUN_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "status": ("status", _status(RUN_STATUSES)),
    "finished_at": ("finished_at", _same),
    "head": ("head", _same),
    "base": ("base", _same),
    "branch": ("branch", _same),
    "verify": ("verify", _json_text),
    "wall_s": ("wall_s", _same),
    "error": ("error", _same),
    "pid": ("pid", _same),
    "host": ("host", _same),
}
TASK_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "status": ("status", _status(TASK_STATUSES)),
    "attempts": ("attempts", _same),
    "started_at": ("started_at", _same),
    "finished_at": ("finished_at", _same),
    "commit": ("commit_sha", _same),
    "branch": ("branch", _same),
    "merged": ("merged", _flag),
    "changed_files": ("changed_files", _json_list),
    "scope_violations": ("scope_violations", _json_list),
    "output": ("output", _same),
    "error": ("error", _same),
    "cost_usd": ("cost_usd", _same),
    "tokens": ("tokens", _same),
}
_UPDATE_SQL: dict[tuple[str, tuple[str, ...]], str] = {}


def update_sql(
    table: str,
    allowed: Mapping[str, tuple[str, Callable[[Any], Any]]],
    fields: Mapping[str, Any],
    where: str,
    key: Sequence[Any],
) -> tuple[str, list[Any]]:
    """An UPDATE for the given keyword fields (statements cached per field set)."""
    names = tuple(fields)
    sql = _UPDATE_SQL.get((table, names))
    if sql is None:
        unknown = sorted(set(names) - set(allowed))
        if unknown or not names:
            raise TypeError(f"{table}: cannot set {unknown or 'nothing'}; known: {sorted(allowed)}")
        sets = ", ".join(f"{allowed[n][0]} = ?" for n in names)
        sql = _UPDATE_SQL[(table, names)] = f"UPDATE {table} SET {sets} WHERE {where}"
    params = [allowed[n][1](v) for n, v in fields.items()]
    params.extend(key)
    return sql, params


def clean_text(value: Any) -> Any:
    """A string SQLite can store as UTF-8 (lone surrogates become '?')."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


# --- reading rows --------------------------------------------------------------------


def _tuple(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


RUN_COLS = (
    "id, plan_name, plan_path, plan_json, base, branch, head, jobs, status, started_at,"
    " finished_at, wall_s, verify, error, pid, host"
)


@dataclass(frozen=True)
class RunRow:
    """One run, as stored."""

    id: str
    plan_name: str
    plan_path: str | None
    plan_json: str
    base: str | None
    branch: str | None
    head: str | None
    jobs: int
    status: str
    started_at: float
    finished_at: float | None
    wall_s: float | None
    verify: Any  # decoded JSON, None if not run
    error: str | None
    pid: int | None
    host: str | None

    @property
    def run_id(self) -> str:
        """The same as `id`, for symmetry with TaskRow and AttemptRow."""
        return self.id

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRow:
        """Build from a row selected with RUN_COLS."""
        values = list(row)
        values[12] = json.loads(values[12]) if values[12] else None
        return cls(*values)


TASK_COLS = (
    "run_id, task_id, position, status, attempts, started_at, finished_at, commit_sha, branch,"
    " merged, changed_files, scope_violations, output, error, cost_usd, tokens"
)


@dataclass(frozen=True)
class TaskRow:
    """One task of one run, as stored."""

    run_id: str
    id: str
    position: int
    status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    commit: str | None
    branch: str | None
    merged: bool
    changed_files: tuple[str, ...]
    scope_violations: tuple[str, ...]
    output: str | None
    error: str | None
    cost_usd: float | None
    tokens: int | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TaskRow:
        """Build from a row selected with TASK_COLS."""
        values = list(row)
        values[9] = bool(values[9])
        values[10] = _tuple(values[10])
        values[11] = _tuple(values[11])
        return cls(*values)

    @property
    def finished(self) -> bool:
        """True if the task has an outcome and must never run again."""
        return self.status in FINISHED_TASK_STATUSES

    @property
    def duration_s(self) -> float | None:
        """Seconds from the task's start to its end, if it has both."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    def to_json(self) -> dict[str, Any]:
        """The task object of DESIGN §7's run/status JSON."""
        return {
            "id": self.id,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "commit": self.commit,
            "branch": self.branch,
            "merged": self.merged,
            "changed_files": list(self.changed_files),
            "scope_violations": list(self.scope_violations),
            "output": self.output,
            "error": self.error,
            "cost_usd": self.cost_usd,
            "tokens": self.tokens,
        }


ATTEMPT_COLS = (
    "run_id, task_id, attempt, kind, status, started_at, finished_at, workspace, start_commit,"
    " exit_code, error, cost_usd, input_tokens, output_tokens, session_id, commit_sha"
)


@dataclass(frozen=True)
class AttemptRow:
    """One attempt of one task, as stored. `status` is "running" until it finishes."""

    run_id: str
    task_id: str
    attempt: int
    kind: str
    status: str
    started_at: float
    finished_at: float | None
    workspace: str | None
    start_commit: str | None
    exit_code: int | None
    error: str | None
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    session_id: str | None
    commit: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AttemptRow:
        """Build from a row selected with ATTEMPT_COLS."""
        return cls(*row)

    @property
    def finished(self) -> bool:
        """False while the attempt is (or was, at a crash) in flight."""
        return self.finished_at is not None

    @property
    def duration_s(self) -> float | None:
        """Seconds the attempt took, once finished."""
        return None if self.finished_at is None else max(0.0, self.finished_at - self.started_at)
