"""The store's connection to ``state.db``: opening it, transactions, durability.

``state.db`` is SQLite in WAL mode with ``synchronous=FULL``: a write is on disk
when the call that made it returns (or, inside ``batch()``, when the batch ends),
so resume after ``kill -9`` sees every transition that a later step could depend on.

Transitions that arrive together are committed together: during a run, the
journal (`plait.journal`) keeps a transaction open for the writes of many tasks,
commits it when one of them needs it on disk, and fsyncs the write-ahead log for
every commit made meanwhile at once (`defer_sync`, `sync_wal`).

`Database` is the bottom layer of `plait.store.Store`; what a transaction holds
besides rows (the event lines of `plait.storeevents`) follows its commits and
rollbacks through the hooks at the end of the class.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from plait import storeschema as schema
from plait.errors import EnvironmentProblem
from plait.statehome import DB_FILE

__all__ = ["WAL_FILE", "Database", "connect"]

WAL_FILE = DB_FILE + "-wal"


def connect(home: Path, *, busy_timeout_ms: int, any_thread: bool) -> sqlite3.Connection:
    """Open (creating if needed) ``<home>/state.db`` with its schema brought up to date.

    Raises EnvironmentProblem (exit 3) when the folder cannot be made or the file is
    not a database SQLite can open: the person must move it or point PLAIT_HOME
    elsewhere, and a traceback would tell them neither.
    """
    db = home / DB_FILE
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is not a folder" if home.exists() and not home.is_dir() else exc.strerror
        raise EnvironmentProblem(
            f"plait cannot keep its state in {home} ({why}): set PLAIT_HOME to a folder"
            " it can write"
        ) from exc
    try:
        # isolation_level=None: the module never opens transactions behind our
        # back; batch() issues BEGIN/COMMIT itself so it can count and nest them.
        conn = sqlite3.connect(
            db,
            isolation_level=None,
            timeout=busy_timeout_ms / 1e3,
            check_same_thread=not any_thread,
        )
    except sqlite3.Error as exc:
        raise _unusable(db, exc) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        schema.migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise _unusable(db, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


#: SQLite's names for a file that is not (or no longer) a database it can read.
_NOT_A_DATABASE = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})


def _unusable(db: Path, exc: sqlite3.Error) -> EnvironmentProblem:
    """The one-line error for a state file SQLite would not open or set up."""
    name = getattr(exc, "sqlite_errorname", None)
    if name in _NOT_A_DATABASE:
        return EnvironmentProblem(
            f"plait's state at {db} is not a database it can read ({exc}): move it away,"
            " or set PLAIT_HOME to another folder"
        )
    return EnvironmentProblem(
        f"plait cannot open its state at {db} ({exc}): check that the file and its folder"
        " can be written, or set PLAIT_HOME to another folder"
    )


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _nothing() -> None:
    pass


class Database:
    """One connection to ``<home>/state.db`` and the transactions made on it."""

    def __init__(self, home: Path, conn: sqlite3.Connection) -> None:
        self.home = home
        self._conn = conn
        self._depth = 0  # batch nesting depth
        self._deferred = False
        self._wal_fd: int | None = None
        self._wal_lock = threading.Lock()
        #: Number of transactions committed by this Store (for tests and benchmarks).
        self.commits = 0

    def close(self) -> None:
        """Close the database. Refuses inside an open batch."""
        if self._depth:
            raise RuntimeError("Store.close() inside a batch")
        self._conn.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None

    # --- transactions ----------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make everything written inside one transaction, committed once on exit.

        A nested batch joins the outer one (as a savepoint: if it raises, only its
        own writes are undone). If the outermost batch raises, nothing in it is
        kept, database rows and event lines alike.
        """
        if self._depth == 0:
            with self._transaction():
                yield
            return
        name = f"plait_{self._depth}"
        undo = self._savepoint()
        self._conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            undo()
            raise
        else:
            self._conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Join the open transaction, or open one and commit (or roll back) at the end."""
        if self._depth:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self.commit()
        if self._deferred:
            self.sync_wal()  # a commit on its own is durable when it returns, as always

    def begin(self) -> None:
        """Open a transaction: every write joins it until `commit()`."""
        if self._depth:
            raise RuntimeError("Store.begin() inside a transaction")
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1

    def commit(self) -> None:
        """Commit the transaction `begin()` opened and mirror its events to the files.

        Durable when it returns, unless `defer_sync(True)`: then after `sync_wal()`.
        If the commit fails, everything in the transaction is rolled back.
        """
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._depth = 0
        self.commits += 1
        self._committed()

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        self._rolled_back()
        self._depth = 0

    # --- durability ------------------------------------------------------------------

    def defer_sync(self, deferred: bool) -> None:
        """Commit without waiting for the disk (``synchronous = NORMAL``), or not (FULL).

        Deferred, a commit is durable once `sync_wal()` has returned after it: the
        run's journal commits on the loop and fsyncs on a thread. Commits that are
        not the journal's are still synced before they return.
        """
        self._conn.execute(f"PRAGMA synchronous = {'NORMAL' if deferred else 'FULL'}")
        self._deferred = deferred

    def sync_wal(self) -> None:
        """Sync the write-ahead log: every commit made before the call is on disk after.

        Safe from any thread (it never touches the connection). The first call also
        syncs the folder, which holds the log's directory entry (a new log each run).
        """
        with self._wal_lock:
            wal = self.home / WAL_FILE
            if self._wal_fd is not None and os.fstat(self._wal_fd).st_ino != _inode(wal):
                os.close(self._wal_fd)  # the log was replaced since: sync the new one
                self._wal_fd = None
            if self._wal_fd is None:
                try:
                    self._wal_fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    return  # no log: every commit is in the database file, synced by SQLite
                dir_fd = os.open(self.home, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            os.fdatasync(self._wal_fd)  # as SQLite syncs it: data and size

    # --- statements ------------------------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one write statement in the open batch, or committed on its own; rowcount."""
        if self._depth:  # the common case inside a scheduler step: no context manager
            return self._exec(sql, params).rowcount
        with self._transaction():
            return self._exec(sql, params).rowcount

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except UnicodeEncodeError:
            # Agent output decoded with surrogateescape cannot be stored as UTF-8
            # text; keep the rest of the text rather than lose the transition.
            return self._conn.execute(sql, [schema.clean_text(p) for p in params])

    # --- what a transaction holds besides rows (overridden by plait.storeevents) -----

    def _committed(self) -> None:
        """Called after each commit."""

    def _rolled_back(self) -> None:
        """Called after the whole transaction was rolled back."""

    def _savepoint(self) -> Callable[[], None]:
        """Called as a nested batch starts: what undoes it, after a rollback to it."""
        return _nothing
