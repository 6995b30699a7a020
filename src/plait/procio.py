"""What a running program prints: its pipes, the attempt's log, the captured output.

`plait.proc.run_process` wires a child's three pipes to these, on the running loop:

- `Watcher` is the one epoll set they all register in, itself watched by the loop;
- `PipeWriter` feeds stdin from bytes as the pipe drains, then closes it, so a huge
  prompt never deadlocks against a full stdout pipe and a child that never reads its
  stdin is fine;
- `ExitWatch` resolves a future when the child exits, leaving it unreaped;
- `PipeReader` reads one pipe until EOF and hands each chunk on;
- `Output` takes the chunks: stdout and stderr, interleaved, into the `LogFile` (capped;
  past the cap output is still read and discarded, so the child never blocks), stdout
  also captured up to its own cap for the backend to parse and handed line by line to
  `on_line`, and the tails of both kept in memory for notes;
- `LogFile` is the attempt's log: that output plus plait's own ``[plait]`` notes,
  created with its first byte.

Plain file descriptors and `os.read`/`os.write` throughout: a run of quick agents
opens thousands of these, and the buffered file objects cost more than the writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from plait.procspawn import Started

CHUNK = 65536  # one pipe buffer
TAIL_BYTES = 16384  # output kept in memory for `ProcResult.tail`
STDERR_TAIL_BYTES = 4096
LINE_MAX = 65536  # an `on_line` line longer than this is handed over in pieces
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class LogFile:
    """The attempt's log file: capped program output plus plait's `[plait]` notes.

    Unbuffered, so `plait logs` and the board see output while the agent runs. The
    file is created with the first byte written: a program that prints nothing leaves
    no log (a run of quick tasks would otherwise create thousands of empty files, each
    a creation the file system pays for), and its folder is made if missing.
    """

    def __init__(self, path: Path | str, cap: int) -> None:
        self.path = path
        self._fd: int | None = None  # not opened yet; -1 once closed or unopenable
        #: Why the file could not be created, if it could not: the output is still read
        #: (the child must never block on a full pipe), and the caller reports this.
        self.error: OSError | None = None
        self._cap = cap
        self._written = 0
        self.truncated = False
        self.tail = bytearray()
        self._last: tuple[str, bool] = ("", True)  # (stream, ended with a newline)

    def write(self, data: bytes, stream: str = "stdout") -> None:
        """Append program output (up to the cap) and keep its tail in memory.

        Chunks of stdout and stderr arrive in whatever order the pipes are read; a
        line one stream left open is closed before the other stream's chunk, so
        the two never run together on one line.
        """
        if not data:
            return
        last_stream, ended = self._last
        if not ended and last_stream != stream:
            data = b"\n" + data
        self._last = (stream, data.endswith(b"\n"))
        self.tail += data
        if len(self.tail) > 2 * TAIL_BYTES:
            del self.tail[:-TAIL_BYTES]
        if self.truncated:
            return
        room = self._cap - self._written
        if len(data) > room:
            self._write_all(data[:room])
            self._written = self._cap
            self.truncated = True
            self.note(f"log truncated at {self._cap} bytes; further output discarded")
            return
        self._write_all(data)
        self._written += len(data)

    def note(self, text: str) -> None:
        """Append one of plait's own lines (not counted against the cap)."""
        self._write_all(f"\n[plait] {text}\n".encode())

    def _write_all(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            try:
                fd = self._open()
            except OSError as exc:  # runs in a pipe callback: keep it, never raise there
                self.error, fd = exc, -1
            self._fd = fd
        if fd < 0:  # closed, or could not be created: dropped
            return
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def _open(self) -> int:
        try:
            return os.open(self.path, _LOG_FLAGS, 0o644)
        except FileNotFoundError:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, _LOG_FLAGS, 0o644)

    def close(self) -> None:
        """Close the file; later notes are dropped. Safe to call twice."""
        if self._fd is not None and self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


class Watcher:
    """One epoll set for the pipes and pidfds of every program running on one loop.

    The loop watches this set's descriptor only, and it dispatches what is ready:
    registering a descriptor costs one `epoll_ctl` instead of asyncio's selector
    bookkeeping (the child's exit and its two pipes, added and removed, were a tenth
    of what a quick task cost plait). Level-triggered, like the loop's own selector.
    The set is closed when nothing is watched, so no descriptor outlives its use.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll: select.epoll | None = None
        self._callbacks: dict[int, Callable[[], None]] = {}

    def watch(self, fd: int, callback: Callable[[], None], *, write: bool = False) -> None:
        """Call `callback` on the loop while `fd` is readable (writable with `write`)."""
        if self._epoll is None:
            self._epoll = select.epoll()
            self.loop.add_reader(self._epoll.fileno(), self._ready)
        self._epoll.register(fd, select.EPOLLOUT if write else select.EPOLLIN)
        self._callbacks[fd] = callback

    def unwatch(self, fd: int) -> None:
        """Stop watching `fd` (before closing it). Safe to call twice."""
        if self._callbacks.pop(fd, None) is None or self._epoll is None:
            return
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)
        if not self._callbacks:
            self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None

    def _ready(self) -> None:
        if self._epoll is None:
            return
        for fd, _ in self._epoll.poll(0):
            # Only run_process adds entries, never a callback: a descriptor closed by an
            # earlier callback of this batch is gone from the table, not someone else's.
            callback = self._callbacks.get(fd)
            if callback is not None:
                callback()


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watcher] = (
    weakref.WeakKeyDictionary()
)


def watcher(loop: asyncio.AbstractEventLoop) -> Watcher:
    """The loop's `Watcher`."""
    found = _watchers.get(loop)
    if found is None:
        found = _watchers[loop] = Watcher(loop)
    return found


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wait_without_reaping(
    loop: asyncio.AbstractEventLoop, proc: Started, exited: asyncio.Future[None]
) -> None:
    """Thread body for kernels without pidfd: wait for the exit, leave the zombie."""
    try:
        if hasattr(os, "waitid"):
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        else:
            proc.wait()  # reaps: the group kill afterwards is best effort only
    except ChildProcessError:
        pass
    with contextlib.suppress(RuntimeError):  # the loop is already closed
        loop.call_soon_threadsafe(_set_done, exited)


