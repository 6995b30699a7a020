"""The one-run-per-repository lock.

The lock is an ``flock`` on ``<home>/run.lock``. The kernel drops an flock when
the last descriptor of its open file goes away, so a holder killed with SIGKILL
frees the lock without anyone cleaning up. The file's body is JSON naming the
holder (pid, run id, host, start time), so the next ``plait run`` can say who
holds it.

One case survives the kernel's help: a descriptor inherited by a forked child
that outlives plait keeps the flock held although the pid in the body is gone.
Then the body's pid is checked on this host; if it is dead, the file is unlinked
(the orphan keeps its lock on an inode nobody opens again) and a fresh file is
locked. Every step runs under a short-lived guard flock on a second file, so two
processes can never both decide to break the same lock, and nobody reads a body
that is half written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from plait.errors import LockedError

LOCK_FILE = "run.lock"
GUARD_FILE = "run.lock.guard"


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run lock, as written in the lock file."""

    pid: int
    run_id: str | None
    host: str | None
    started_at: float | None


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists on this host (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()
    return not (state and state[0] in ("Z", "X"))


class RunLock:
    """One run per repository at a time.

    Use as ``with RunLock(home) as lock: lock.acquire(run_id)``; leaving the block
    releases it. The descriptor is not inherited by agents (Python opens it
    close-on-exec), so an escaped agent can never keep a dead run's lock.
    """

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self, run_id: str) -> None:
        """Take the lock for `run_id`, or raise LockedError naming the live holder.

        A dead holder's lock is taken over without manual steps: either the
        kernel has already freed its flock, or its pid is gone from this host.
        """
        if self._fd is not None:
            raise RuntimeError("this RunLock is already held")
        self.home.mkdir(parents=True, exist_ok=True)
        with self._guard():
            fd = self._try_lock()
            if fd is None:
                holder = self._read_body(self.path)
                if holder is not None and _dead_here(holder):
                    # The flock is kept only by an orphaned descriptor: break it.
                    self.path.unlink(missing_ok=True)
                    fd = self._try_lock()
                if fd is None:
                    if holder is None:
                        raise LockedError(0, None)
                    raise LockedError(holder.pid, holder.run_id, holder.host)
            body = {
                "pid": os.getpid(),
                "run_id": run_id,
                "host": socket.gethostname(),
                "started_at": time.time(),
            }
            data = json.dumps(body).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            self._fd = fd

    def release(self) -> None:
        """Let go of the lock (a no-op if not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with self._guard():
            # Empty the body first so nobody reports a holder that has left.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing drops the flock

    def holder(self) -> LockHolder | None:
        """The live holder of this repository's lock, or None if it is free."""
        if not self.path.exists():
            return None
        with self._guard():
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                return None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = self._read_body(self.path)
                    if holder is not None and _dead_here(holder):
                        return None
                    return holder or LockHolder(0, None, None, None)
                return None
            finally:
                os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # --- internals -------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise lock operations between processes; held for microseconds."""
        fd = os.open(self.home / GUARD_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _try_lock(self) -> int | None:
        """Open the lock file and flock it without waiting; None if it is held."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _read_body(path: Path) -> LockHolder | None:
        try:
            raw = json.loads(path.read_bytes() or b"null")
        except (OSError, ValueError):
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("pid"), int):
            return None
        run_id = raw.get("run_id")
        host = raw.get("host")
        started = raw.get("started_at")
        return LockHolder(
            pid=raw["pid"],
            run_id=run_id if isinstance(run_id, str) else None,
            host=host if isinstance(host, str) else None,
            started_at=float(started) if isinstance(started, int | float) else None,
        )


def _dead_here(holder: LockHolder) -> bool:
    """True only when we can be sure: the holder ran on this host and is gone."""
    return holder.host == socket.gethostname() and not pid_alive(holder.pid)
