"""The command line end to end: plan, schema, init, runs, logs, exit codes, the run lock.

Most commands run in-process through `plait.cli.main`; the lock test runs two real
`python -m plait run` processes against one repository.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CliResult, PlaitProc, agent_cmd, write_plan
from gitrepo import GitRepo
from plait.proc import kill_marked

Cli = Callable[..., CliResult]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def plan_with(agents: dict[str, list[str]], tasks: str, head: str = "") -> str:
    lines = [f"version: 1\nname: cli\n{head}agents:"]
    for agent, argv in agents.items():
        lines += [f"  {agent}:", "    backend: command", f"    command: {json.dumps(argv)}"]
    return "\n".join(lines) + "\ntasks:\n" + tasks


def tree(path: Path) -> dict[str, float]:
    """Every file under `path` with its mtime (to see that nothing was written)."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}


# --- plan, schema, init -----------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_plan_on_the_examples(example: str, cli: Cli, tmp_path: Path, git_env: None) -> None:
    path = EXAMPLES / example
    text = cli("plan", str(path), cwd=tmp_path)
    assert text.code == 0, text.err
    assert "critical path" in text.out.lower()
    result = cli("plan", str(path), "--json", cwd=tmp_path)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {"tasks", "edges", "exclusive", "phases", "critical_path", "estimate"} <= set(data)
    for task in data["tasks"]:
        assert {"id", "agent", "needs", "writes", "phase", "estimate_s"} <= set(task)
    for edge in data["edges"]:
        assert edge["reason"] in ("needs", "template", "reads")
        assert {"from", "to"} <= set(edge)
    assert {"sequential_s", "parallel_s", "jobs"} <= set(data["estimate"])
    assert data["estimate"]["parallel_s"] <= data["estimate"]["sequential_s"]
    ids = {t["id"] for t in data["tasks"]}
    assert set(data["critical_path"]) <= ids
    assert sorted(t for phase in data["phases"] for t in phase) == sorted(ids)
    graph = cli("plan", str(path), "--graph", "mermaid", cwd=tmp_path)
    assert graph.code == 0 and graph.out.startswith(("graph", "flowchart"))
    both = cli("plan", str(path), "--graph", "dot", "--json", cwd=tmp_path)  # not silently
    assert both.code == 2 and json.loads(both.out)["error"]["exit_code"] == 2


def test_plan_on_the_login_example_shows_the_documented_edges(cli: Cli, tmp_path: Path) -> None:
    data = json.loads(cli("plan", str(EXAMPLES / "login.yaml"), "--json", cwd=tmp_path).out)
    edges = {(e["from"], e["to"], e["reason"]) for e in data["edges"]}
    assert {
        ("contract", "login-ui", "template"),
        ("contract", "auth-service", "needs"),
        ("contract", "auth-tests", "reads"),
    } <= edges
    # 5 + 12 + 15 + 10 minutes in sequence; contract then the longest (15) in parallel.
    assert data["estimate"]["sequential_s"] == 42 * 60
    assert data["estimate"]["parallel_s"] == 20 * 60


def test_plan_json_numbers_phases_as_the_text_and_the_graph_do(cli: Cli, tmp_path: Path) -> None:
    path = str(EXAMPLES / "login.yaml")
    data = json.loads(cli("plan", path, "--json", cwd=tmp_path).out)
    phase = {t["id"]: t["phase"] for t in data["tasks"]}
    assert phase["contract"] == 1  # the first phase, which the text calls "phase 1"
    for number, ids in enumerate(data["phases"], start=1):
        assert all(phase[t] == number for t in ids)
    text = cli("plan", path, cwd=tmp_path).out
    mermaid = cli("plan", path, "--graph", "mermaid", cwd=tmp_path).out
    last = len(data["phases"])
    assert f"phase {last} ·" in text and f"phase {last + 1}" not in text
    assert f"phase {last}" in mermaid and "phase 0" not in mermaid + text


BROKEN = """version: 1
name: broken
agents:
  a:
    backend: command
    command: ["true"]
tasks:
  one:
    agent: a
    prompt: hi
  two:
    agent: a
    prompt: hi
    need: [one]
"""


