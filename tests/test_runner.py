"""End-to-end tests of the run engine through `plait run`, `plait status` and the library.

Every test runs real processes (small agents in tests/agents/) in a temporary git
repository, with plait's state under tmp_path. Timing bounds are generous except
where the feature *is* timing (the 30-task estimate).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plait
from conftest import AGENTS_DIR, PYTHON, CliResult, PlaitProc, agent_cmd, write_plan
from gitrepo import GitRepo
from plait.agents import fake
from plait.agents.base import AgentRequest
from plait.analysis import analyze
from plait.scheduler import simulate

Cli = Callable[..., CliResult]

SLEEPWRITE = ["/bin/sh", str(AGENTS_DIR / "sleepwrite.sh")]


def status_of(cli: Cli, cwd: Path, run: str | None = None) -> dict[str, Any]:
    """`plait status [RUN] --json`, parsed."""
    result = cli("status", *([run] if run else []), "--json", cwd=cwd)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def by_id(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in status["tasks"]}


# --- 1. 30 command tasks against the plan's estimate -------------------------------------

SLEEPS = [0.5, 0.8, 0.3, 1.0, 0.6, 0.4, 0.9, 0.7, 0.5, 0.3, 0.8, 0.6]


def thirty_task_plan() -> tuple[str, dict[str, list[str]]]:
    """root → 10 fan-out → join → 16 fan-out (each also needs one of the first 10) → final,
    plus one independent task: 30 tasks. Returns the YAML and each task's needs."""
    needs: dict[str, list[str]] = {"root": []}
    firsts = [f"a{i}" for i in range(10)]
    for a in firsts:
        needs[a] = ["root"]
    needs["join"] = list(firsts)
    seconds = [f"b{i}" for i in range(16)]
    for i, b in enumerate(seconds):
        needs[b] = ["join", firsts[i % 10]]
    needs["final"] = list(seconds)
    needs["side"] = []
    assert len(needs) == 30
    sleeps = itertools.cycle(SLEEPS)
    lines = [
        "version: 1",
        "name: thirty",
        "isolation: none",
        "agents:",
        "  sw:",
        "    backend: command",
        f"    command: {json.dumps(SLEEPWRITE)}",
        "tasks:",
    ]
    for task, task_needs in needs.items():
        sleep = 1.0 if task == "side" else next(sleeps)
        lines += [
            f"  {task}:",
            "    agent: sw",
            f"    prompt: write out/{task}.txt",
            f"    needs: {json.dumps(task_needs)}",
            f"    writes: [out/{task}.txt]",
            f"    estimate: {sleep}s",
            f'    env: {{SLEEP: "{sleep}", NEEDS: "{" ".join(task_needs)}"}}',
        ]
    return "\n".join(lines) + "\n", needs


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, delta in points:
        now += delta
        best = max(best, now)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("where", ["folder", "git"])
