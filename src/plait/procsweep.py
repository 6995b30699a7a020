"""Processes that left their group: found by the marker in their environment, killed.

`run_process` gives each program `PLAIT_MARKER=<run>/<task>/<attempt>`. A program's
descendants inherit it even when they leave its process group (`setsid`), so when
the program ends, what still carries its marker escaped and is killed. What a killed plait
left behind (its agents, in groups of their own, and their escapees) is ended by
`end_runs`: by `plait clean`, and by `plait run` and `plait resume` once they hold
the run lock, for every run that never recorded its end.

Only processes younger than the program can be its descendants: the kernel's last
allocated pid bounds them, so a quick program costs a few failed opens of
/proc/<pid>/environ instead of reading every process's environment (~0.5 ms for 100
processes), and nothing at all when it was the last process created.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

#: The variable `run_process` sets to its `marker`, to find processes that escaped.
MARKER_VAR = "PLAIT_MARKER"

_ENVIRON_READ = 32768  # one read() takes a whole /proc/<pid>/environ, nearly always
_PROBE_MAX = 512  # pids allocated since a program beyond which /proc is listed instead
_SWEEP_ROUNDS = 5
#: Programs `run_process` started and has not reaped yet: never an escapee of another.
leaders: set[int] = set()


def sweep(marker: str, pid: int) -> int:
    """After program `pid` ended and its group was killed: kill the processes that
    carry its `marker`, again while new ones appear; how many there were."""
    needle = f"\0{MARKER_VAR}={marker}\0".encode()
    seen: set[int] = set()
    for _ in range(_SWEEP_ROUNDS):  # again, in case one forked while being killed
        new = _kill_marked((needle,), signal.SIGKILL, pid, born_after=pid) - seen
        if not new:
            break
        seen |= new
    return len(seen)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _last_pid() -> int | None:
    """The kernel's last allocated pid (in our pid namespace), None if unreadable.

    The file stays open: a `pread` costs a fraction of an open-read-close, and it
    is read at the end of every program plait runs.
    """
    global _last_pid_fd
    if _last_pid_fd is None:
        try:
            _last_pid_fd = os.open("/proc/sys/kernel/ns_last_pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            _last_pid_fd = -1
    if _last_pid_fd < 0:
        return None
    try:
        return int(os.pread(_last_pid_fd, 32, 0))
    except (OSError, ValueError):
        return None


_last_pid_fd: int | None = None


def _candidates(born_after: int | None) -> Iterable[int]:
    """The pids that may carry a marker set in a child with pid `born_after`.

    Its descendants are younger than it: only pids allocated since can carry the
    marker. Those few are probed directly (a missing /proc/<pid> costs one failed
    open); when many were allocated, or the pids wrapped around, /proc is listed and
    filtered instead. Without `born_after` (or ns_last_pid), every process is a
    candidate.
    """
    last = _last_pid() if born_after is not None else None
    if born_after is not None and last is not None:
        if last == born_after:
            return ()  # the child was the last process created: it started nothing
        if born_after < last <= born_after + _PROBE_MAX:
            return range(born_after + 1, last + 1)
    try:
        names = os.listdir("/proc")
    except OSError:
        return ()
    pids = [int(name) for name in names if name.isdigit()]
    if born_after is None or last is None:
        return pids
    if last > born_after:
        return [pid for pid in pids if born_after < pid <= last]
    return [pid for pid in pids if pid > born_after or pid <= last]  # wrapped around


def _thread_group(pid: int) -> int:
    """The process a thread id belongs to (probing finds threads' ids too)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pid


def _kill_marked(
    needles: tuple[bytes, ...], sig: int, exclude_pgid: int | None, born_after: int | None = None
) -> set[int]:
    """Signal processes whose environment holds one of `needles`; see `_candidates`."""
    me = os.getpid()
    killed: set[int] = set()
    # In a sweep after one program, the others plait runs are not its escapees.
    spared = leaders if born_after is not None else ()
    for candidate in _candidates(born_after):
        if candidate == me or candidate in spared:
            continue
        try:
            fd = os.open(f"/proc/{candidate}/environ", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # gone, or another user's
            continue
        try:
            data = b"\0" + os.read(fd, _ENVIRON_READ)
            while len(data) > _ENVIRON_READ and (more := os.read(fd, _ENVIRON_READ)):
                data += more  # a rare environment larger than one read
        except OSError:
            continue
        finally:
            os.close(fd)
        if not any(needle in data for needle in needles):
            continue
        pid = _thread_group(candidate) if born_after is not None else candidate
        if pid in killed or pid == me:
            continue
        if exclude_pgid is not None and _pgid(pid) == exclude_pgid:
            continue  # a member of the group that was just killed, still dying
        try:
            os.kill(pid, sig)
        except OSError:
            continue
        killed.add(pid)
    return killed


def kill_marked(
    marker: str,
    sig: int = signal.SIGKILL,
    *,
    prefix: bool = False,
    exclude_pgid: int | None = None,
) -> int:
    """Send `sig` to every process whose environment holds `PLAIT_MARKER=<marker>`.

    With `prefix`, any marker starting with `marker` matches: ``kill_marked(f"{run}/",
    prefix=True)`` ends whatever a run killed with SIGKILL left behind (for resume).
    Scans `/proc/*/environ` (Linux; elsewhere finds nothing). Never signals plait
    itself, nor members of process group `exclude_pgid`. Returns how many were signalled.
    """
    needle = f"\0{MARKER_VAR}={marker}" + ("" if prefix else "\0")
    return len(_kill_marked((needle.encode(),), sig, exclude_pgid))


def end_runs(run_ids: Iterable[str]) -> int:
    """Kill every process left by these runs, whose plait is gone; how many there were.

    A plait killed with SIGKILL cannot end its agents: each runs in its own process
    group (and what they started may have left even that), so they live on, spending
    money, after their worktrees are gone. Everything plait started for a run carries
    `PLAIT_MARKER=<run>/...`. One scan of /proc serves all the runs, repeated while new
    ones appear (a process that forked while the scan went by). Call it only for runs
    no live plait is driving: under the repository's run lock.
    """
    needles = tuple(f"\0{MARKER_VAR}={run}/".encode() for run in run_ids if run)
    if not needles:
        return 0
    seen: set[int] = set()
    for _ in range(_SWEEP_ROUNDS):
        new = _kill_marked(needles, signal.SIGKILL, None) - seen
        if not new:
            break
        seen |= new
    return len(seen)
