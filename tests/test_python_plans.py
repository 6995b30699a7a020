"""Plans built in Python get the shapes and the checks a plan file gets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import plait
from conftest import PlaitProc, wait_until, write_plan
from gitrepo import GitRepo
from plait.errors import PlanError
from plait.model import Agent, Isolation, Plan, Task
from plait.planfile import validate_plan


def test_strings_are_one_id_or_glob_or_a_shell_line_not_their_characters() -> None:
    """`needs="t2"` read as needs t, 2; `writes="docs/**"` as globs d, o, c, s, /, ..."""
    task = Task("t", prompt="x", needs="t2", writes="docs/**", reads=["a/*"], verify="make -s")
    assert (task.needs, task.writes, task.reads) == (("t2",), ("docs/**",), ("a/*",))
    assert task.verify == ("/bin/sh", "-c", "make -s")  # as a plan file's `verify: make -s`


def test_a_blank_verify_is_refused_and_a_setup_string_is_one_step() -> None:
    """`verify=""` became `sh -c ""`, which always passes; `setup="echo hi"` ran one
    shell step per character."""
    blank = Plan(
        tasks=[Task("t", prompt="x", agent="a", verify="")], agents=[Agent("a", command=["x"])]
    )
    with pytest.raises(PlanError, match="empty"):
        validate_plan(blank)
    plan = Plan(tasks=[Task("t", prompt="x")], setup="echo hi")  # type: ignore[arg-type]
    assert plan.setup == (("/bin/sh", "-c", "echo hi"),)


def test_a_task_or_agent_given_twice_is_a_plan_error() -> None:
    """The later one silently replaced the earlier (in a plan file, a duplicate key is
    an error)."""
    with pytest.raises(PlanError, match=r"tasks\.t: 't' is given twice"):
        Plan(tasks=[Task("t", prompt="first"), Task("t", prompt="second")])
    with pytest.raises(PlanError, match=r"agents\.a: 'a' is given twice"):
        Plan(tasks=[Task("t", prompt="x", agent="a")], agents=[Agent("a"), Agent("a")])


def test_enumerations_take_their_strings_and_refuse_others() -> None:
    """`isolation="worktree"` (a string, not Isolation.WORKTREE) ran the agents in the
    user's checkout, and so did a misspelt one."""
    agent = Agent("a", command=["true"], permission="read")  # type: ignore[arg-type]
    tasks = [Task("t", prompt="x", agent="a")]
    plan = Plan(tasks=tasks, agents=[agent], isolation="worktree")  # type: ignore[arg-type]
    assert plan.isolation is Isolation.WORKTREE and agent.permission.value == "read"
    shell_line = Agent("a", command="run me")  # type: ignore[arg-type]
    bad = Plan(tasks=tasks, agents=[shell_line], isolation="nonee")  # type: ignore[arg-type]
    with pytest.raises(PlanError) as raised:
        validate_plan(bad)
    paths = {p.path: p.message for p in raised.value.problems}
    assert paths["isolation"] == "'nonee' is not one of: worktree, none"
    assert paths["agents.a.command"].startswith("must be an argv list")


def test_a_python_plan_with_isolation_as_a_string_runs_in_worktrees(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo.path)
    plan = Plan(
        tasks=[Task("t", prompt="x", agent="a", writes="iso.txt")],
        agents=[Agent("a", command=["sh", "-c", "echo $PWD > iso.txt"])],
        isolation="worktree",  # type: ignore[arg-type]
        root=repo.path,
    )
    result = plait.run_plan(plan)
    assert result.status == "succeeded", result.messages
    assert not (repo.path / "iso.txt").exists()  # not written in the user's checkout
    assert repo.git("status", "--porcelain").strip() == ""


def test_a_task_verify_that_cannot_start_fails_the_attempt(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """A missing verify program crashed the run (a traceback, no JSON, and every resume
    crashed again): the attempt fails, saying why, and the run ends as any failure."""
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nagents: {sh: {backend: command, command: [sh, -c, 'echo a > a.txt']}}\n"
        "tasks: {t: {agent: sh, prompt: do, verify: [no-such-verify-prog, -q]}}\n",
    )
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 1, done.stdout + done.stderr
    (task,) = json.loads(done.stdout)["tasks"]
    assert task["status"] == "failed"
    assert task["error"].startswith("verify no-such-verify-prog -q could not start: ")
    assert "Traceback" not in done.stderr


