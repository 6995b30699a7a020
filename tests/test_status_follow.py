"""`plait status --follow` and the event stream beside the store (issue #6 item 2)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conftest import PlaitProc, write_plan, yaml_list
from gitrepo import GitRepo

SLEEP = [sys.executable, "-c", "import time; time.sleep(0.6); print('slept')"]


def _plan(repo: GitRepo) -> Path:
    return write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: follow
agents:
  sleeper:
    backend: command
    command: {yaml_list(SLEEP)}
tasks:
  first:
    agent: sleeper
    prompt: one
  second:
    agent: sleeper
    needs: [first]
    prompt: two
""",
    )


def test_status_follow_streams_a_live_run_until_it_ends(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path
) -> None:
    _plan(repo)
    run = plait_proc.start("run", "--json", cwd=repo.path)
    deadline = time.monotonic() + 30
    while not (plait_home / "state.db").exists():  # the run has created its store
        assert time.monotonic() < deadline, run.stderr.read() if run.stderr else ""
        time.sleep(0.05)
    follower = plait_proc.start("status", "--follow", "--json", cwd=repo.path)
    assert run.poll() is None  # following a run that is still going
    out, err = follower.communicate(timeout=60)
    assert run.wait(timeout=60) == 0
    assert follower.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["kind"] for e in events]
    # it started while the run was going, and stopped by itself at the run's end
    assert kinds[-1] == "run_finished", kinds
    assert "attempt_started" in kinds
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # the file any tool can follow holds the same events, in the same order
    run_id = events[0]["run"]
    mirror = plait_home / "runs" / run_id / "events.jsonl"
    lines = [json.loads(line) for line in mirror.read_text().splitlines()]
    assert [e["seq"] for e in lines][-len(events) :] == seqs
    finished = [e for e in lines if e["kind"] == "task_finished"]
    assert {e["task"] for e in finished} == {"first", "second"}


def test_status_follow_of_a_finished_run_prints_its_events_as_lines(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    _plan(repo)
    assert plait_proc("run", cwd=repo.path).returncode == 0
    followed = plait_proc("status", "--follow", cwd=repo.path)
    assert followed.returncode == 0, followed.stderr
    text = followed.stdout
    assert "first" in text and "second" in text
    assert "run finished: succeeded" in text


def test_status_follow_exits_as_the_followed_run_did(repo: GitRepo, plait_proc: PlaitProc) -> None:
    """A script following a run started elsewhere learns how it ended, as from `run`."""
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: follow-fail
agents:
  bad:
    backend: command
    command: {yaml_list([sys.executable, "-c", "raise SystemExit(4)"])}
tasks:
  only:
    agent: bad
    prompt: fail
""",
    )
    assert plait_proc("run", cwd=repo.path).returncode == 1
    followed = plait_proc("status", "--follow", cwd=repo.path)
    assert followed.returncode == 1, followed.stderr
    assert "run finished: failed" in followed.stdout
    shown = plait_proc("status", cwd=repo.path)  # a look at the state is not a verdict
    assert shown.returncode == 0, shown.stderr