def test_thirty_tasks_wall_time_matches_the_plan_estimate(
    where: str, repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    """`isolation: none` in a plain folder (the "plain DAG of commands" case), and in a
    git repository, where every attempt also pays two `git status` calls to find what
    it changed."""
    text, needs = thirty_task_plan()
    root = repo.path if where == "git" else tmp_path / "folder"
    write_plan(root / "plait.yaml", text)
    if where == "git":
        repo.commit("plan")

    planned = cli("plan", "--json", "-j", "4", cwd=root)
    assert planned.code == 0, planned.err
    estimate = json.loads(planned.out)["estimate"]
    assert estimate["jobs"] == 4 and estimate["defaulted"] == []

    started = time.monotonic()
    result = cli("run", "-j", "4", "--json", cwd=root)
    outside_wall = time.monotonic() - started
    assert result.code == 0, result.out + result.err

    status = status_of(cli, root)
    assert status["status"] == "succeeded"
    tasks = by_id(status)
    assert set(tasks) == set(needs)
    for task_id, task in tasks.items():
        assert task["status"] == "succeeded", task
        assert task["attempts"] == 1
        assert task["started_at"] is not None and task["finished_at"] is not None
        # its work (its one attempt), within its span (which adds the start and merge)
        span = task["finished_at"] - task["started_at"]
        assert 0 < task["duration_s"] <= span + 1e-6, task
        assert (root / "out" / f"{task_id}.txt").read_text() == f"{task_id}\n"
        if where == "git":  # in place, a task sees what runs beside it change too
            assert f"out/{task_id}.txt" in task["changed_files"]
        # Nothing started before everything it needs had finished (the agent also
        # checks that its needs' files exist, and would fail otherwise).
        for need in needs[task_id]:
            assert tasks[need]["finished_at"] <= task["started_at"] + 1e-3
    intervals = [(t["started_at"], t["finished_at"]) for t in tasks.values()]
    assert max_overlap(intervals) == 4  # the jobs limit, and it was used

    wall = status["wall_s"]
    plan = plait.load_plan(root / "plait.yaml")
    analysis = analyze(plan, jobs=4)
    sleeps = {t: float(plan.tasks[t].env["SLEEP"]) for t in tasks}
    measured = {t: tasks[t]["duration_s"] for t in tasks}
    overhead = sum(measured[t] - sleeps[t] for t in tasks) / len(tasks)
    ideal = simulate(measured, analysis.needs, analysis.exclusive, analysis.priority, 4).makespan
    with_overhead = simulate(
        {t: s + overhead for t, s in sleeps.items()},
        analysis.needs,
        analysis.exclusive,
        analysis.priority,
        4,
    ).makespan
    print(
        f"\n30 tasks -j 4 ({where}): estimate parallel_s={estimate['parallel_s']:.2f} "
        f"sequential_s={estimate['sequential_s']:.2f}; wall_s={wall:.2f} "
        f"({wall / estimate['parallel_s'] - 1:+.1%}; CLI call {outside_wall:.2f}); "
        f"per-task overhead mean {overhead * 1000:.0f} ms; estimate + overhead "
        f"{with_overhead:.2f}; re-simulated with measured durations {ideal:.2f}"
    )
    # The runner loses no time between tasks: the same schedule replayed with the
    # measured durations takes as long as the run did.
    assert abs(wall - ideal) <= 0.15 * ideal, (wall, ideal)
    if where == "folder":
        # The plan's estimate (sleeps only) holds, plait's own per-task cost included.
        assert abs(wall - estimate["parallel_s"]) <= 0.15 * estimate["parallel_s"]
    else:
        # In a repository each task also pays for the checkout's status; with that
        # measured per-task cost added to every estimate, the same 15% holds.
        assert abs(wall - with_overhead) <= 0.15 * with_overhead


# --- 4. retries, outputs, exclusivity, ports, environment --------------------------------


def plan_text(name: str, agents: dict[str, list[str]], tasks: str, extra: str = "") -> str:
    lines = [f"version: 1\nname: {name}\n{extra}agents:"]
    for agent, argv in agents.items():
        lines += [f"  {agent}:", "    backend: command", f"    command: {json.dumps(argv)}"]
    return "\n".join(lines) + "\ntasks:\n" + tasks


def test_retry_gets_the_failure_in_its_prompt(repo: GitRepo, cli: Cli, tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    tasks = (
        "  flaky:\n    agent: flaky\n    prompt: |\n      Fix the build.\n"
        f'    retries: 1\n    writes: [flaky.txt]\n    env: {{REC_DIR: "{rec}"}}\n'
        f'  no-retry:\n    agent: flaky\n    prompt: once\n    env: {{REC_DIR: "{rec}"}}\n'
    )
    write_plan(
        repo.path / "plait.yaml", plan_text("retry", {"flaky": agent_cmd("flaky.py")}, tasks)
    )
    repo.commit("plan")
    result = cli("run", "--json", cwd=repo.path)
    assert result.code == 1  # no-retry fails for good
    tasks_by_id = by_id(json.loads(result.out))
    assert (tasks_by_id["flaky"]["status"], tasks_by_id["flaky"]["attempts"]) == ("succeeded", 2)
    assert tasks_by_id["flaky"]["changed_files"] == ["flaky.txt"]
    assert (tasks_by_id["no-retry"]["status"], tasks_by_id["no-retry"]["attempts"]) == ("failed", 1)
    first = (rec / "flaky.1.prompt").read_text()
    second = (rec / "flaky.2.prompt").read_text()
    assert first == "Fix the build.\n"
    assert second.startswith("Fix the build.\n\n## Note from plait")
    assert "flaky-failure-flaky: disk on fire" in second
    assert "exited with code 1" in second
    assert not (rec / "flaky.3.prompt").exists()
    # The store has both attempts, and `plait logs` shows each one's own output.
    run_id = json.loads(result.out)["run"]
    log1 = cli("logs", run_id, "flaky", "--attempt", "1", cwd=repo.path)
    log2 = cli("logs", run_id, "flaky", cwd=repo.path)
    assert "disk on fire" in log1.out and "fixed on attempt 2" in log2.out
    assert "disk on fire" not in log2.out


def test_output_file_wins_over_stdout_and_flows_into_templates(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    tee = {"tee": agent_cmd("tee_stdin.py")}
    tasks = (
        f'  up:\n    agent: tee\n    prompt: x\n    env: {{DEST: "{tmp_path / "up"}", '
        'SAY: "said on stdout", OUTPUT: "written to PLAIT_OUTPUT_FILE"}\n'
        f'  plain:\n    agent: tee\n    prompt: x\n    env: {{DEST: "{tmp_path / "plain"}", '
        'SAY: "only stdout"}\n'
        "  down:\n    agent: tee\n"
        '    prompt: "up={{ tasks.up.output }};plain={{ tasks.plain.output }}"\n'
        f'    env: {{DEST: "{tmp_path / "down"}"}}\n'
    )
    write_plan(repo.path / "plait.yaml", plan_text("outputs", tee, tasks))
    repo.commit("plan")
    result = cli("run", "--json", cwd=repo.path)
    assert result.code == 0, result.err
    tasks_by_id = by_id(json.loads(result.out))
    assert tasks_by_id["up"]["output"] == "written to PLAIT_OUTPUT_FILE"
    assert tasks_by_id["plain"]["output"] == "only stdout"
    assert (tmp_path / "down").read_text() == "up=written to PLAIT_OUTPUT_FILE;plain=only stdout"


def test_exclusive_tasks_never_overlap_ports_differ_env_is_minimal(
    repo: GitRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter3")
    rec = tmp_path / "rec"
    tasks = ""
    for i in range(4):  # all write under shared/: exclusive with each other
        tasks += (
            f"  ex{i}:\n    agent: stamp\n    prompt: x\n    writes: [shared/**]\n"
            f'    env: {{SLEEP: "0.4", FILE: "shared/ex{i}.txt", REC_DIR: "{rec}"}}\n'
        )
    for i in range(3):  # disjoint: free to run beside anything
        tasks += (
            f"  par{i}:\n    agent: stamp\n    prompt: x\n    writes: [par{i}/**]\n"
            f'    env: {{SLEEP: "0.8", FILE: "par{i}/out.txt", REC_DIR: "{rec}"}}\n'
        )
    write_plan(repo.path / "plait.yaml", plan_text("excl", {"stamp": agent_cmd("stamp.py")}, tasks))
    repo.commit("plan")
    planned = json.loads(cli("plan", "--json", cwd=repo.path).out)
    pairs = {tuple(sorted(x["tasks"])) for x in planned["exclusive"]}
    assert pairs == {(f"ex{a}", f"ex{b}") for a in range(4) for b in range(a + 1, 4)}

    result = cli("run", "-j", "4", "--json", cwd=repo.path)
    assert result.code == 0, result.err
    status = json.loads(result.out)
    assert all(t["status"] == "succeeded" for t in status["tasks"])
    records = {p.stem: json.loads(p.read_text()) for p in rec.glob("*.json")}
    assert len(records) == 7
    ex = sorted((records[f"ex{i}"]["start"], records[f"ex{i}"]["end"]) for i in range(4))
    for (_, end), (start, _) in itertools.pairwise(ex):
        assert end <= start, ex
    # Parallelism was real: something ran beside each exclusive task.
    spans = {name: (r["start"], r["end"]) for name, r in records.items()}
    assert max_overlap(list(spans.values())) >= 3
    # Every pair of tasks that ran at the same time had different port leases.
    for a, b in itertools.combinations(records, 2):
        (s1, e1), (s2, e2) = spans[a], spans[b]
        if s1 < e2 and s2 < e1:
            pa, pb = (int(records[x]["env"]["PLAIT_PORT_BASE"]) for x in (a, b))
            assert abs(pa - pb) >= 10, (a, b, pa, pb)
    # The environment: the allowlist, the plait variables and the plan's env; nothing else.
    from plait.proc import ENV_ALLOWLIST

    allowed = {*ENV_ALLOWLIST, "SLEEP", "FILE", "REC_DIR", "LC_CTYPE"}
    for name, record in records.items():
        env = record["env"]
        assert "SECRET_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert not any(k.startswith("GIT_") for k in env), name
        extra = {k for k in env if k not in allowed and not k.startswith("PLAIT_")}
        assert extra == set(), (name, extra)
        assert env["PLAIT_TASK_ID"] == name and env["PLAIT_RUN_ID"] == status["run"]
        assert env["PLAIT_ATTEMPT"] == "1"
        assert env["PLAIT_MARKER"].startswith(f"{status['run']}/{name}/")
        assert Path(env["PLAIT_WORKSPACE"]) == Path(record["cwd"])
        assert Path(record["cwd"]) != repo.path  # a worktree of its own
    # Every task's file reached the integration branch.
    files = repo.git("ls-tree", "-r", "--name-only", status["branch"]).split()
    assert {f"shared/ex{i}.txt" for i in range(4)} <= set(files)
    assert {f"par{i}/out.txt" for i in range(3)} <= set(files)


# --- 7. the library API ---------------------------------------------------------------


def test_run_plan_with_python_agents_and_a_template_edge(
    repo: GitRepo, plait_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str] = {}

    def architect(request: AgentRequest) -> str:
        (request.workspace / "api.md").write_text("GET /users\n")
        return "contract: GET /users returns a list"

    def frontend(request: AgentRequest) -> None:
        seen["prompt"] = request.prompt
        (request.workspace / "ui.txt").write_text("list of users\n")
        request.output_file.write_text("ui done")

    contract = plait.Task(
        "contract", prompt="Write the API.", agent="architect", writes=("api.md",)
    )
    ui = plait.Task("ui", prompt=f"Build the UI for:\n{contract.output}", agent="frontend")
    plan = plait.Plan(
        tasks=[contract, ui],
        agents={
            "architect": plait.Agent("architect", backend="python", function=architect),
            "frontend": plait.Agent("frontend", backend="python", function=frontend),
        },
        root=repo.path,
    )
    edges = {(e.source, e.target, e.reason) for e in analyze(plan).edges}
    assert edges == {("contract", "ui", "template")}
    monkeypatch.chdir(repo.path)
    result = plait.run_plan(plan, jobs=2, home=plait_home)
    assert result.exit_code == 0, result.messages
    assert result.status == "succeeded"
    assert result.outcomes == {"contract": plait.Outcome.SUCCEEDED, "ui": plait.Outcome.SUCCEEDED}
    assert seen["prompt"] == "Build the UI for:\ncontract: GET /users returns a list"
    assert result.outputs == {"contract": "contract: GET /users returns a list", "ui": "ui done"}
    branch = f"plait/{result.run_id}"
    assert repo.show(branch, "api.md") == "GET /users\n"
    assert repo.show(branch, "ui.txt") == "list of users\n"


def test_run_plan_with_the_fake_backend(repo: GitRepo, plait_home: Path) -> None:
    a = plait.Task("a", prompt="make a", agent="bot", retries=1, writes=("a.txt",))
    b = plait.Task("b", prompt=f"use {a.output} and {a.ref('changed_files')}", agent="bot")
    c = plait.Task("c", prompt="fails", agent="bot", needs=("a",))
    d = plait.Task("d", prompt="after c", agent="bot", needs=("c",))
    plan = plait.Plan(
        tasks=[a, b, c, d], agents=[plait.Agent("bot", backend="fake")], root=repo.path
    )
    script = {
        "a": [fake.fail("flaked"), fake.ok("A's result", files={"a.txt": "a\n"})],
        "b": fake.ok("B", files={"b.txt": "b\n"}),
        "c": fake.fail("no"),
    }
    with fake.scripted(script) as backend:
        result = plait.run_plan(plan, jobs=2, home=plait_home)
    assert result.exit_code == 1
    assert result.outcomes == {
        "a": plait.Outcome.SUCCEEDED,
        "b": plait.Outcome.SUCCEEDED,
        "c": plait.Outcome.FAILED,
        "d": plait.Outcome.SKIPPED,
    }
    assert backend.attempts("a") == 2 and backend.attempts("d") == 0
    prompts = {(c.request.task_id, c.request.attempt): c.request.prompt for c in backend.calls}
    assert prompts[("a", 1)] == "make a"
    assert prompts[("a", 2)].startswith("make a\n\n## Note from plait")
    assert "flaked" in prompts[("a", 2)]
    assert prompts[("b", 1)] == "use A's result and a.txt"
    assert result.outputs["a"] == "A's result"
    assert repo.show(f"plait/{result.run_id}", "b.txt") == "b\n"


# --- status while agents run --------------------------------------------------------

#: Writes $WRITE, then (with $HOLD) says it started and waits for the test's go, then
#: exits $EXIT.
HOLDING_AGENT = """\
import os, pathlib, sys, time
sys.stdin.read()
if os.environ.get("WRITE"):
    pathlib.Path(os.environ["WRITE"]).write_text("done\\n")
hold = os.environ.get("HOLD")
if hold:
    pathlib.Path(hold + ".started").touch()
    deadline = time.monotonic() + 60
    while not os.path.exists(hold + ".go") and time.monotonic() < deadline:
        time.sleep(0.05)
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def test_status_shows_tasks_ended_while_others_still_run(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """A task's end is committed when it ends, not when the next task starts: another
    process (`plait status`) sees it while a long agent runs and nothing else starts."""
    script = tmp_path / "agent.py"
    script.write_text(HOLDING_AGENT, encoding="utf-8")
    hold = tmp_path / "long"
    tasks = (
        "  quick: {agent: a, prompt: x, writes: [quick.txt], env: {WRITE: quick.txt}}\n"
        "  broken: {agent: a, prompt: x, env: {EXIT: '1'}}\n"
        f"  long: {{agent: a, prompt: x, env: {{HOLD: '{hold}'}}}}\n"
        "  after-both: {agent: a, prompt: x, needs: [quick, long]}\n"
        "  after-broken: {agent: a, prompt: x, needs: [broken]}\n"
    )
    write_plan(repo.path / "plait.yaml", plan_text("live", {"a": [PYTHON, str(script)]}, tasks))
    run = plait_proc.start("run", "--json", "-j", "4", cwd=repo.path)
    deadline = time.monotonic() + 60
    while not (tmp_path / "long.started").exists():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)
    expected = {
        "quick": "succeeded",
        "broken": "failed",
        "long": "running",
        "after-both": "pending",
        "after-broken": "skipped",
    }
    seen: dict[str, Any] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done = plait_proc("status", "--json", cwd=repo.path)
        assert done.returncode == 0, done.stderr
        seen = by_id(json.loads(done.stdout))
        if {t: v["status"] for t, v in seen.items()} == expected:
            break
        time.sleep(0.2)
    (tmp_path / "long.go").touch()  # the long agent ends only after this: status saw it run
    assert {t: v["status"] for t, v in seen.items()} == expected
    assert seen["quick"]["merged"] is True and seen["quick"]["changed_files"] == ["quick.txt"]
    assert seen["after-broken"]["error"] == "needs broken"
    out, err = run.communicate(timeout=60)
    assert run.returncode == 1, err
    final = by_id(json.loads(out))
    assert final["after-both"]["status"] == "succeeded"
