"""Ctrl-C, SIGTERM and SIGHUP: plait stops its agents, exits 130, and the run resumes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PlaitProc, agent_cmd, wait_until, write_plan, yaml_list
from gitrepo import GitRepo

# Each agent records that it started, then works for a while (`slow` for 30 s, until
# the test creates the FAST file), then writes its file.
AGENT = [
    sys.executable,
    "-c",
    "import os, sys, time; t = os.environ['PLAIT_TASK_ID']; "
    "open(os.environ['LEDGER'], 'a').write(t + '\\n'); "
    "fast = os.path.exists(os.environ['FAST']); "
    "time.sleep(0.1 if fast else float(os.environ.get('WORK', '0.3'))); "
    "open(t + '.txt', 'w').write(t)",
]


def _plan(repo: GitRepo, ledger: Path, fast: Path) -> None:
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: interrupted
agents:
  worker:
    backend: command
    command: {yaml_list(AGENT)}
    env: {{LEDGER: "{ledger}", FAST: "{fast}"}}
tasks:
  quick:
    agent: worker
    prompt: quick
    writes: [quick.txt]
  slow:
    agent: worker
    prompt: slow
    writes: [slow.txt]
    env: {{WORK: "30"}}
  after:
    agent: worker
    prompt: after slow
    needs: [slow]
    writes: [after.txt]
""",
    )


def _wait_for_slow(run: subprocess.Popen[str], ledger: Path) -> None:
    """Until the `slow` task's agent has started (its name is in the ledger)."""
    deadline = time.monotonic() + 30
    while "slow" not in (ledger.read_text() if ledger.exists() else ""):
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)


def _marked_alive(run_id: str) -> list[int]:
    """Processes still carrying this run's marker."""
    alive = []
    needle = f"PLAIT_MARKER={run_id}/".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read():
                    alive.append(int(name))
        except OSError:
            continue
    return alive


def test_an_attempt_cut_by_ctrl_c_ends_when_the_run_stopped(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path, plait_home: Path
) -> None:
    """Its agent printed nothing while it worked: on resume its end was taken from its
    last sign of life (its start), so it counted 0 s instead of the time it ran."""
    ledger, fast = tmp_path / "ledger.txt", tmp_path / "fast"
    _plan(repo, ledger, fast)
    run = plait_proc.start("run", "--json", cwd=repo.path)
    _wait_for_slow(run, ledger)
    time.sleep(1.5)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    fast.touch()
    assert plait_proc("resume", cwd=repo.path, timeout=90).returncode == 0
    with sqlite3.connect(plait_home / "state.db") as db:
        (took,) = db.execute(
            "SELECT finished_at - started_at FROM attempts"
            " WHERE task_id = 'slow' AND status = 'interrupted'"
        ).fetchone()
    assert 1.2 <= took < 30, took


