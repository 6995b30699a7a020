"""A run's events: rows of ``state.db``, mirrored to ``runs/<run>/events.jsonl``.

Each event gets the run's next ``seq`` and is written to the database in the open
transaction; its JSON line is held until that transaction commits and only then
appended to the file (`plait.eventlog`), so the file never shows an event that the
database lacks. The database is the truth: a file that a crash left behind is
repaired from it the next time the run writes an event. A transaction (or nested
batch) that is rolled back takes its lines, and the seqs it used, with it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.eventlog import EventFiles
from plait.statehome import component
from plait.storedb import Database

__all__ = ["RunEvents"]

_EVENT_KEYS = frozenset({"t", "seq", "run", "kind", "task"})
_EVENT_JSON = json.JSONEncoder(default=str)  # json.dumps(default=...) builds one per call


@dataclass
class _Pending:
    """Event lines written in the open transaction, flushed to files on commit."""

    lines: dict[str, list[bytes]]
    seq_before: dict[str, int]


class RunEvents(Database):
    """The database with each run's events, and their events.jsonl files."""

    def __init__(self, home: Path, conn: sqlite3.Connection, *, fsync_events: bool = True) -> None:
        super().__init__(home, conn)
        self._seq: dict[str, int] = {}  # run id -> last event seq, once known
        self._pending = _Pending({}, {})
        self._event_files = EventFiles(home / "runs", fsync=fsync_events)

    def close(self) -> None:
        """Close the database and event files. Refuses inside an open batch."""
        if not self._depth:  # inside a batch, Database.close() refuses before closing any
            self._event_files.close()
        super().close()

    def add_event(
        self, run_id: str, kind: str, task_id: str | None = None, **data: Any
    ) -> dict[str, Any]:
        """Record an event and mirror it to ``runs/<run>/events.jsonl``; return it."""
        clash = _EVENT_KEYS.intersection(data)
        if clash:
            raise ValueError(f"event data may not use the reserved keys {sorted(clash)}")
        if not self._depth:
            with self._transaction():
                return self.add_event(run_id, kind, task_id, **data)
        seq = self._last_seq(run_id) + 1
        event: dict[str, Any] = {"t": time.time(), "seq": seq, "run": run_id, "kind": kind}
        event["task"] = task_id
        event.update(data)
        line = _EVENT_JSON.encode(event)
        self._exec(
            "INSERT INTO events (run_id, seq, t, kind, task_id, line) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, seq, event["t"], kind, task_id, line),
        )
        self._pending.seq_before.setdefault(run_id, seq - 1)
        self._seq[run_id] = seq
        self._pending.lines.setdefault(run_id, []).append(line.encode() + b"\n")
        return event

    def events(self, run_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        """A run's events with seq > `after_seq`, oldest first, shaped as in the jsonl file."""
        return [json.loads(line) for line in self._event_lines(run_id, after_seq)]

    def _event_lines(self, run_id: str, after_seq: int) -> list[str]:
        rows = self._conn.execute(
            "SELECT line FROM events WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after_seq)
        )
        return [str(r[0]) for r in rows]

    def events_path(self, run_id: str) -> Path:
        """``<home>/runs/<run>/events.jsonl`` (it may not exist yet)."""
        component(run_id)
        return self._event_files.path(run_id)

    def _last_seq(self, run_id: str) -> int:
        seq = self._seq.get(run_id)
        if seq is None:
            found = self._conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()
            seq = self._seq[run_id] = int(found[0])
            # First event of this run in this process: a crash may have cut the
            # file short of the database; bring it level before appending.
            self._event_files.repair(run_id, seq, lambda after: self._event_lines(run_id, after))
        return seq

    # --- following the transaction (hooks of Database) ---------------------------------

    def _committed(self) -> None:
        pending, self._pending = self._pending, _Pending({}, {})
        for run_id, lines in pending.lines.items():
            if lines:
                try:
                    self._event_files.append(run_id, lines)
                except OSError:
                    # The rows are committed; forget the seq so that the run's next
                    # event first repairs the file from the database.
                    self._seq.pop(run_id, None)
                    raise

    def _rolled_back(self) -> None:
        for run, before in self._pending.seq_before.items():
            self._seq[run] = before
        self._pending = _Pending({}, {})

    def _savepoint(self) -> Callable[[], None]:
        marks = {run: len(lines) for run, lines in self._pending.lines.items()}
        seqs = dict(self._seq)

        def undo() -> None:
            for run, lines in self._pending.lines.items():
                del lines[marks.get(run, 0) :]
            self._seq = seqs  # runs first seen inside are read again from the database

        return undo