def test_a_broken_plan_exits_2_naming_file_and_line_and_writes_nothing(
    repo: GitRepo, cli: Cli, plait_home: Path
) -> None:
    write_plan(repo.path / "plait.yaml", BROKEN)
    before = tree(repo.path)
    for command in ("plan", "run"):
        result = cli(command, cwd=repo.path)
        assert result.code == 2, (command, result.out, result.err)
        assert "plait.yaml:14" in result.err, result.err
        assert "need" in result.err and "needs" in result.err  # did you mean
    assert tree(repo.path) == before
    assert not plait_home.exists()
    assert repo.branches("plait/*") == []


def test_with_json_an_error_is_still_one_json_object(
    repo: GitRepo, cli: Cli, plait_home: Path
) -> None:
    write_plan(repo.path / "plait.yaml", BROKEN)
    for command in ("plan", "run"):
        result = cli(command, "--json", cwd=repo.path)
        assert result.code == 2, (command, result.out, result.err)
        error = json.loads(result.out)["error"]
        assert error["exit_code"] == 2 and error["file"] == "plait.yaml"
        assert {(p["path"], p["line"]) for p in error["problems"]} == {("tasks.two.need", 14)}
        assert "plait.yaml:14" in result.err  # the person at the terminal still reads it
    missing = cli("status", "nosuch", "--json", cwd=repo.path)
    assert missing.code == 2
    assert json.loads(missing.out)["error"]["exit_code"] == 2
    for options in (["-j", "0"], ["--bogus"]):  # refused by the option parser itself
        refused = cli("run", "--json", *options, cwd=repo.path)
        assert refused.code == 2
        assert json.loads(refused.out)["error"]["exit_code"] == 2, refused.out
    assert not plait_home.exists()


def test_a_run_that_ran_has_no_top_level_error_in_its_json(repo: GitRepo, cli: Cli) -> None:
    """With --json a top-level "error" means the command failed (README): a run that
    ran, succeeded or failed, must not carry one (it carried `"error": null`)."""
    tasks = "  ok:\n    agent: a\n    prompt: x\n  bad:\n    agent: b\n    prompt: x\n"
    write_plan(repo.path / "plait.yaml", plan_with({"a": ["true"], "b": ["false"]}, tasks))
    ran = cli("run", "--json", cwd=repo.path)
    assert ran.code == 1, ran.err
    data = json.loads(ran.out)
    assert data["status"] == "failed" and "error" not in data
    shown = json.loads(cli("status", "--json", cwd=repo.path).out)
    assert "error" not in shown


def test_resume_with_no_runs_says_so_and_creates_no_state(
    repo: GitRepo, cli: Cli, plait_home: Path
) -> None:
    """Before, it created an empty state, after which `plait runs` answered differently."""
    resumed = cli("resume", cwd=repo.path)
    assert resumed.code == 2 and "no run to resume" in resumed.err, resumed.err
    assert not plait_home.exists()
    assert cli("runs", cwd=repo.path).out.strip() == "no runs yet"  # as before any resume


