"""The one-run-per-repository lock: live holders refuse, dead holders are taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.errors import LockedError
from plait.runlock import RunLock, pid_alive


class Child:
    """A python child process that runs `code` and reports its progress on stdout."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def line(self) -> str:
        assert self.proc.stdout is not None
        got = self.proc.stdout.readline().strip()
        assert got, self.proc.stderr.read() if self.proc.stderr else "child said nothing"
        return got

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


HOLDER = """
    import sys, time
    from pathlib import Path
    from plait.runlock import RunLock
    lock = RunLock(Path(sys.argv[1]))
    lock.acquire(sys.argv[2])
    print("locked", flush=True)
    time.sleep(120)
"""


def test_acquire_release_and_context_manager(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with RunLock(home) as lock:
        assert lock.holder() is None
        lock.acquire("r1")
        assert lock.held
        body = json.loads((home / "run.lock").read_text())
        assert body["pid"] == os.getpid() and body["run_id"] == "r1"
        assert body["host"] == socket.gethostname() and body["started_at"] > 0
        holder = RunLock(home).holder()
        assert holder is not None and (holder.pid, holder.run_id) == (os.getpid(), "r1")
        # A second lock object, even in the same process, is refused.
        with pytest.raises(LockedError) as refused:
            RunLock(home).acquire("r2")
        assert refused.value.pid == os.getpid() and refused.value.run_id == "r1"
        assert refused.value.exit_code == 3
        with pytest.raises(RuntimeError):
            lock.acquire("again")
    assert not lock.held
    assert RunLock(home).holder() is None
    with RunLock(home) as other:
        other.acquire("r2")
    lock.release()  # releasing twice is harmless


def test_live_holder_refuses_then_sigkill_frees_it(tmp_path: Path, children: list[Child]) -> None:
    home = tmp_path / "home"
    child = Child(HOLDER, str(home), "run-held")
    children.append(child)
    assert child.line() == "locked"

    lock = RunLock(home)
    with pytest.raises(LockedError) as refused:
        lock.acquire("mine")
    assert refused.value.pid == child.proc.pid and refused.value.run_id == "run-held"
    assert f"process {child.proc.pid}" in str(refused.value) and "run-held" in str(refused.value)
    holder = lock.holder()
    assert holder is not None
    assert (holder.pid, holder.run_id, holder.host) == (
        child.proc.pid,
        "run-held",
        socket.gethostname(),
    )

    child.kill()  # kill -9: nobody cleans up, the kernel drops the flock
    lock.acquire("mine")
    assert json.loads((home / "run.lock").read_text())["run_id"] == "mine"
    lock.release()


def test_an_escaped_grandchild_does_not_keep_the_lock(
    tmp_path: Path, children: list[Child]
) -> None:
    home = tmp_path / "home"
    code = """
        import subprocess, sys, time
        from pathlib import Path
        from plait.runlock import RunLock
        lock = RunLock(Path(sys.argv[1]))
        lock.acquire("r1")
        agent = subprocess.Popen(["sleep", "120"], start_new_session=True)
        print(agent.pid, flush=True)
        time.sleep(120)
    """
    child = Child(code, str(home))
    children.append(child)
    grandchild = int(child.line())
    try:
        child.kill()
        assert pid_alive(grandchild)
        with RunLock(home) as lock:
            lock.acquire("r2")
    finally:
        os.kill(grandchild, signal.SIGKILL)


def test_orphaned_flock_of_a_dead_pid_is_taken_over(tmp_path: Path, children: list[Child]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    # A process still holds the flock (as a forked child would), but the pid in
    # the body is dead on this host.
    code = """
        import fcntl, json, os, socket, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": int(sys.argv[2]), "run_id": "old",
                                 "host": socket.gethostname(), "started_at": 1.0}).encode())
        print("locked", flush=True)
        time.sleep(120)
    """
    child = Child(code, str(home / "run.lock"), str(gone.pid))
    children.append(child)
    assert child.line() == "locked"
    assert RunLock(home).holder() is None  # a dead holder is no holder
    with RunLock(home) as lock:
        lock.acquire("new")
        holder = RunLock(home).holder()
        assert holder is not None and (holder.pid, holder.run_id) == (os.getpid(), "new")
        with pytest.raises(LockedError):
            RunLock(home).acquire("third")


def test_a_holder_on_another_host_is_never_broken(tmp_path: Path, children: list[Child]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code = """
        import fcntl, json, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": 999999999, "run_id": "far", "host": "elsewhere"}).encode())
        print("locked", flush=True)
        time.sleep(120)
    """
    child = Child(code, str(home / "run.lock"))
    children.append(child)
    assert child.line() == "locked"
    with pytest.raises(LockedError) as refused:
        RunLock(home).acquire("mine")
    assert (refused.value.pid, refused.value.run_id, refused.value.host) == (
        999999999,
        "far",
        "elsewhere",
    )
    assert "elsewhere" in str(refused.value)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-5)
    zombie = subprocess.Popen(["true"])
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
    assert not pid_alive(zombie.pid)
    zombie.wait()
    assert not pid_alive(zombie.pid)
