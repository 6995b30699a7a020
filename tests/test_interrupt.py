"""Ctrl-C and SIGTERM: plait stops its agents, exits 130, and the run resumes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import PlaitProc, agent_cmd, write_plan, yaml_list
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_with_130_and_resume_finishes_it(
    sig: signal.Signals, repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    ledger, fast = tmp_path / "ledger.txt", tmp_path / "fast"
    _plan(repo, ledger, fast)
    run = plait_proc.start("run", "--json", cwd=repo.path)
    deadline = time.monotonic() + 30
    while "slow" not in (ledger.read_text() if ledger.exists() else ""):
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
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