class ExitWatch:
    """`exited` is done once the child has exited; the child is left for its owner to reap.

    Through a pidfd on the loop (Linux >= 5.3): no thread, no global child-watcher
    policy. The pidfd fires while the child is still an unreaped zombie, so its
    process-group id cannot have been reused when the owner kills the group. Without
    pidfd, one thread per child waits with `waitid(WNOWAIT)` instead.
    """

    def __init__(self, watch: Watcher, proc: Started) -> None:
        self._watch = watch
        self.exited: asyncio.Future[None] = watch.loop.create_future()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            waiter = threading.Thread(
                target=_wait_without_reaping, args=(watch.loop, proc, self.exited), daemon=True
            )
            waiter.start()
            return
        try:
            watch.watch(self._pidfd, self._on_exit)
        except BaseException:
            os.close(self._pidfd)
            self._pidfd = None
            raise

    def _on_exit(self) -> None:
        # A pidfd stays readable once the process exited: stop watching at once.
        if self._pidfd is not None:
            self._watch.unwatch(self._pidfd)
        _set_done(self.exited)

    def close(self) -> None:
        """Stop watching (call once the child is reaped). Safe to call twice."""
        if self._pidfd is not None:
            self._watch.unwatch(self._pidfd)  # no-op if _on_exit already did
            os.close(self._pidfd)
            self._pidfd = None


class PipeReader:
    """Reads one pipe on the loop until EOF, handing each chunk to `sink`."""

    def __init__(self, watch: Watcher, fd: int, sink: Callable[[bytes], None]) -> None:
        self._watch, self._fd, self._sink = watch, fd, sink
        self.eof: asyncio.Future[None] = watch.loop.create_future()
        watch.watch(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._sink(data)
        else:
            self.close()

    def close(self) -> None:
        """Stop reading and close the pipe (at EOF, or when giving up on it)."""
        if self._fd >= 0:
            self._watch.unwatch(self._fd)
            os.close(self._fd)
            self._fd = -1
        if not self.eof.done():
            self.eof.set_result(None)


class PipeWriter:
    """Feeds `data` into the child's stdin as the pipe drains, then closes it."""

    def __init__(self, watch: Watcher, fd: int, data: bytes) -> None:
        self._watch, self._fd = watch, fd
        self._data = memoryview(data)
        self._pos = 0
        self._writable()  # most prompts fit in the pipe buffer at once
        if self._fd >= 0:
            watch.watch(fd, self._writable, write=True)

    def _writable(self) -> None:
        try:
            while self._pos < len(self._data):
                self._pos += os.write(self._fd, self._data[self._pos : self._pos + CHUNK])
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the child exited or closed stdin without reading it all
            pass
        self.close()

    def close(self) -> None:
        """Stop feeding and close the pipe. Safe to call twice."""
        if self._fd >= 0:
            self._watch.unwatch(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._data.release()


class Output:
    """Where a child's stdout and stderr chunks go: the log, the capture, the lines."""

    def __init__(
        self,
        log: LogFile,
        stdout_cap: int,
        on_line: Callable[[str], None] | None,
        on_stderr_line: Callable[[str], None] | None = None,
    ) -> None:
        self.log = log
        self.stdout = bytearray()
        self.stdout_truncated = False
        self.stderr_tail = bytearray()
        self._stdout_cap = stdout_cap
        self._out_lines = _Lines(on_line, log) if on_line is not None else None
        self._err_lines = _Lines(on_stderr_line, log) if on_stderr_line is not None else None

    def stdout_data(self, data: bytes) -> None:
        """A chunk of stdout: logged, captured up to the cap, split into lines."""
        self.log.write(data)
        room = self._stdout_cap - len(self.stdout)
        if len(data) > room:
            self.stdout_truncated = True
        if room > 0:
            self.stdout += data[:room]
        if self._out_lines is not None:
            self._out_lines.feed(data)

    def stderr_data(self, data: bytes) -> None:
        """A chunk of stderr: logged, its tail kept for `last_line`, split into lines."""
        self.log.write(data, "stderr")
        self.stderr_tail += data
        del self.stderr_tail[:-STDERR_TAIL_BYTES]
        if self._err_lines is not None:
            self._err_lines.feed(data)

    def end_lines(self) -> None:
        """Hand over the last lines even without their newline (call once, at EOF)."""
        for lines in (self._out_lines, self._err_lines):
            if lines is not None:
                lines.feed(b"", final=True)


class _Lines:
    """One stream's chunks, split into lines for a callback (which may not fail the agent)."""

    def __init__(self, callback: Callable[[str], None], log: LogFile) -> None:
        self._callback: Callable[[str], None] | None = callback
        self._log = log
        self._partial = b""

    def feed(self, data: bytes, final: bool = False) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        while len(self._partial) > LINE_MAX:  # a flood without newlines
            lines.append(self._partial[:LINE_MAX])
            self._partial = self._partial[LINE_MAX:]
        for line in lines:
            if self._callback is None:
                return
            try:
                self._callback(line.decode("utf-8", "replace").rstrip("\r"))
            except Exception as exc:  # a broken observer must not break the agent
                self._log.note(f"on_line callback failed, no more lines sent: {exc!r}")
                self._callback = None
