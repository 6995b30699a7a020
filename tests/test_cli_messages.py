"""What the command line says where a first-time user following the README meets it:
the starter plan's advice, `runs` with no runs, `init --backend`, `agents` with a
relative program, `logs` of a task the run does not have, `--version`, event lines,
and the end of a run that merged nothing.

Every command runs for real (`plait.cli.main` in-process, or `python -m plait`) in
git repositories made under tmp_path.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from conftest import CliResult, PlaitProc, write_plan
from gitrepo import GitRepo
from plait.eventline import format_event_line
from plait.planfile import parse_plan
from plait.starter import STARTER_PLAN

Cli = Callable[..., CliResult]


def command_plan(agents: dict[str, list[str]], tasks: str) -> str:
    lines = ["version: 1", "name: msg", "agents:"]
    for name, argv in agents.items():
        lines += [f"  {name}:", "    backend: command", f"    command: {json.dumps(argv)}"]
    return "\n".join(lines) + "\ntasks:\n" + tasks


# --- the starter plan -------------------------------------------------------------------


def _follow_the_starter_advice(text: str) -> str:
    """The starter plan edited as its comment says: the example lines, uncommented, in
    place of every line under `scribe:` down to `tasks:`."""
    lines = text.splitlines()
    advice = next(i for i, line in enumerate(lines) if line.endswith("with, e.g.:"))
    example = []
    for line in lines[advice + 1 :]:
        if not line.startswith("  #   "):
            break
        example.append("    " + line[len("  #   ") :])
    assert example, "the comment shows the lines to put in"
    start = lines.index("  scribe:") + 1
    end = lines.index("tasks:")
    return "\n".join([*lines[:start], *example, "", *lines[end:]]) + "\n"


def test_the_starter_plans_advice_gives_a_real_agent(tmp_path: Path) -> None:
    edited = _follow_the_starter_advice(STARTER_PLAN)
    plan = parse_plan(edited, root=tmp_path)
    scribe = plan.agents["scribe"]
    assert (scribe.backend, scribe.model) == ("claude", "sonnet")
    assert scribe.command is None
    assert "careful engineer" in (scribe.instructions or "")
    # The comment names the whole command entry, not "two lines" (replacing only
    # `backend:` and `command:` left its list to fold into `model:`).
    advice = STARTER_PLAN[STARTER_PLAN.index("To use a real coding agent") :]
    advice = advice[: advice.index("  scribe:")]
    assert "two lines" not in advice
    assert "`command:` entry" in advice


def test_the_starter_plan_runs_as_written(cli: Cli, repo: GitRepo) -> None:
    assert cli("init", cwd=repo.path).code == 0
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "plait init")
    ran = cli("run", "--json", cwd=repo.path)
    assert ran.code == 0, ran.err
    data = json.loads(ran.out)
    assert {t["id"]: t["status"] for t in data["tasks"]} == dict.fromkeys(
        ("contract", "server", "client", "tests"), "succeeded"
    )
    assert data["verify"]["ok"] is True


# --- runs -------------------------------------------------------------------------------


def test_runs_with_no_runs_says_so_and_succeeds(cli: Cli, repo: GitRepo) -> None:
    text = cli("runs", cwd=repo.path)
    assert (text.code, text.out.strip(), text.err) == (0, "no runs yet", "")
    as_json = cli("runs", "--json", cwd=repo.path)
    assert as_json.code == 0 and json.loads(as_json.out) == []
    # Asking for one run's state when there is none is still an error.
    status = cli("status", cwd=repo.path)
    assert status.code == 2 and "no plait runs" in status.err


# --- init --backend ---------------------------------------------------------------------


def test_init_backend_command_explains_what_init_writes(cli: Cli, repo: GitRepo) -> None:
    result = cli("init", "--backend", "command", cwd=repo.path)
    assert result.code == 2
    assert "is not a backend" not in result.err
    assert "init writes agent profiles for the coding-agent CLIs" in result.err
    assert "claude, codex" in result.err
    assert not (repo.path / "plait.yaml").exists()
    unknown = cli("init", "--backend", "nosuch", cwd=repo.path)
    assert unknown.code == 2 and "'nosuch' is not a backend; use one of claude" in unknown.err


# --- agents with a relative program -----------------------------------------------------

RELATIVE = command_plan(
    {"here": ["./tools/run.sh"], "later": ["./tools/made-by-setup.sh"]},
    "  a: {agent: here, prompt: x}\n  b: {agent: later, prompt: y}\n",
)


def test_agents_resolves_a_relative_program_where_the_agent_runs(cli: Cli, repo: GitRepo) -> None:
    tool = repo.path / "tools" / "run.sh"
    write_plan(tool, "#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    write_plan(repo.path / "plait.yaml", RELATIVE)
    sub = repo.path / "sub"
    sub.mkdir()
    text = cli("agents", cwd=sub)  # from a subfolder: ./tools is not here
    assert text.code == 0, text.err
    assert "not installed" not in text.out
    line = next(x for x in text.out.splitlines() if x.startswith("here "))
    assert "relative to each task's workspace" in line and str(tool) in line
    assert line.rstrip().endswith("ok")
    later = next(x for x in text.out.splitlines() if x.startswith("later "))
    assert f"not in {repo.path} yet" in later
    rows = {r["role"]: r for r in json.loads(cli("agents", "--json", cwd=sub).out)}
    assert (rows["here"]["installed"], rows["here"]["path"]) == (True, str(tool))
    assert (rows["later"]["installed"], rows["later"]["path"]) == (False, None)


# --- logs of a task the run does not have -----------------------------------------------


def test_logs_of_an_unknown_task_lists_the_runs_tasks(cli: Cli, repo: GitRepo) -> None:
    ok = [sys.executable, "-c", "pass"]
    tasks = "  first: {agent: a, prompt: x}\n  second: {agent: a, prompt: y}\n"
    write_plan(repo.path / "plait.yaml", command_plan({"a": ok}, tasks))
    repo.commit("plan")
    ran = cli("run", "--json", cwd=repo.path)
    assert ran.code == 0, ran.err
    run_id = json.loads(ran.out)["run"]
    result = cli("logs", run_id, "nosuch", cwd=repo.path)
    assert result.code == 2
    assert f"run {run_id} has no task 'nosuch'; its tasks: first, second" in result.err
    assert "no attempts" not in result.err


def test_logs_of_a_task_that_never_started(cli: Cli, repo: GitRepo) -> None:
    fail = [sys.executable, "-c", "import sys; sys.exit(1)"]
    tasks = "  broken: {agent: f, prompt: x}\n  after: {agent: f, prompt: y, needs: broken}\n"
    write_plan(repo.path / "plait.yaml", command_plan({"f": fail}, tasks))
    repo.commit("plan")
    run_id = json.loads(cli("run", "--json", cwd=repo.path).out)["run"]
    result = cli("logs", run_id, "after", cwd=repo.path)
    assert result.code == 2
    assert "task 'after' of run" in result.err and "has no attempts" in result.err
    assert "(it is skipped)" in result.err


# --- --version --------------------------------------------------------------------------


def test_version_prints_the_packages_version(plait_proc: PlaitProc, tmp_path: Path) -> None:
    done = plait_proc("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"plait {version('plait')}"
    assert re.fullmatch(r"plait \d+\.\d+\S*", done.stdout.strip())


def test_version_in_process(cli: Cli, tmp_path: Path) -> None:
    result = cli("--version", cwd=tmp_path)
    assert (result.code, result.out.strip()) == (0, f"plait {version('plait')}")


# --- event lines ------------------------------------------------------------------------


def test_merged_event_counts_files_in_the_singular_and_plural() -> None:
    base = {"t": 0.0, "task": "api", "kind": "merged", "commit": "0123456789abcdef"}
    assert format_event_line({**base, "files": ["a"]}).endswith("merged 0123456789 (1 file)")
    assert format_event_line({**base, "files": ["a", "b"]}).endswith("(2 files)")
    assert format_event_line({**base, "files": []}).endswith("(0 files)")


# --- the end of a run -------------------------------------------------------------------


def test_a_run_that_merged_nothing_does_not_suggest_apply(cli: Cli, repo: GitRepo) -> None:
    fail = [sys.executable, "-c", "import sys; sys.exit(1)"]
    write_plan(repo.path / "plait.yaml", command_plan({"f": fail}, "  t: {agent: f, prompt: x}\n"))
    repo.commit("plan")
    ran = cli("run", cwd=repo.path)
    assert ran.code == 1
    assert "plait apply" not in ran.out
    assert "nothing was merged" in ran.out
    assert "`plait report " in ran.out


def test_a_run_that_merged_something_suggests_apply(cli: Cli, repo: GitRepo) -> None:
    write = [sys.executable, "-c", "open('made.txt', 'w').write('x')"]
    write_plan(repo.path / "plait.yaml", command_plan({"w": write}, "  t: {agent: w, prompt: x}\n"))
    repo.commit("plan")
    ran = cli("run", cwd=repo.path)
    assert ran.code == 0, ran.err
    run_id = re.search(r"run (\S+) \(msg\)", ran.out)
    assert run_id is not None, ran.out
    assert f"`plait apply {run_id.group(1)}` to merge" in ran.out
    assert "nothing was merged" not in ran.out


# --- help -------------------------------------------------------------------------------


def test_optional_arguments_are_bracketed_once_in_the_usage_line(cli: Cli, tmp_path: Path) -> None:
    for command, argument in (("status", "RUN"), ("resume", "RUN"), ("report", "RUN"),
                              ("clean", "RUN"), ("plan", "PLAN"), ("run", "PLAN")):  # fmt: skip
        shown = cli(command, "-h", cwd=tmp_path)
        assert shown.code == 0
        assert f"[OPTIONS] [{argument}]" in shown.out and "[[" not in shown.out, shown.out