def test_an_event_callback_that_raises_does_not_end_the_run(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It ended the run with an ExceptionGroup, left interrupted."""
    monkeypatch.chdir(repo.path)
    plan = Plan(
        tasks=[Task("t", prompt="x", agent="a", writes="a.txt")],
        agents=[Agent("a", command=["sh", "-c", "echo a > a.txt"])],
        root=repo.path,
    )
    seen: list[str] = []

    def on_event(event: dict[str, object]) -> None:
        seen.append(str(event["kind"]))
        raise ValueError("my bug")

    result = plait.run_plan(plan, on_event=on_event)
    assert result.status == "succeeded", result.messages
    assert seen == ["run_started"]  # told once, then left out
    assert "the event callback failed (ValueError('my bug'))" in caplog.text


#: Builds the plan the two processes below share: a callable agent that kills its own
#: process (plait) on the first attempt of `b`, as a crash in the middle of the run.
PYTHON_RUN = """\
import os, pathlib, signal, sys
import plait
from plait.model import Agent, Plan, Task

marker = pathlib.Path(sys.argv[2])

def work(request):
    pathlib.Path(request.workspace, request.task_id + ".txt").write_text(request.task_id)
    if request.task_id == "b" and not marker.exists():
        marker.write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return "done " + request.task_id

plan = Plan(
    tasks=[Task("a", prompt="x", agent="py", writes="a.txt"),
           Task("b", prompt="x", agent="py", writes="b.txt", needs="a")],
    agents=[Agent("py", backend="python", function=work)],
    root=pathlib.Path.cwd(),
)
if sys.argv[1] == "run":
    plait.run_plan(plan)
elif sys.argv[1] == "resume-other":  # the plan without b: not the run's
    import dataclasses
    plait.resume_plan(dataclasses.replace(plan, tasks={"a": plan.tasks["a"]}))
else:
    result = plait.resume_plan(plan)
    print(result.status, sorted(result.outputs.items()))
"""


def test_a_python_plan_killed_mid_run_resumes_from_python(repo: GitRepo, tmp_path: Path) -> None:
    """`plait resume` cannot rebuild a plan of callables, and there was no way to resume
    it from Python: the run's work was stranded."""
    import subprocess

    script = tmp_path / "run.py"
    script.write_text(PYTHON_RUN, encoding="utf-8")
    marker = tmp_path / "marker"
    crashed = subprocess.run(
        [sys.executable, str(script), "run", str(marker)],
        cwd=repo.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert crashed.returncode == -9, crashed.stderr
    from_cli = subprocess.run(
        [sys.executable, "-m", "plait", "resume"],
        cwd=repo.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert from_cli.returncode == 2
    assert "plait.resume_plan(plan, " in from_cli.stderr  # says how
    shown = subprocess.run(
        [sys.executable, "-m", "plait", "status"],
        cwd=repo.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "continue it with plait.resume_plan(plan, " in shown.stdout, shown.stdout
    other = subprocess.run(
        [sys.executable, str(script), "resume-other", str(marker)],
        cwd=repo.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "this plan is not run " in other.stderr and "(without b)" in other.stderr
    resumed = subprocess.run(
        [sys.executable, str(script), "resume", str(marker)],
        cwd=repo.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "succeeded [('a', 'done a'), ('b', 'done b')]"


CTRL_C_SCRIPT = """\
import pathlib, sys
import plait
from plait.model import Agent, Plan, Task

plan = Plan(
    tasks=[Task("slow", prompt="x", agent="w")],
    agents=[Agent("w", command=["sh", "-c", "touch " + sys.argv[1] + "; sleep 60"])],
    root=pathlib.Path.cwd(),
)
try:
    plait.run_plan(plan)
except KeyboardInterrupt:
    print("KeyboardInterrupt")
    sys.exit(130)
print("went on")
"""


def test_ctrl_c_in_run_plan_raises_keyboard_interrupt(repo: GitRepo, tmp_path: Path) -> None:
    """The run ended as interrupted and run_plan returned: a script calling it in a loop
    went on to its next plan after the user's Ctrl-C."""
    import signal
    import subprocess

    script, started = tmp_path / "ctrl_c.py", tmp_path / "started"
    script.write_text(CTRL_C_SCRIPT, encoding="utf-8")
    run = subprocess.Popen(
        [sys.executable, str(script), str(started)],
        cwd=repo.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_until(started.exists, run)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 130 and out.strip() == "KeyboardInterrupt", out + err
    status = subprocess.run(
        [sys.executable, "-m", "plait", "status", "--json"],
        cwd=repo.path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(status.stdout)["status"] == "interrupted"  # recorded, resumable
