"""plait.procspawn: the posix_spawn fast path behaves as Popen does, or is not taken."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from plait import proc, procspawn

PY = sys.executable


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path, the fast path's case (the child runs in plait's directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(procspawn, "_inherited", None)
    return Path(os.getcwd())


def run(argv: list[str], cwd: Path, **kwargs: object) -> proc.ProcResult:
    kwargs.setdefault("stdin", None)
    kwargs.setdefault("env", proc.child_env({"PLAIT_TASK_ID": "t"}))
    kwargs.setdefault("log_path", cwd / "agent.log")
    return asyncio.run(proc.run_process(argv, cwd=cwd, **kwargs))  # type: ignore[arg-type]


def spawned_by(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which path started each program."""
    used: list[str] = []
    fast = procspawn._fast

    def recording(*args: object) -> procspawn.Spawned | None:
        started = fast(*args)  # type: ignore[arg-type]
        used.append("posix_spawn" if started is not None else "popen")
        return started

    monkeypatch.setattr(procspawn, "_fast", recording)
    return used


def test_fast_path_is_taken_in_plaits_own_directory(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = spawned_by(monkeypatch)
    res = run(["true"], here, stdin=b"ignored")
    assert res.returncode == 0
    elsewhere = here / "sub"
    elsewhere.mkdir()
    run(["true"], elsewhere)
    assert used == ["posix_spawn", "popen"]


def test_fast_path_child_gets_exactly_the_environment_stdin_and_a_session(here: Path) -> None:
    script = (
        "import os, signal, sys, json\n"
        "data = sys.stdin.buffer.read()\n"
        "print(json.dumps({'env': dict(os.environ), 'stdin': data.decode(),\n"
        "  'sid': os.getsid(0), 'pgid': os.getpgid(0), 'pid': os.getpid(),\n"
        "  'fds': sorted(int(f) for f in os.listdir('/proc/self/fd'))}))\n"
    )
    env = {"PATH": os.environ["PATH"], "ONLY": "this"}
    res = run([PY, "-c", script], here, env=env, stdin=b"prompt \x00 bytes", marker="m/t/1")
    seen = json.loads(res.stdout)
    seen["env"].pop("LC_CTYPE", None)  # Python's own C-locale coercion (PEP 538) in the child
    assert seen["env"] == {**env, proc.MARKER_VAR: "m/t/1"}
    assert seen["stdin"] == "prompt \x00 bytes"
    assert seen["sid"] == seen["pid"] == seen["pgid"]  # its own session and group
    ignored = run(["grep", "SigIgn", "/proc/self/status"], here).stdout.split()[1]
    assert not int(ignored, 16) & (1 << (signal.SIGPIPE - 1))  # not plait's SIG_IGN
    assert seen["fds"] == [0, 1, 2, 3]  # 3: the listing's own


def test_fast_path_no_stdin_is_dev_null(here: Path) -> None:
    res = run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], here)
    assert res.stdout.strip() == "''"


def test_fast_path_failures_read_as_popens(here: Path) -> None:
    with pytest.raises(proc.ProgramNotFound, match="no-such-agent-xyz"):
        run(["no-such-agent-xyz"], here)
    script = here / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(proc.ProgramNotFound):
        run([str(script)], here)  # not executable
    script.chmod(0o755)
    assert run(["./agent.sh"], here).stdout == "hi\n"  # relative to the cwd, as Popen


def test_fast_path_exit_codes_signals_and_escapees(here: Path) -> None:
    assert run([PY, "-c", "raise SystemExit(3)"], here).returncode == 3
    killed = run([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], here)
    assert killed.returncode is None and killed.signal == signal.SIGSEGV
    mark = f"test/{uuid.uuid4().hex}/1"
    escape = "import os, time\nif os.fork() == 0:\n    os.setsid(); time.sleep(60)\n"
    res = run([PY, "-c", escape], here, marker=mark)
    assert res.escaped_killed == 1


def test_an_inherited_descriptor_is_closed_in_the_child(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What plait inherited open (a jobserver pipe, say) never reaches an agent."""
    used = spawned_by(monkeypatch)
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        script = f"import os; print(os.path.exists('/proc/self/fd/{w}'))"
        res = run([PY, "-c", script], here)
    finally:
        os.close(r)
        os.close(w)
    assert used == ["posix_spawn"] and res.stdout.strip() == "False"


def test_a_listed_descriptor_closed_since_does_not_stop_a_start(here: Path) -> None:
    r, w = os.pipe()
    os.set_inheritable(w, True)
    assert w in (procspawn._inherited_fds() or ())
    os.close(r)
    os.close(w)
    # Whichever path starts it (glibc may ignore closing a closed descriptor), it runs.
    res = run([PY, "-c", "print('ran')"], here)
    assert res.returncode == 0 and res.stdout.strip() == "ran"


def test_spawned_wait_with_timeout(here: Path) -> None:
    pid = os.posix_spawn(PY, [PY, "-c", "import time; time.sleep(5)"], dict(os.environ))
    started = procspawn.Spawned(pid, ["sleep"])
    with pytest.raises(subprocess.TimeoutExpired):
        started.wait(timeout=0.05)
    os.kill(pid, signal.SIGKILL)
    assert started.wait(timeout=5) == -signal.SIGKILL and started.returncode == -signal.SIGKILL


def test_a_status_someone_else_collected_is_not_a_success(here: Path) -> None:
    """A host that reaps every child (waitpid(-1)) takes the status first: a failed
    git command must not then read as exit 0, as Popen would have it."""
    pid = os.posix_spawn(PY, [PY, "-c", "raise SystemExit(3)"], dict(os.environ))
    started = procspawn.Spawned(pid, ["fail"])
    assert os.waitpid(pid, 0)[0] == pid  # the host's reaper got there first
    assert started.wait() == procspawn.STATUS_LOST != 0
    assert started.returncode == procspawn.STATUS_LOST
