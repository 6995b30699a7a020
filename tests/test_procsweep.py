"""plait.procsweep: escapees found among the pids allocated since the program, or in /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from plait import procsweep

PY = sys.executable
ESCAPE = """
import os, sys, threading, time
if os.fork() == 0:
    os.setsid()
    for _ in range(3):  # threads have pids of their own: still one process to kill
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(60)
"""


def start_escapee(tmp_path: os.PathLike[str], marker: str) -> tuple[int, int]:
    """A program that leaves a marked, threaded grandchild in its own session; both pids."""
    pid_file = os.path.join(tmp_path, f"{uuid.uuid4().hex}.pid")
    env = {**os.environ, procsweep.MARKER_VAR: marker}
    program = subprocess.Popen([PY, "-c", ESCAPE, pid_file], env=env, start_new_session=True)
    program.wait(timeout=30)
    deadline = time.monotonic() + 10
    while not (text := read(pid_file)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)  # its threads started
    return program.pid, int(text)


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


@pytest.mark.parametrize("probe_max", [512, 0], ids=["probing new pids", "listing /proc"])
def test_sweep_kills_the_escapee_once(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch, probe_max: int
) -> None:
    monkeypatch.setattr(procsweep, "_PROBE_MAX", probe_max)
    marker = f"test/{uuid.uuid4().hex}/1"
    program, escapee = start_escapee(tmp_path, marker)
    try:
        assert procsweep.sweep(marker, program) == 1  # its threads not counted apart
        assert gone(escapee)
    finally:
        if alive(escapee):
            os.kill(escapee, 9)


def test_sweep_spares_other_markers_and_running_programs(tmp_path: os.PathLike[str]) -> None:
    marker = f"test/{uuid.uuid4().hex}/1"
    other = f"test/{uuid.uuid4().hex}/1"
    program, escapee = start_escapee(tmp_path, other)
    env = {**os.environ, procsweep.MARKER_VAR: marker}
    leader = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], env=env)
    procsweep.leaders.add(leader.pid)
    try:
        # The leader carries the marker but is a running program of plait's own.
        assert procsweep.sweep(marker, program) == 0
        assert alive(escapee) and leader.poll() is None
        assert procsweep.kill_marked(marker) == 1  # outside a sweep, it is fair game
        assert leader.wait(timeout=10) == -9
    finally:
        procsweep.leaders.discard(leader.pid)
        leader.kill()
        leader.wait()
        os.kill(escapee, 9)


def test_nothing_is_read_when_the_program_was_the_last_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(procsweep, "_last_pid", lambda: 4242)
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: object, **kwargs: object) -> int:
        opened.append(path)
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    assert procsweep.sweep("test/x/1", 4242) == 0
    assert opened == []


def test_end_runs_kills_what_the_runs_left_and_spares_other_runs(
    tmp_path: os.PathLike[str],
) -> None:
    """What a killed plait left, of two runs, in one call; another run's are not touched."""
    first, second, other = (f"test{uuid.uuid4().hex}" for _ in range(3))
    doomed = [start_escapee(tmp_path, f"{run}/task/1")[1] for run in (first, second)]
    # a prefix of a run id is another run: `<run>/` is matched, never `<run>` alone
    spared = [
        start_escapee(tmp_path, f"{other}/task/1")[1],
        start_escapee(tmp_path, f"{first}x/task/1")[1],
    ]
    try:
        assert procsweep.end_runs([first, second, ""]) == 2
        assert all(gone(pid) for pid in doomed)
        assert all(alive(pid) for pid in spared)
        assert procsweep.end_runs([first, second]) == 0  # nothing left to end
        assert procsweep.end_runs([]) == 0
    finally:
        for pid in doomed + spared:
            if alive(pid):
                os.kill(pid, 9)
