"""The JSON Lines mirror of a run's events: ``<home>/runs/<run>/events.jsonl``.

Any tool can follow a run by reading this file (``tail -f``, ``plait status
--follow``). The store writes lines here after the database commit that holds the
same events, so the file never shows an event the database lacks; a crash between
the two leaves the file short, and `EventFiles.repair` brings it level from the
database before the run's next event is appended.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

EVENTS_FILE = "events.jsonl"


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Whole events from byte `offset` on, and the offset to read from next time.

    A line still being written (no newline yet) is left for the next call.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return events, offset + end


def last_complete_seq(path: Path, chunk: int = 65536) -> int | None:
    """The seq of the file's last line: 0 if empty or absent, None if the tail is damaged."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        return 0
    with fh:
        end = fh.seek(0, 2)
        if end == 0:
            return 0
        fh.seek(end - 1)
        if fh.read(1) != b"\n":
            return None  # a line cut off by a crash
        # Read backwards until the line before the final newline is whole.
        tail = b""
        pos = end
        while True:
            start = max(0, pos - chunk)
            fh.seek(start)
            tail = fh.read(pos - start) + tail
            pos = start
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0 or pos == 0:
                break
        line = tail[cut + 1 :]
    try:
        seq = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


class EventFiles:
    """Open append handles on each run's events.jsonl, fsynced per append."""

    def __init__(self, runs_dir: Path, *, fsync: bool = True) -> None:
        self.runs_dir = runs_dir
        self.fsync = fsync
        self._files: dict[str, IO[bytes]] = {}

    def path(self, run_id: str) -> Path:
        """Where a run's events go."""
        return self.runs_dir / run_id / EVENTS_FILE

    def append(self, run_id: str, lines: list[bytes]) -> None:
        """Append whole lines and make them durable (one write, one fsync if enabled)."""
        fh = self._files.get(run_id)
        if fh is None:
            path = self.path(run_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "ab")  # noqa: SIM115 - kept open across commits, closed in close()
            self._files[run_id] = fh
        fh.write(b"".join(lines))
        fh.flush()
        if self.fsync:
            os.fsync(fh.fileno())

    def repair(self, run_id: str, db_seq: int, lines_after: Callable[[int], list[str]]) -> None:
        """Make the file hold exactly the database's events 1..`db_seq`.

        `lines_after(seq)` returns the database's event lines (JSON) after `seq`.
        """
        path = self.path(run_id)
        file_seq = last_complete_seq(path)
        if file_seq == db_seq:
            return
        if file_seq is not None and file_seq < db_seq:
            self.append(run_id, [f"{line}\n".encode() for line in lines_after(file_seq)])
            return
        # A cut-off or unreadable tail, or lines the database never kept: rewrite
        # from the database, atomically, so a follower never sees half a file.
        fh = self._files.pop(run_id, None)
        if fh is not None:
            fh.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.writelines(f"{line}\n".encode() for line in lines_after(0))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    def close(self) -> None:
        """Close every handle."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