def test_a_reader_that_stops_reading_does_not_stop_the_run(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """`plait run | head -1`: the first write after the reader left raised
    BrokenPipeError inside the engine, and the run died, interrupted, with a traceback."""
    agent = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    tasks = "".join(
        f"  t{i}:\n    agent: a\n    prompt: x\n" + (f"    needs: [t{i - 1}]\n" if i else "")
        for i in range(4)
    )
    write_plan(repo.path / "plait.yaml", plan_with({"a": agent}, tasks))
    run = plait_proc.start("run", cwd=repo.path)
    assert run.stdout is not None and run.stderr is not None
    assert "started" in run.stdout.readline()
    run.stdout.close()  # as `head -1` does once it has its line
    err = run.stderr.read()
    assert run.wait(timeout=60) == 0, err
    assert "Traceback" not in err
    shown = plait_proc("status", "--json", cwd=repo.path)
    assert json.loads(shown.stdout)["status"] == "succeeded"


def test_a_cycle_names_the_plan_file_as_other_plan_errors_do(
    repo: GitRepo, cli: Cli, plait_home: Path
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        'version: 1\nagents:\n  a: {backend: command, command: ["true"]}\ntasks:\n'
        "  x: {agent: a, prompt: p, needs: y}\n  y: {agent: a, prompt: p, needs: x}\n",
    )
    for command in ("plan", "run"):
        result = cli(command, cwd=repo.path)
        assert result.code == 2, (command, result.out, result.err)
        assert "\n  plait.yaml:5: tasks.x.needs: dependency cycle x → y → x" in result.err
    assert not plait_home.exists()


def test_schema_prints_the_plan_json_schema(cli: Cli, tmp_path: Path) -> None:
    result = cli("schema", cwd=tmp_path)
    assert result.code == 0
    schema = json.loads(result.out)
    assert schema["type"] == "object"
    assert {"tasks", "agents", "jobs", "isolation"} <= set(schema["properties"])


def test_init_writes_a_plan_that_plans(repo: GitRepo, cli: Cli) -> None:
    result = cli("init", cwd=repo.path)
    assert result.code == 0, result.err
    assert (repo.path / "plait.yaml").is_file()
    profiles = sorted((repo.path / ".plait" / "agents").glob("*.md"))
    assert len(profiles) >= 3
    for profile in profiles:
        assert profile.read_text().startswith("---\n")
    planned = cli("plan", "--json", cwd=repo.path)
    assert planned.code == 0, planned.err
    assert json.loads(planned.out)["tasks"]
    # A second init keeps the user's plan.
    (repo.path / "plait.yaml").write_text(
        (repo.path / "plait.yaml").read_text() + "# mine\n", encoding="utf-8"
    )
    again = cli("init", cwd=repo.path)
    assert again.code == 0
    assert (repo.path / "plait.yaml").read_text().endswith("# mine\n")


# --- runs, logs, status -----------------------------------------------------------------


def test_runs_logs_and_status_after_a_run(repo: GitRepo, cli: Cli, tmp_path: Path) -> None:
    tasks = (
        f'  hello:\n    agent: tee\n    prompt: say hi\n    env: {{DEST: "{tmp_path / "x"}", '
        'SAY: "hello from the agent"}\n'
    )
    write_plan(repo.path / "plait.yaml", plan_with({"tee": agent_cmd("tee_stdin.py")}, tasks))
    repo.commit("plan")
    empty = cli("runs", cwd=repo.path)
    assert empty.code == 0 and empty.out.strip() == "no runs yet"

    first = cli("run", cwd=repo.path)  # not a terminal: one line per event, then a summary
    assert first.code == 0, first.err
    assert "hello" in first.out and "succeeded" in first.out
    run_id = json.loads(cli("status", "--json", cwd=repo.path).out)["run"]
    assert run_id in first.out

    listed = cli("runs", cwd=repo.path)
    assert listed.code == 0 and run_id in listed.out and "succeeded" in listed.out
    rows: list[dict[str, Any]] = json.loads(cli("runs", "--json", cwd=repo.path).out)
    assert [r["run"] for r in rows] == [run_id]

    logs = cli("logs", run_id, "hello", cwd=repo.path)
    assert logs.code == 0 and "hello from the agent" in logs.out
    text = cli("status", run_id, cwd=repo.path)
    assert text.code == 0 and "hello" in text.out and "succeeded" in text.out

    for argv in (
        ("status", "20990101-000000-dead"),
        ("logs", "20990101-000000-dead", "hello"),
        ("logs", run_id, "no-such-task"),
        ("logs", run_id, "hello", "--attempt", "7"),
        ("report", "20990101-000000-dead"),
    ):
        result = cli(*argv, cwd=repo.path)
        assert result.code == 2, (argv, result.out, result.err)
        assert result.err.strip(), argv
    bad_usage = cli("run", "--jobs", "0", cwd=repo.path)
    assert bad_usage.code == 2


def test_logs_of_an_attempt_that_printed_nothing(repo: GitRepo, cli: Cli, plait_home: Path) -> None:
    """No log file is made for a silent program; `plait logs` says so and succeeds."""
    tasks = "  quiet:\n    agent: quiet\n    prompt: say nothing\n"
    write_plan(repo.path / "plait.yaml", plan_with({"quiet": ["true"]}, tasks))
    repo.commit("plan")
    assert cli("run", cwd=repo.path).code == 0
    run_id = json.loads(cli("status", "--json", cwd=repo.path).out)["run"]
    logs = cli("logs", run_id, "quiet", cwd=repo.path)
    assert logs.code == 0 and logs.out == ""
    assert "quiet attempt 1 printed nothing (it ended: ok)" in logs.err
    # The attempt's files sit flat in the run's folder: its prompt, and no folder of its own.
    files = {p.name for p in (plait_home / "runs" / run_id).iterdir()}
    assert "quiet.1.prompt.md" in files and "quiet.1" not in files and "quiet.1.log" not in files
    # A run recorded by an earlier plait kept each attempt's log in a folder of its own.
    legacy = plait_home / "runs" / run_id / "quiet" / "1"
    legacy.mkdir(parents=True)
    (legacy / "agent.log").write_text("from an earlier layout\n")
    assert cli("logs", run_id, "quiet", cwd=repo.path).out == "from an earlier layout\n"


def test_worktree_isolation_outside_git_exits_3(
    cli: Cli, tmp_path: Path, git_env: None, plait_home: Path
) -> None:
    folder = tmp_path / "folder"
    tasks = "  t: {agent: a, prompt: x}\n"
    write_plan(folder / "plait.yaml", plan_with({"a": ["true"]}, tasks, "isolation: worktree\n"))
    result = cli("run", cwd=folder)
    assert result.code == 3, result.out + result.err
    assert "not inside a git repository" in result.err
    assert not plait_home.exists()
    assert sorted(p.name for p in folder.iterdir()) == ["plait.yaml"]


def test_a_missing_agent_program_exits_3_before_anything_starts(
    repo: GitRepo, cli: Cli, tmp_path: Path, plait_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "ran"
    text = (
        "version: 1\nname: needs-claude\n"
        "agents:\n  writer:\n    backend: claude\n"
        "  other:\n    backend: command\n"
        f'    command: ["/bin/sh", "-c", "touch {canary}"]\n'
        "tasks:\n"
        "  first: {agent: other, prompt: x}\n"
        "  second: {agent: writer, prompt: x, needs: first}\n"
    )
    write_plan(repo.path / "plait.yaml", text)
    repo.commit("plan")
    # A PATH with git and nothing else: no `claude` anywhere.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("git",):
        target = next(
            Path(d) / program
            for d in os.environ["PATH"].split(os.pathsep)
            if (Path(d) / program).is_file()
        )
        (bin_dir / program).symlink_to(target)
    monkeypatch.setenv("PATH", str(bin_dir))
    result = cli("run", cwd=repo.path)
    assert result.code == 3, result.out + result.err
    assert "claude" in result.err and "writer" in result.err
    assert not canary.exists()
    assert repo.branches("plait/*") == []
    assert (
        not (plait_home / "state.db").exists()
        or json.loads(cli("runs", "--json", cwd=repo.path).out) == []
    )


# --- the run lock -----------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_logs_follow_prints_as_the_agent_writes_and_ends_with_the_attempt(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    script = (
        "import pathlib, sys, time\n"
        f"pathlib.Path({str(started)!r}).write_text('x')\n"
        "for i in range(6):\n"
        "    print(f'line {i}\\r', flush=True); time.sleep(0.25)\n"
    )
    tasks = "  talk:\n    agent: talker\n    prompt: x\n"
    write_plan(
        repo.path / "plait.yaml", plan_with({"talker": [sys.executable, "-c", script]}, tasks)
    )
    running = plait_proc.start("run", cwd=repo.path)
    wait_for(started.exists, 30, "the agent to start")
    run_id = json.loads(plait_proc("runs", "--json", cwd=repo.path).stdout)[0]["run"]
    followed = subprocess.run(
        [sys.executable, "-m", "plait", "logs", run_id, "talk", "--follow"],
        cwd=repo.path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    running.communicate(timeout=60)
    assert followed.returncode == 0, followed.stderr
    # every line, byte for byte as the agent wrote it (carriage returns too), though it
    # began following before most of them were written
    assert followed.stdout == b"".join(b"line %d\r\n" % i for i in range(6))


def test_a_second_run_exits_3_while_one_is_alive_and_takes_over_a_dead_one(
    repo: GitRepo, cli: Cli, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    sleeper = {"sleeper": agent_cmd("sleeper.py")}

    def plan(sleep: str) -> str:
        tasks = (
            f"  nap:\n    agent: sleeper\n    prompt: x\n"
            f'    env: {{SLEEP: "{sleep}", STARTED: "{started}"}}\n'
        )
        return plan_with(sleeper, tasks)

    write_plan(repo.path / "plait.yaml", plan("60"))
    repo.commit("plan")
    first = plait_proc.start("run", cwd=repo.path)
    wait_for(started.exists, 30, "the first run's agent to start")
    first_runs = json.loads(cli("runs", "--json", cwd=repo.path).out)
    assert len(first_runs) == 1
    first_run = first_runs[0]["run"]
    try:
        branches = repo.branches("plait/*")
        worktrees = repo.worktrees()
        assert f"plait/{first_run}" in branches

        second = plait_proc("run", cwd=repo.path, timeout=60)
        assert second.returncode == 3, second.stdout + second.stderr
        assert str(first.pid) in second.stderr, second.stderr
        assert first_run in second.stderr
        # Nothing changed: no new run, no new branch or worktree.
        assert [r["run"] for r in json.loads(cli("runs", "--json", cwd=repo.path).out)] == [
            first_run
        ]
        assert repo.branches("plait/*") == branches
        assert repo.worktrees() == worktrees
        assert first.poll() is None  # the first run goes on

        alive = json.loads(cli("status", "--json", cwd=repo.path).out)
        assert alive["status"] == "running"

        first.kill()  # SIGKILL: no chance to release anything
        first.wait(timeout=30)
        # Its row still says running; status and runs tell the truth.
        dead = cli("status", first_run, cwd=repo.path)
        assert "interrupted" in dead.out and f"plait resume {first_run}" in dead.out
        rows = json.loads(cli("runs", "--json", cwd=repo.path).out)
        assert [r["status"] for r in rows] == ["interrupted"]
        write_plan(repo.path / "plait.yaml", plan("0"))
        third = plait_proc("run", "--json", cwd=repo.path, timeout=60)
        assert third.returncode == 0, third.stdout + third.stderr
        status = json.loads(third.stdout)
        assert status["run"] != first_run
        assert [t["status"] for t in status["tasks"]] == ["succeeded"]
        assert len(json.loads(cli("runs", "--json", cwd=repo.path).out)) == 2
    finally:
        kill_marked(f"{first_run}/", prefix=True)  # the first run's orphaned agent


def test_an_interrupted_run_suggests_resume_and_not_apply(
    repo: GitRepo, cli: Cli, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    tasks = (
        f"  nap:\n    agent: sleeper\n    prompt: x\n"
        f'    env: {{SLEEP: "60", STARTED: "{started}"}}\n'
    )
    write_plan(repo.path / "plait.yaml", plan_with({"sleeper": agent_cmd("sleeper.py")}, tasks))
    running = plait_proc.start("run", cwd=repo.path)
    wait_for(started.exists, 30, "the agent to start")
    run = json.loads(cli("runs", "--json", cwd=repo.path).out)[0]["run"]
    live = cli("status", cwd=repo.path).out  # a task under way shows its time so far
    assert re.search(r"nap\s+running\s+attempts 1\s+\d+\.\ds", live), live
    running.send_signal(signal.SIGTERM)  # as Ctrl-C: the run stops, resumable
    out, err = running.communicate(timeout=60)

    assert running.returncode == 130, out + err
    assert (out + err).count(f"plait resume {run}") == 1, out + err  # said once
    assert "plait apply" not in out + err, out + err
    assert "interrupted" in out
    # its head is not recorded until it ends: status reads it from the branch
    status = json.loads(cli("status", "--json", cwd=repo.path).out)
    assert status["status"] == "interrupted"
    assert status["head"] == repo.head(status["branch"])
    # the agent's time until the interruption was work: the sum counts it
    assert status["totals"]["sequential_s"] > 0
    # asked from outside the repository (PLAIT_HOME names its state), status still reads
    # the branch in the run's own repository, and never calls a resumable run gone
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert json.loads(cli("status", "--json", cwd=elsewhere).out)["head"] == status["head"]
    shown = cli("status", cwd=elsewhere).out
    assert f"plait resume {run}" in shown and "cannot be resumed" not in shown


def test_an_interrupt_outside_the_engine_exits_130_not_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """typer catches a Ctrl-C itself and returns its code: it must reach the shell."""
    import plait.apply
    from plait.cli import main

    async def interrupted(*args: object, **kwargs: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(plait.apply, "clean_runs", interrupted)
    assert main(["clean"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_worktrees_of_state_in_dot_git_live_outside_any_dot_git_folder(
    cli: Cli, repo: GitRepo, data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the state in `<repo>/.git/plait` (the default), agents must not run under a
    `.git` folder: Claude Code asks before every edit there. Their worktrees go to
    `$XDG_DATA_HOME/plait/worktrees/`, and `plait clean` empties that too."""
    monkeypatch.delenv("PLAIT_HOME")
    where = [sys.executable, "-c", "import os; open('where.txt', 'w').write(os.getcwd())"]
    write_plan(
        repo.path / "plait.yaml",
        plan_with({"a": where}, "  t:\n    agent: a\n    prompt: go\n    writes: [where.txt]\n"),
    )
    repo.commit("plan")
    result = cli("run", "--json", cwd=repo.path)
    assert result.code == 0, result.err
    run_id = json.loads(result.out)["run"]
    ran_in = Path(repo.git("show", f"plait/{run_id}:where.txt"))
    assert ".git" not in ran_in.parts
    assert data_home / "plait" / "worktrees" in ran_in.parents
    assert (repo.common_dir / "plait" / "state.db").exists()  # the state stays in .git
    assert any((data_home / "plait" / "worktrees").rglob("*"))  # the pool keeps one

    cleaned = cli("clean", cwd=repo.path)
    assert cleaned.code == 0, cleaned.err
    assert repo.worktrees() == [str(repo.path)]
    assert not [p for p in (data_home / "plait" / "worktrees").rglob("*") if p.is_file()]


def test_without_git_on_path_a_run_exits_3_saying_so(
    repo: GitRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plan(repo.path / "plait.yaml", plan_with({"a": ["true"]}, "  t: {agent: a, prompt: x}\n"))
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = cli("run", cwd=repo.path)
    assert result.code == 3, result.err
    assert "git is not installed, or not on PATH" in result.err
    monkeypatch.delenv("PLAIT_HOME")  # the state is then in .git, which only git finds
    for command in ("status", "runs"):  # not "no runs here": where they are is unknown
        looked = cli(command, cwd=repo.path)
        assert looked.code == 3, (command, looked.err)
        assert "git is not installed, or not on PATH" in looked.err


def test_a_hook_an_agent_wrote_is_put_back_when_the_run_is_interrupted(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """No attempt is collected after a Ctrl-C, yet a hook left in .git would run on the
    user's next commit: the run puts git's own files back as it stops."""
    started = tmp_path / "started"
    script = (
        "import pathlib, subprocess, sys, time\n"
        "common = subprocess.run(['git', 'rev-parse', '--git-common-dir'],"
        " capture_output=True, text=True, check=True).stdout.strip()\n"
        "hook = pathlib.Path(common, 'hooks', 'pre-commit')\n"
        "hook.write_text('#!/bin/sh\\necho pwned\\n'); hook.chmod(0o755)\n"
        "pathlib.Path(sys.argv[1]).write_text('x')\n"
        "time.sleep(60)\n"
    )
    tasks = "  evil:\n    agent: hooker\n    prompt: x\n"
    write_plan(
        repo.path / "plait.yaml",
        plan_with({"hooker": [sys.executable, "-c", script, str(started)]}, tasks),
    )
    running = plait_proc.start("run", cwd=repo.path)
    wait_for(started.exists, 30, "the agent to write its hook")
    assert (repo.common_dir / "hooks" / "pre-commit").exists()
    running.send_signal(signal.SIGTERM)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 130
    assert not (repo.common_dir / "hooks" / "pre-commit").exists()
    assert "put back what an agent changed in git's own files: .git/hooks" in err
