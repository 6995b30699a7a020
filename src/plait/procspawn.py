"""Starting a program: `os.posix_spawn` when it can, `subprocess.Popen` otherwise.

Both give the child its own session and process group (`setsid`), the three given
file descriptors as stdin/stdout/stderr, SIGPIPE and SIGXFSZ back at their defaults,
and nothing else open; neither goes through a shell. `Popen` handles every case;
`posix_spawn` skips its Python-level work (about a third of what starting a quick
program costs plait) but has no working-directory argument on Python 3.11, so it is
used only when the child runs in plait's own directory (a run with `isolation: none`
started from its root, and every git command: `git -C` names its directory).
Descriptors plait inherited open are closed in the child on both paths. Every failure
to start, on either path, gives the errors `Popen` gives: the fast path falls back to
it rather than guess at messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol


class SpawnError(OSError):
    """The program could not be started (bad cwd, not executable, exec format error).

    Backends catch this (or any OSError) and report the attempt as ERRORED.
    """


class ProgramNotFound(SpawnError):
    """argv[0] does not exist, or is not executable."""


class Started(Protocol):
    """A started program, as `subprocess.Popen` offers it."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


#: The exit code of a program whose status someone else collected: not a success.
STATUS_LOST = 255


class Spawned:
    """A program started with `posix_spawn`: waited for like a `Popen`."""

    def __init__(self, pid: int, argv: list[str]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._argv = argv

    def wait(self, timeout: float | None = None) -> int:
        """Reap the program and return its code (negative: the signal that ended it)."""
        if self.returncode is not None:
            return self.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                pid, status = os.waitpid(self.pid, 0 if deadline is None else os.WNOHANG)
            except ChildProcessError:
                # Reaped by someone else (a host program that reaps every child): its
                # status is lost. Popen calls that a success; a git command or agent
                # whose failure read as success would lose work, so it is a failure.
                self.returncode = STATUS_LOST
                return STATUS_LOST
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                return self.returncode
            assert deadline is not None
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(self._argv, timeout or 0.0)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)


_RESET_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name)
)
_found: dict[tuple[str, str], str] = {}  # (program, PATH) -> the executable it names
_inherited: tuple[int, ...] | None = None  # see _inherited_fds()


def _executable(program: str, env: Mapping[str, str]) -> str | None:
    """The file `program` names, searched on the child's PATH as Popen does; None if
    there is none (Popen then reports it)."""
    if "/" in program:
        return program
    path = env.get("PATH", os.defpath)
    key = (program, path)
    found = _found.get(key)
    if found is None:
        for folder in path.split(os.pathsep):
            candidate = os.path.join(folder or ".", program)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                found = _found[key] = candidate
                break
    return found


def _inherited_fds() -> tuple[int, ...] | None:
    """Descriptors above 2 that a child would inherit, to close in it; None if unknown.

    posix_spawn cannot close descriptors the way `close_fds` does, and every one plait
    opens is close-on-exec (PEP 446); what is left is what plait itself inherited open
    (a jobserver pipe, a terminal's spare descriptor). Listed once: plait opens no
    inheritable descriptor later. One of these closed meanwhile is harmless: glibc
    ignores closing a descriptor that is not open, and if a libc refuses, the spawn
    falls back to Popen.
    """
    global _inherited
    if _inherited is None:
        try:
            names = os.listdir("/proc/self/fd")
        except OSError:
            return None
        fds = []
        for fd in map(int, names):
            if fd > 2:
                try:
                    if os.get_inheritable(fd):
                        fds.append(fd)
                except OSError:  # the listing's own descriptor, closed since
                    continue
        _inherited = tuple(fds)
    return _inherited


def _fast(
    argv: list[str], cwd: Path | None, env: Mapping[str, str], fds: tuple[int, int, int]
) -> Spawned | None:
    """posix_spawn when it behaves exactly as Popen would; None when it cannot."""
    if not hasattr(os, "posix_spawn") or any(0 <= fd <= 2 for fd in fds):
        return None  # dup2 onto itself would leave the descriptor close-on-exec
    inherited = _inherited_fds()
    if inherited is None or (cwd is not None and os.fspath(cwd) != os.getcwd()):
        return None
    program = _executable(argv[0], env)
    if program is None:
        return None
    stdin_fd, out_fd, err_fd = fds
    actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        if stdin_fd == subprocess.DEVNULL
        else (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
        (os.POSIX_SPAWN_DUP2, out_fd, 1),
        (os.POSIX_SPAWN_DUP2, err_fd, 2),
        *((os.POSIX_SPAWN_CLOSE, fd) for fd in inherited),
    ]
    try:
        pid = os.posix_spawn(
            program, argv, env, file_actions=actions, setsid=True, setsigdef=_RESET_SIGNALS
        )
    except OSError:
        _found.pop((argv[0], env.get("PATH", os.defpath)), None)
        return None  # Popen tries again and reports the failure in its own words
    return Spawned(pid, argv)


def _keep_exit_codes() -> None:
    """Undo a SIGCHLD ignored by whoever started plait (it is inherited across exec).

    With it ignored the kernel reaps every child itself, and each wait ends in ECHILD,
    read as exit 0: a failed git command would look like a success. Only the main
    thread may set a handler; elsewhere the setting is left as it is.
    """
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def spawn(
    argv: list[str],
    cwd: Path | None,
    env: Mapping[str, str],
    stdin_fd: int,
    out_fd: int,
    err_fd: int,
) -> Started:
    """Start `argv` in `cwd` (None: plait's own directory) with exactly `env`, in a new
    session; `stdin_fd` may be `subprocess.DEVNULL`. Raises `ProgramNotFound` or
    `SpawnError`."""
    _keep_exit_codes()
    started = _fast(argv, cwd, env, (stdin_fd, out_fd, err_fd))
    if started is not None:
        return started
    try:
        return subprocess.Popen(  # noqa: S603 - an argv list, never a shell
            argv,
            cwd=cwd,
            env=env,
            stdin=stdin_fd,
            stdout=out_fd,
            stderr=err_fd,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        # Popen names the cwd in the error when chdir failed, else the program.
        if (
            cwd is not None
            and exc.filename is not None
            and os.fspath(exc.filename) == os.fspath(cwd)
        ):
            raise SpawnError(f"cannot start {argv[0]!r} in {cwd}: {exc.strerror}") from exc
        if isinstance(exc, FileNotFoundError | PermissionError | NotADirectoryError):
            raise ProgramNotFound(
                f"program {argv[0]!r} not found or not executable ({exc.strerror})"
            ) from exc
        raise SpawnError(f"cannot start {argv[0]!r}: {exc}") from exc
