"""plait.journal: writes at once, commits on sync, one fsync for what piled up meanwhile."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.journal import Journal
from plait.statehome import DB_FILE
from plait.store import Store

TASKS = [f"t{i}" for i in range(40)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "home") as s:
        s.create_run(
            "r1",
            plan_name="p",
            plan_path=None,
            plan_json="{}",
            base=None,
            branch=None,
            jobs=8,
            started_at=1.0,
            task_ids=TASKS,
        )
        yield s


def other_connection_statuses(store: Store) -> dict[str, str]:
    """What another process would read now."""
    conn = sqlite3.connect(store.home / DB_FILE)
    try:
        rows = conn.execute("SELECT task_id, status FROM tasks WHERE run_id = 'r1'").fetchall()
    finally:
        conn.close()
    return {str(t): str(s) for t, s in rows}


def write_running(journal: Journal, store: Store, task: str) -> None:
    """Journal one transition: `task` is running (committed by the next sync)."""
    journal.write(lambda: store.update_task("r1", task, status="running"))


class FsyncLog:
    """Wraps Store.sync_wal: records how many commits each fsync covered, can fail or stall."""

    def __init__(self, store: Store, delay_s: float = 0.0) -> None:
        self.store, self.delay_s = store, delay_s
        self.covered: list[int] = []
        self.fail_next = False
        self._real = store.sync_wal
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            commits = self.store.commits
            if self.fail_next:
                self.fail_next = False
                raise OSError(5, "Input/output error")
        time.sleep(self.delay_s)
        self._real()
        self.covered.append(commits)


def test_sync_waits_for_an_fsync_started_after_its_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = FsyncLog(store, delay_s=0.02)
    monkeypatch.setattr(store, "sync_wal", fsyncs)
    journal = Journal(store)
    returned: list[tuple[str, int]] = []

    async def task(name: str) -> None:
        await asyncio.sleep(0.001 * (int(name[1:]) % 7))
        write_running(journal, store, name)
        await journal.sync()
        committed_before = store.commits
        returned.append((name, committed_before))

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for name in TASKS:
                group.create_task(task(name))

    asyncio.run(main())
    journal.close()
    assert len(returned) == len(TASKS)
    # One fsync for many commits: they piled up while one was running.
    assert 1 <= len(fsyncs.covered) < len(TASKS) // 2
    assert set(other_connection_statuses(store).values()) == {"running"}
    assert store.task("r1", "t0").status == "running"


def test_writes_synced_in_the_same_turn_share_one_commit(store: Store) -> None:
    """Tasks started together record their starts in one commit, not one each."""
    journal = Journal(store)
    seen: list[str] = []

    async def task(name: str) -> None:
        write_running(journal, store, name)
        await journal.sync()
        seen.append(other_connection_statuses(store)[name])

    async def main() -> int:
        before = store.commits
        async with asyncio.TaskGroup() as group:
            for name in TASKS[:10]:
                group.create_task(task(name))
        return store.commits - before

    assert asyncio.run(main()) == 1
    journal.close()
    assert seen == ["running"] * 10  # each was committed before its sync returned


def test_a_failed_commit_reaches_every_waiter(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(store)
    real_commit = store.commit

    def failing() -> None:  # as Store.commit does when COMMIT fails: roll back, raise
        store._rollback()
        raise sqlite3.OperationalError("disk I/O error")

    async def task(name: str) -> str:
        write_running(journal, store, name)
        try:
            await journal.sync()
        except sqlite3.OperationalError as exc:
            return str(exc)
        return "synced"

    async def main() -> list[str]:
        monkeypatch.setattr(store, "commit", failing)
        return list(await asyncio.gather(task("t0"), task("t1")))

    assert asyncio.run(main()) == ["disk I/O error", "disk I/O error"]
    monkeypatch.setattr(store, "commit", real_commit)
    # Neither write was kept, and the journal goes on: the next transition commits.
    assert set(other_connection_statuses(store).values()) == {"pending"}

    async def again() -> None:
        write_running(journal, store, "t2")
        await journal.sync()

    asyncio.run(again())
    journal.close()
    assert other_connection_statuses(store)["t2"] == "running"


def test_commit_soon_commits_without_waiting_and_shares_the_turns_commit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's end is visible to other processes at once, without an fsync of its own;
    starts synced in the same turn ride on the same commit."""
    fsyncs = FsyncLog(store)
    monkeypatch.setattr(store, "sync_wal", fsyncs)
    journal = Journal(store)

    async def start(name: str) -> None:
        write_running(journal, store, name)
        await journal.sync()

    async def main() -> tuple[int, int, dict[str, str]]:
        before = store.commits
        journal.write(lambda: store.update_task("r1", "t0", status="succeeded"))
        journal.commit_soon()
        assert other_connection_statuses(store)["t0"] == "pending"  # not yet: asked for
        await asyncio.sleep(0)
        alone = store.commits - before
        seen = other_connection_statuses(store)
        # An end and the starts it made ready, in one turn: one commit for all.
        journal.write(lambda: store.update_task("r1", "t1", status="failed"))
        starts = [asyncio.create_task(start(name)) for name in ("t2", "t3")]
        journal.commit_soon()
        await asyncio.gather(*starts)
        return alone, store.commits - before - alone, seen

    alone, shared, seen = asyncio.run(main())
    assert (alone, shared) == (1, 1)
    assert seen["t0"] == "succeeded"
    assert len(fsyncs.covered) == 1  # only the starts waited for the disk
    journal.close()
    statuses = other_connection_statuses(store)
    assert [statuses[t] for t in ("t1", "t2", "t3")] == ["failed", "running", "running"]