def test_work_waiting_for_its_merge_is_merged_on_resume_not_done_again(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """With `verify_each_merge` merges queue behind a slow verify. A Ctrl-C then left
    finished, committed attempts unmerged, and resume ran their agents again (paid
    twice, perhaps with another result). They are merged from their commits."""
    ledger = tmp_path / "ledger.txt"
    agent = [
        sys.executable, "-c",
        "import os; t = os.environ['PLAIT_TASK_ID']; open(t + '.txt', 'w').write(t); "
        "t == 'one' and open('extra.txt', 'w').write(t); "
        "open(os.environ['LEDGER'], 'a').write(t + '\\n')",
    ]  # fmt: skip
    verify = [sys.executable, "-c", "import time; time.sleep(1.5)"]
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
scope: warn
verify: {yaml_list(verify)}
verify_each_merge: true
agents:
  worker: {{backend: command, command: {yaml_list(agent)}, env: {{LEDGER: "{ledger}"}}}}
tasks:
  one: {{agent: worker, prompt: x, writes: [one.txt]}}
  two: {{agent: worker, prompt: x, writes: [two.txt]}}
""",
    )
    run = plait_proc.start("run", "--json", cwd=repo.path)
    deadline = time.monotonic() + 30
    while len((ledger.read_text() if ledger.exists() else "").split()) < 2:
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)  # both finished; the first merge's verify runs, the second waits
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=30)
    assert run.returncode == 130
    resumed = plait_proc("resume", "--json", cwd=repo.path, timeout=90)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert sorted(ledger.read_text().split()) == ["one", "two"]  # each agent ran once
    status = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)
    assert {t["id"]: (t["status"], t["attempts"]) for t in status["tasks"]} == {
        "one": ("succeeded", 1),
        "two": ("succeeded", 1),
    }
    files = repo.git("ls-tree", "--name-only", status["branch"]).split()
    assert {"one.txt", "two.txt"} <= set(files)
    assert repo.branches(f"plait/tasks/{status['run']}/*") == []  # merged: none kept
    # what scope let through (`scope: warn`) is still reported after the resume
    one = next(t for t in status["tasks"] if t["id"] == "one")
    assert one["scope_violations"] == ["extra.txt"], one


@pytest.mark.parametrize("gap_s", [0.0, 0.01])
def test_ctrl_c_pressed_twice_still_ends_with_the_runs_summary(
    gap_s: float, repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """The second Ctrl-C used to raise KeyboardInterrupt in the middle of the stop:
    no `--json` object, no resume hint, and (0 s apart) a screen of tracebacks."""
    ledger, fast = tmp_path / "ledger.txt", tmp_path / "fast"
    _plan(repo, ledger, fast)
    run = plait_proc.start("run", "--json", cwd=repo.path)
    _wait_for_slow(run, ledger)
    run.send_signal(signal.SIGINT)
    time.sleep(gap_s)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert json.loads(out)["status"] == "interrupted", out
    assert "Traceback" not in err and "never retrieved" not in err, err
    status = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)
    assert _marked_alive(status["run"]) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_the_run_with_130_and_resume_finishes_it(
    sig: signal.Signals, repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    ledger, fast = tmp_path / "ledger.txt", tmp_path / "fast"
    _plan(repo, ledger, fast)
    run = plait_proc.start("run", "--json", cwd=repo.path)
    _wait_for_slow(run, ledger)
    time.sleep(0.5)  # `quick` finishes and merges meanwhile; `slow` is mid-work
    run.send_signal(sig)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "plait resume" in err
    status = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)
    assert status["status"] == "interrupted"
    assert _marked_alive(status["run"]) == []  # the slow agent was stopped with plait
    tasks = {t["id"]: t for t in status["tasks"]}
    assert tasks["quick"]["status"] == "succeeded"

    fast.touch()
    resumed = plait_proc("resume", cwd=repo.path, timeout=90)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)
    assert final["status"] == "succeeded"
    assert {t["id"]: t["status"] for t in final["tasks"]} == {
        "quick": "succeeded",
        "slow": "succeeded",
        "after": "succeeded",
    }
    # The task's span starts at its first attempt, not where the resume took it up.
    slow_after = next(t for t in final["tasks"] if t["id"] == "slow")
    assert slow_after["started_at"] == tasks["slow"]["started_at"] is not None
    started = ledger.read_text().split()
    assert started.count("quick") == 1  # finished before the signal: never again
    assert started.count("slow") == 2  # in flight at the signal: run again once
    for name in ("quick", "slow", "after"):
        assert repo.show(final["branch"], f"{name}.txt") == name


def test_a_retry_resumed_after_a_crash_still_gets_the_failure_note(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """The note is made again from the failed attempt's record and log on resume."""
    rec = tmp_path / "rec"
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: crash-in-retry
agents:
  agent:
    backend: command
    command: {yaml_list(agent_cmd("flaky.py"))}
    env: {{REC_DIR: "{rec}", KILL_PLAIT_AT: "2"}}
tasks:
  build:
    agent: agent
    prompt: Fix the build.
    retries: 2
""",
    )
    repo.commit("plan")
    crashed = plait_proc("run", "--json", cwd=repo.path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    resumed = plait_proc("resume", "--json", cwd=repo.path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["tasks"][0]["attempts"] == 3
    in_process, after_crash = (
        (rec / "build.2.prompt").read_text(),
        (rec / "build.3.prompt").read_text(),
    )
    for prompt in (in_process, after_crash):
        assert prompt.startswith("Fix the build.\n\n## Note from plait")
        assert "flaky-failure-build: disk on fire" in prompt
        assert "exited with code 1" in prompt


#: Appends its attempt number to $LEDGER; kills plait (its parent) on the attempts
#: listed in $KILL_AT, as a crash in the middle of that attempt; fails every other one.
FAILING_AGENT = """\
import os, signal, sys
sys.stdin.read()
attempt = os.environ["PLAIT_ATTEMPT"]
open(os.environ["LEDGER"], "a").write(attempt + "\\n")
if attempt in os.environ["KILL_AT"].split(","):
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(0)
print(f"still broken on attempt {attempt}")
sys.exit(1)
"""


def test_a_retry_interrupted_twice_is_still_the_one_retry(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    """`retries: 1` allows two failed attempts, across any number of interruptions: an
    interrupted attempt is run again once per interruption, as the same try."""
    script, ledger = tmp_path / "agent.py", tmp_path / "ledger"
    script.write_text(FAILING_AGENT, encoding="utf-8")
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
agents:
  a: {{backend: command, command: {yaml_list([sys.executable, str(script)])}}}
tasks:
  x: {{agent: a, prompt: fix it, retries: 1, env: {{LEDGER: "{ledger}", KILL_AT: "2"}}}}
""",
    )
    crashed = plait_proc("run", cwd=repo.path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # Make it the crash between attempt 1's failure and the start of its retry: the
    # store then holds attempt 1, failed, and nothing of attempt 2 (its first row is
    # written, durably, before its agent starts, so no agent can kill plait earlier).
    with sqlite3.connect(plait_home / "state.db") as db:
        db.execute("DELETE FROM attempts WHERE task_id = 'x' AND attempt = 2")
        db.execute("UPDATE tasks SET attempts = 1 WHERE task_id = 'x'")
    db.close()
    # The retry, started by resume, is killed too.
    again = plait_proc("resume", cwd=repo.path)
    assert again.returncode == -signal.SIGKILL, again.stderr
    resumed = plait_proc("resume", "--json", cwd=repo.path)
    assert resumed.returncode == 1, resumed.stderr
    (task,) = json.loads(resumed.stdout)["tasks"]
    assert (task["status"], task["attempts"]) == ("failed", 3)
    with sqlite3.connect(plait_home / "state.db") as db:
        rows = db.execute(
            "SELECT attempt, kind, status FROM attempts WHERE task_id = 'x' ORDER BY attempt"
        ).fetchall()
    db.close()
    assert rows == [(1, "first", "failed"), (2, "resume", "interrupted"), (3, "resume", "failed")]
    assert ledger.read_text().split() == ["1", "2", "2", "3"]


def test_ctrl_c_outside_a_runs_tasks_is_an_interrupt_not_a_cancelled_error(
    tmp_path: Path,
) -> None:
    """`plait apply` (or a run before its tasks) cut by Ctrl-C gave a CancelledError
    traceback and exit 1: the engine's coroutine must end in KeyboardInterrupt (130)."""
    script = tmp_path / "wait.py"
    script.write_text(
        "import asyncio, sys\n"
        "from plait.cliio import run_coroutine\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    run_coroutine(asyncio.sleep(30))\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted'); sys.exit(0)\n"
        "except asyncio.CancelledError:\n"
        "    print('cancelled'); sys.exit(1)\n"
    )
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    assert (child.returncode, out) == (0, "interrupted\n")


def test_a_terminal_that_hangs_up_ends_the_run_interrupted_with_130(
    repo: GitRepo, tmp_path: Path, plait_home: Path
) -> None:
    """Closing the terminal (or the ssh session) sends SIGHUP, and then every write to
    it fails (EIO): the board's last frame raised OSError and plait exited 1."""
    import pty

    ledger, fast = tmp_path / "ledger.txt", tmp_path / "fast"
    _plan(repo, ledger, fast)
    pid, master = pty.fork()
    if pid == 0:  # the child: plait on the terminal, as someone at it would start it
        try:
            os.chdir(repo.path)
            os.execv(sys.executable, [sys.executable, "-m", "plait", "run"])
        finally:
            os._exit(127)
    os.set_blocking(master, False)
    deadline = time.monotonic() + 30
    while "slow" not in (ledger.read_text() if ledger.exists() else ""):
        assert time.monotonic() < deadline
        with contextlib.suppress(OSError):
            os.read(master, 65536)  # keep the board's output flowing
        time.sleep(0.05)
    os.close(master)  # the terminal hangs up
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130
    with sqlite3.connect(plait_home / "state.db") as db:
        (run_status,) = db.execute("SELECT status FROM runs").fetchone()
    assert run_status == "interrupted"


#: Says nothing; on its first attempt works until killed, then finishes at once.
QUIET_AGENT = """\
import os, pathlib, sys, time
sys.stdin.read()
started = pathlib.Path(os.environ["STARTED"])
if not started.exists():
    started.touch()
    time.sleep(600)
pathlib.Path("q.txt").write_text("q")
"""


def test_a_quiet_agents_attempt_ends_near_the_kill_not_at_its_start(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    """An agent that printed nothing left no trace after its start: a resume recorded its
    attempt, cut by a kill -9 of plait after 3 s of work, as 0.0002 s long."""
    script, started = tmp_path / "quiet.py", tmp_path / "started"
    script.write_text(QUIET_AGENT, encoding="utf-8")
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
agents:
  a: {{backend: command, command: {yaml_list([sys.executable, str(script)])}}}
tasks:
  q: {{agent: a, prompt: x, writes: [q.txt], env: {{STARTED: "{started}"}}}}
""",
    )
    repo.commit("plan")
    run = plait_proc.start("run", cwd=repo.path)
    wait_until(started.exists, run)
    time.sleep(3.0)
    run.kill()
    run.communicate(timeout=30)
    resumed = plait_proc("resume", cwd=repo.path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with sqlite3.connect(plait_home / "state.db") as db:
        (status, took) = db.execute(
            "SELECT status, finished_at - started_at FROM attempts WHERE attempt = 1"
        ).fetchone()
    db.close()
    assert status == "interrupted"
    assert 1.0 <= took <= 30, took  # its heartbeat was at most 2 s old at the kill