def test_a_failed_commit_nothing_waited_for_is_raised_by_the_next_sync(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(store)
    real_commit = store.commit

    def failing() -> None:
        store._rollback()
        raise sqlite3.OperationalError("disk I/O error")

    async def main() -> None:
        monkeypatch.setattr(store, "commit", failing)
        journal.write(lambda: store.update_task("r1", "t0", status="succeeded"))
        journal.commit_soon()
        await asyncio.sleep(0)  # the commit ran and failed, nobody waiting
        monkeypatch.setattr(store, "commit", real_commit)
        write_running(journal, store, "t1")
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await journal.sync()  # the lost end must not pass unnoticed
        await journal.sync()  # once said, the journal goes on: t1's write commits

    asyncio.run(main())
    journal.close()
    assert other_connection_statuses(store)["t0"] == "pending"
    assert other_connection_statuses(store)["t1"] == "running"


def test_close_while_a_commit_is_asked_for_leaves_nothing_to_its_waiters(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "sync_wal", FsyncLog(store))
    journal = Journal(store)

    async def main() -> None:
        write_running(journal, store, "t0")
        await journal.sync()  # one fsync has run: its executor exists
        write_running(journal, store, "t1")
        waiter = asyncio.create_task(journal.sync())
        await asyncio.sleep(0)  # the commit is asked for, not made yet
        journal.close()  # commits and syncs everything itself
        await waiter  # and starts no fsync on the executor just shut down

    asyncio.run(main())
    assert other_connection_statuses(store)["t1"] == "running"
    assert not [t for t in threading.enumerate() if t.name.startswith("plait-fsync")]


def test_each_sync_is_covered_by_a_later_fsync(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = FsyncLog(store, delay_s=0.005)
    monkeypatch.setattr(store, "sync_wal", fsyncs)
    journal = Journal(store)
    checks: list[bool] = []

    async def task(name: str) -> None:
        for status in ("running", "verifying", "succeeded"):
            holder: list[int] = []

            def op(status: str = status, holder: list[int] = holder) -> None:
                store.update_task("r1", name, status=status)
                holder.append(store.commits + 1)  # the commit that will hold this write

            journal.write(op)
            await asyncio.sleep(0)  # others write and sync meanwhile
            await journal.sync()
            checks.append(any(covered >= holder[0] for covered in fsyncs.covered))

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for name in TASKS[:10]:
                group.create_task(task(name))

    asyncio.run(main())
    journal.close()
    assert len(checks) == 30 and all(checks)


@pytest.mark.timeout(30)
def test_many_quick_syncs_never_spin(store: Store) -> None:
    """An fsync that finished before its waiters ran must not make sync() loop forever."""
    journal = Journal(store)

    async def task(name: str) -> None:
        for _ in range(20):
            journal.write(lambda: store.add_event("r1", "tick", name))
            await journal.sync()

    async def main() -> None:
        async with asyncio.TaskGroup() as group:
            for name in TASKS:
                group.create_task(task(name))

    asyncio.run(main())
    journal.close()
    assert len(store.events("r1")) == 20 * len(TASKS)


def test_a_cancelled_waiter_leaves_the_fsync_to_the_others(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "sync_wal", FsyncLog(store, delay_s=0.1))
    journal = Journal(store)

    async def main() -> None:
        write_running(journal, store, "t0")
        first = asyncio.create_task(journal.sync())
        write_running(journal, store, "t1")
        second = asyncio.create_task(journal.sync())
        await asyncio.sleep(0)  # both wait for the commit, not made yet
        first.cancel()
        await second
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(main())
    journal.close()
    assert other_connection_statuses(store)["t1"] == "running"


def test_a_failed_fsync_reaches_its_waiters_and_the_next_sync_tries_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = FsyncLog(store)
    monkeypatch.setattr(store, "sync_wal", fsyncs)
    journal = Journal(store)
    before = store.commits

    async def main() -> None:
        fsyncs.fail_next = True
        write_running(journal, store, "t0")
        with pytest.raises(OSError, match="Input/output"):
            await journal.sync()
        await journal.sync()  # the commit was made; it still needs its fsync

    asyncio.run(main())
    assert fsyncs.covered == [before + 1]  # the failed one is not there
    journal.close()


def test_commits_are_unsynced_while_open_and_synced_again_after_close(store: Store) -> None:
    def level() -> int:
        return int(store._conn.execute("PRAGMA synchronous").fetchone()[0])

    assert level() == 2  # FULL
    journal = Journal(store)
    assert level() == 1  # NORMAL: the journal fsyncs the log itself
    write_running(journal, store, "t0")
    journal.close()  # commits what was open
    journal.close()  # twice is fine
    assert level() == 2
    assert other_connection_statuses(store)["t0"] == "running"
    store.update_task("r1", "t1", status="running")  # alone again: synced on return
    assert other_connection_statuses(store)["t1"] == "running"


def test_a_synced_write_survives_sigkill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code = textwrap.dedent(
        """
        import asyncio, os, signal, sys
        from pathlib import Path
        from plait.journal import Journal
        from plait.store import Store
        s = Store.open(Path(sys.argv[1]))
        s.create_run("r1", plan_name="p", plan_path=None, plan_json="{}", base=None,
                     branch=None, jobs=1, started_at=1.0, task_ids=["a", "b"])
        j = Journal(s)
        async def main():
            j.write(lambda: s.update_task("r1", "a", status="running"))
            j.write(lambda: s.add_event("r1", "attempt_started", "a"))
            await j.sync()
            j.write(lambda: s.update_task("r1", "b", status="running"))  # never synced
            os.kill(os.getpid(), signal.SIGKILL)
        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    with Store.open(home) as store:
        assert store.task("r1", "a").status == "running"
        assert store.task("r1", "b").status == "pending"
        assert [e["kind"] for e in store.events("r1")] == ["attempt_started"]
