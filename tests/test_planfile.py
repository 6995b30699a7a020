"""Valid plans load into the right dataclasses; the schema; Python-built plans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from plait.errors import PlanError
from plait.model import Agent, Fixer, Isolation, Permission, Plan, ScopePolicy, Task
from plait.planfile import (
    MAX_PLAN_BYTES,
    check_plan,
    load_plan,
    parse_duration,
    parse_plan,
    plan_json_schema,
    validate_plan,
)
from plait.starter import STARTER_PLAN

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

FULL = textwrap.dedent(
    """\
    version: 1
    name: oauth-login
    base: main
    jobs: 6
    defaults:
      agent: backend-engineer
      timeout: 30m
      retries: 1
      env: {LOG_LEVEL: debug}
    setup:
      - ["npm", "ci"]
      - make deps
    copy: [".env"]
    verify: pytest -q
    verify_each_merge: true
    on_verify_failure:
      prompt: Fix the failing tests.
    max_conflict_reruns: 3
    scope: warn
    isolation: worktree
    budget_usd: 12.5
    agents:
      architect:
        backend: claude
        model: opus
        instructions: You design APIs.
        tools: Read, Grep, Write
        permission: read
      backend-engineer:
        backend: codex
        args: ["--full-auto"]
        env: {PORT: 8080, DEBUG: true}
      scripted:
        command: ["python3", "tools/agent.py"]
    tasks:
      contract:
        agent: architect
        prompt: Define the API contract in docs/api.md.
        writes: [docs/api.md]
        estimate: 90
      schema:
        prompt: Create the users table migration.
        writes: ["db/**"]
        timeout: 1h30m
        retries: 0
        estimate: 5m
      oauth-service:
        needs: schema
        prompt: |
          Implement the OAuth service. The contract:
          {{ tasks.contract.output }}
        writes: ["src/services/auth/**"]
        reads: ["db/**"]
        verify: ["pytest", "-q", "tests/services"]
        output: build/summary.md
        continue_on_error: true
        env: {LOG_LEVEL: info, EXTRA: "1"}
      login-ui:
        agent: scripted
        prompt_file: prompts/login-ui.md
        writes: ["src/components/auth/**"]
    """
)


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def full_plan(tmp_path: Path) -> Plan:
    write(tmp_path, "prompts/login-ui.md", "Build the login form.\n")
    return load_plan(write(tmp_path, "plait.yaml", FULL))


def test_top_level_fields(full_plan: Plan, tmp_path: Path) -> None:
    plan = full_plan
    assert plan.version == 1
    assert plan.name == "oauth-login"
    assert plan.base == "main"
    assert plan.jobs == 6
    assert plan.setup == (("npm", "ci"), ("/bin/sh", "-c", "make deps"))
    assert plan.copy == (".env",)
    assert plan.verify == ("/bin/sh", "-c", "pytest -q")
    assert plan.verify_each_merge is True
    # The fixer has no settings of its own: it takes defaults' agent, timeout, retries
    # and env, as a task would; the plan's verify takes defaults.timeout.
    assert plan.on_verify_failure == Fixer(
        agent="backend-engineer",
        prompt="Fix the failing tests.",
        timeout_s=1800.0,
        retries=1,
        env={"LOG_LEVEL": "debug"},
    )
    assert plan.verify_timeout_s == 1800.0
    assert plan.max_conflict_reruns == 3
    assert plan.scope is ScopePolicy.WARN
    assert plan.isolation is Isolation.WORKTREE
    assert plan.budget_usd == 12.5
    assert plan.path == (tmp_path / "plait.yaml").resolve()
    assert plan.root == tmp_path.resolve()
    assert list(plan.tasks) == ["contract", "schema", "oauth-service", "login-ui"]


def test_agents(full_plan: Plan) -> None:
    architect = full_plan.agents["architect"]
    assert architect == Agent(
        name="architect",
        backend="claude",
        model="opus",
        instructions="You design APIs.",
        tools=("Read", "Grep", "Write"),
        permission=Permission.READ,
        source="plan",
    )
    engineer = full_plan.agents["backend-engineer"]
    assert engineer.backend == "codex"
    assert engineer.args == ("--full-auto",)
    assert engineer.env == {"PORT": "8080", "DEBUG": "true"}  # scalars become strings
    assert engineer.permission is Permission.EDIT
    scripted = full_plan.agents["scripted"]
    assert scripted.backend == "command"  # implied by `command`
    assert scripted.command == ("python3", "tools/agent.py")


def test_tasks_with_defaults_applied(full_plan: Plan) -> None:
    contract = full_plan.tasks["contract"]
    assert contract.agent == "architect"
    assert contract.writes == ("docs/api.md",)
    assert contract.timeout_s == 1800.0 and contract.retries == 1  # from defaults
    assert contract.estimate_s == 90.0
    assert contract.env == {"LOG_LEVEL": "debug"}
    assert contract.line == 36

    schema = full_plan.tasks["schema"]
    assert schema.agent == "backend-engineer"  # defaults.agent
    assert schema.timeout_s == 5400.0 and schema.retries == 0  # the task's own wins
    assert schema.estimate_s == 300.0

    service = full_plan.tasks["oauth-service"]
    assert service.needs == ("schema",)  # a single id becomes a tuple
    assert service.reads == ("db/**",)
    assert service.verify == ("pytest", "-q", "tests/services")
    assert service.output_file == "build/summary.md"
    assert service.continue_on_error is True
    assert service.env == {"LOG_LEVEL": "info", "EXTRA": "1"}  # a task's env replaces defaults'
    assert service.prompt.startswith("Implement the OAuth service.")
    assert "{{ tasks.contract.output }}" in service.prompt
    assert service.prompt_file is None

    ui = full_plan.tasks["login-ui"]
    assert ui.prompt == "Build the login form.\n"
    assert ui.prompt_file == "prompts/login-ui.md"
    assert ui.agent == "scripted"
    assert isinstance(ui, Task)


def test_without_defaults_the_fixer_and_verify_have_no_settings(tmp_path: Path) -> None:
    text = (
        "verify: make check\n"
        "on_verify_failure: {agent: a, prompt: fix}\n"
        "agents: {a: {backend: command, command: [sh]}}\n"
        "tasks:\n  t: {agent: a, prompt: x, timeout: 5m, retries: 2, env: {K: v}}\n"
    )
    plan = parse_plan(text, root=tmp_path)
    # A task's own settings are its own: they give the fixer nothing.
    assert plan.on_verify_failure == Fixer(agent="a", prompt="fix")
    assert plan.verify_timeout_s is None


def test_a_default_prompt_file_yields_to_a_task_prompt(tmp_path: Path) -> None:
    write(tmp_path, "common.md", "Shared prompt.")
    text = textwrap.dedent(
        """\
        defaults: {agent: a, prompt_file: common.md}
        agents: {a: {command: [agent]}}
        tasks:
          one: {prompt: Own prompt.}
          two: {}
        """
    )
    plan = parse_plan(text, root=tmp_path)
    assert plan.tasks["one"].prompt == "Own prompt."
    assert plan.tasks["one"].prompt_file is None
    assert plan.tasks["two"].prompt == "Shared prompt."
    assert plan.tasks["two"].prompt_file == "common.md"
    assert plan.name == "plan"  # no name, no file
    assert plan.path is None and plan.root == tmp_path


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1d", 86400.0),
        ("2h5m10s", 7510.0),
        ("0.5h", 1800.0),
    ],
)
def test_parse_duration(given: str | float, seconds: float) -> None:
    assert parse_duration(given) == seconds


@pytest.mark.parametrize("given", ["", "m", "5x", "30m2h", "soon", "1 hour"])
def test_parse_duration_refuses(given: str) -> None:
    with pytest.raises(ValueError, match="90s, 30m"):
        parse_duration(given)


def test_agents_from_profile_files_count_as_known(tmp_path: Path) -> None:
    write(tmp_path, ".claude/agents/frontend-engineer.md", "---\nname: frontend-engineer\n---\nHi")
    write(tmp_path, ".plait/agents/scripted.md", "---\nbackend: command\ncommand: [x]\n---\n")
    text = "tasks:\n  a: {agent: frontend-engineer, prompt: x}\n  b: {agent: scripted, prompt: y}\n"
    plan = parse_plan(text, root=tmp_path)
    assert plan.tasks["a"].agent == "frontend-engineer"
    assert plan.agents == {}  # only names are checked here; profiles load when agents run
    with pytest.raises(PlanError) as raised:
        parse_plan(text.replace("scripted", "scriptd"), root=tmp_path)
    assert "did you mean 'scripted'" in str(raised.value)


def test_parse_plan_names_the_file_in_errors(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as raised:
        parse_plan("tasks:\n  a: {prompt: x}\n", file="inline.yaml", root=tmp_path)
    assert raised.value.file == "inline.yaml"
    assert "inline.yaml:2:3: tasks.a.agent: no agent" in str(raised.value)


def test_starter_plan_is_valid(tmp_path: Path) -> None:
    plan = parse_plan(STARTER_PLAN, file="plait.yaml", root=tmp_path)
    assert list(plan.tasks) == ["contract", "server", "client", "tests"]
    assert all(t.agent == "scribe" for t in plan.tasks.values())
    assert plan.tasks["client"].needs == ("contract",)
    assert plan.tasks["tests"].needs == ("contract",)
    assert "{{ tasks.contract.output }}" in plan.tasks["server"].prompt
    assert plan.agents["scribe"].backend == "command"
    assert all(t.estimate_s for t in plan.tasks.values())
    # Every line of the starter is either YAML or a comment that explains it.
    assert STARTER_PLAN.count("#") >= 25


def test_starter_agent_runs_without_any_api_key(tmp_path: Path) -> None:
    plan = parse_plan(STARTER_PLAN, root=tmp_path)
    command = plan.agents["scribe"].command
    assert command is not None and command[0] == "python3"
    env = {"PATH": os.environ["PATH"], "PLAIT_TASK_ID": "contract"}
    argv = [sys.executable, *command[1:]]  # the venv's python3, to be sure it exists
    done = subprocess.run(
        argv,
        input="Write the contract.",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (tmp_path / "notes" / "contract.md").read_text() == "Write the contract."
    assert "notes/contract.md" in done.stdout
    assert plan.tasks["contract"].writes == ("notes/contract.md",)


EXPECTED_EXAMPLES = {
    "login.yaml": {
        "contract": (),
        "login-ui": (),
        "auth-service": ("contract",),
        "auth-tests": (),
    },
    "checkout.yaml": {
        "architecture": (),
        "checkout-ui": (),
        "payment-api": (),
        "email-notifications": (),
        "order-processing": ("payment-api", "email-notifications"),
    },
    "dashboard.yaml": {
        "layout": (),
        **{
            f"{w}-widget": ()
            for w in ("analytics", "activity", "notifications", "profile", "settings")
        },
    },
    "user-crud.yaml": {
        "schema": (),
        "migration": (),
        "repository": ("migration",),
        "repository-tests": ("migration",),
        "service": ("repository",),
        "service-tests": ("repository",),
        "controller": ("service",),
        "integration-tests": ("service",),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED_EXAMPLES))
def test_examples_load(name: str) -> None:
    plan = load_plan(EXAMPLES / name)
    assert {t: task.needs for t, task in plan.tasks.items()} == EXPECTED_EXAMPLES[name]
    for task in plan.tasks.values():
        assert task.writes, f"{name}: {task.id} should declare what it writes"
        assert task.estimate_s, f"{name}: {task.id} should have an estimate"
        assert task.agent in plan.agents


def test_example_edges_beyond_needs() -> None:
    login = load_plan(EXAMPLES / "login.yaml")
    # The prompt file carries the template reference that orders login-ui.
    assert login.tasks["login-ui"].prompt_file == "prompts/login-ui.md"
    assert "{{ tasks.contract.output }}" in login.tasks["login-ui"].prompt
    assert login.tasks["auth-tests"].reads == ("docs/api/auth.md",)
    dashboard = load_plan(EXAMPLES / "dashboard.yaml")
    assert dashboard.tasks["layout"].reads == ()  # it opts out of defaults.reads
    assert dashboard.tasks["profile-widget"].reads == ("src/dashboard/layout/**",)


# ---------------------------------------------------------------- the schema


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        for option in node.get("anyOf", []):
            if "$ref" in option:
                return _resolve(schema, option)
        return node
    assert ref.startswith("#/$defs/")
    resolved: dict[str, Any] = schema["$defs"][ref.split("/")[-1]]
    return resolved


def test_schema_shape_and_fields() -> None:
    schema = plan_json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "plait plan"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["tasks"]
    top = schema["properties"]
    assert set(top) == {
        "version",
        "name",
        "base",
        "jobs",
        "defaults",
        "setup",
        "copy",
        "verify",
        "verify_each_merge",
        "on_verify_failure",
        "max_conflict_reruns",
        "scope",
        "isolation",
        "budget_usd",
        "agents",
        "tasks",
    }
    assert top["jobs"]["minimum"] == 1 and top["jobs"]["maximum"] == 256
    assert top["tasks"]["propertyNames"]["pattern"] == "^[a-z0-9][a-z0-9_-]*$"
    task = _resolve(schema, top["tasks"]["additionalProperties"])
    assert set(task["properties"]) == {
        "agent",
        "prompt",
        "prompt_file",
        "needs",
        "writes",
        "reads",
        "verify",
        "timeout",
        "retries",
        "estimate",
        "env",
        "output",
        "continue_on_error",
    }
    assert task["additionalProperties"] is False
    # needs and verify accept a string too, as the loader does
    needs_types = {o.get("type") for o in task["properties"]["needs"]["anyOf"]}
    assert {"string", "array"} <= needs_types
    agent = _resolve(schema, top["agents"]["anyOf"][0]["additionalProperties"])
    assert {"backend", "command", "model", "instructions", "tools"} <= set(agent["properties"])
    defaults = _resolve(schema, top["defaults"])
    assert set(defaults["properties"]) == set(task["properties"])


def test_every_schema_property_is_described() -> None:
    schema = plan_json_schema()
    objects = [schema, *schema["$defs"].values()]
    for obj in objects:
        for name, prop in obj["properties"].items():
            assert prop.get("description"), f"{obj.get('title')}.{name} has no description"


# ---------------------------------------------------------------- plans built in Python


def test_validate_plan_catches_an_unknown_need() -> None:
    plan = Plan(
        tasks=[
            Task("contract", prompt="Write docs/api.md", agent="dev"),
            Task("ui", prompt="Build it", agent="dev", needs=("contrat",)),
        ],
        agents=[Agent("dev", command=("agent",))],
    )
    with pytest.raises(PlanError) as raised:
        validate_plan(plan)
    (problem,) = raised.value.problems
    assert problem.path == "tasks.ui.needs[0]"
    assert "unknown task 'contrat'; did you mean 'contract'?" in problem.message
    assert raised.value.exit_code == 2


def test_validate_plan_returns_a_good_plan_and_runs_every_rule() -> None:
    contract = Task("contract", prompt="Write docs/api.md", agent="dev", writes=("docs/api.md",))
    ui = Task("ui", prompt=f"Build the UI for:\n{contract.output}", agent="fn")
    plan = Plan(
        tasks=[contract, ui],
        agents=[Agent("dev", command=("agent",)), Agent("fn", backend="python", function=str)],
    )
    assert validate_plan(plan) is plan

    bad = Plan(
        tasks=[
            Task("A", prompt="", agent="dev", writes=("/etc/**",), retries=20, line=7),
            Task("b", prompt="{{ tasks.zzz.output }}", agent="ghost", timeout_s=0.5),
        ],
        agents=[Agent("dev", backend="command"), Agent("py", backend="python")],
        jobs=0,
    )
    with pytest.raises(PlanError) as raised:
        validate_plan(bad)
    found = {p.path for p in raised.value.problems}
    assert found == {
        "jobs",
        "agents.dev.command",
        "agents.py.backend",
        "tasks.A",
        "tasks.A.prompt",
        "tasks.A.writes[0]",
        "tasks.A.retries",
        "tasks.b.agent",
        "tasks.b.prompt",
        "tasks.b.timeout",
    }
    # A Python-built task with a line keeps it in the message.
    assert all(p.line == 7 for p in raised.value.problems if p.path.startswith("tasks.A"))


def test_check_plan_agrees_with_the_file_loader(tmp_path: Path) -> None:
    # The same mistake, once from YAML and once from Python, gives the same message.
    text = "agents: {dev: {command: [x]}}\ntasks:\n  a: {agent: dev, prompt: x, needs: [a]}\n"
    with pytest.raises(PlanError) as raised:
        parse_plan(text, root=tmp_path)
    from_file = [(p.path, p.message) for p in raised.value.problems]
    python = Plan(
        tasks=[Task("a", prompt="x", agent="dev", needs=("a",))],
        agents=[Agent("dev", command=("x",))],
    )
    from_python = [(p.path, p.message) for p in check_plan(python)]
    assert from_file == from_python == [("tasks.a.needs[0]", "task 'a' cannot need itself")]


def test_loading_a_plan_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path, "prompts/login-ui.md", "Build the login form.\n")
    plan_file = write(tmp_path, "plait.yaml", FULL)
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    load_plan(plan_file)
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


# ---------------------------------------------------------------- prompt files stay inside


def _prompt_file_problem(tmp_path: Path, name: str) -> str:
    text = (
        "version: 1\nagents: {a: {backend: codex}}\ntasks:\n"
        f"  t: {{agent: a, prompt_file: {name!r}}}\n"
    )
    with pytest.raises(PlanError) as raised:
        parse_plan(text, file="plait.yaml", root=tmp_path / "repo")
    [problem] = raised.value.problems
    assert (problem.path, problem.line) == ("tasks.t.prompt_file", 4)
    return problem.message


def test_a_prompt_file_through_a_link_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("the neighbour's secrets")
    (tmp_path / "repo" / "prompts").mkdir(parents=True)
    (tmp_path / "repo" / "prompts" / "p.md").symlink_to(outside)
    message = _prompt_file_problem(tmp_path, "prompts/p.md")
    assert "leads outside the repository" in message


def test_a_prompt_file_is_read_up_to_the_cap_not_trusted_by_its_size(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    # A device reports a size of 0: a link to one inside the repository leads outside too.
    (repo / "zero").symlink_to("/dev/zero")
    assert "leads outside" in _prompt_file_problem(tmp_path, "zero")
    os.mkfifo(repo / "pipe")  # would block a plain open() until someone writes
    assert "not a regular file" in _prompt_file_problem(tmp_path, "pipe")
    (repo / "big.md").write_bytes(b"x" * (MAX_PLAN_BYTES + 1))
    assert "larger than" in _prompt_file_problem(tmp_path, "big.md")
    (repo / "prompts").mkdir()
    assert "not a regular file" in _prompt_file_problem(tmp_path, "prompts")


def test_a_prompt_file_inside_the_repository_is_read(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "p.md").write_bytes(b"x" * MAX_PLAN_BYTES)
    (tmp_path / "link.md").symlink_to("docs/p.md")  # a link that stays inside is fine
    text = (
        "version: 1\nagents: {a: {backend: codex}}\ntasks:\n  t: {agent: a, prompt_file: link.md}\n"
    )
    plan = parse_plan(text, root=tmp_path)
    assert plan.tasks["t"].prompt == "x" * MAX_PLAN_BYTES


def test_the_fixer_id_is_free_unless_the_plan_has_a_fixer() -> None:
    from plait.planrules import FIXER_TASK_ID
    from plait.runner import FIXER_TASK_ID as RUNNER_FIXER_ID

    assert FIXER_TASK_ID == RUNNER_FIXER_ID  # the id the run would clash with
    task = Task(FIXER_TASK_ID, prompt="x", agent="a")
    agents = [Agent("a", backend="codex")]
    assert validate_plan(Plan(tasks=[task], agents=agents)).tasks[FIXER_TASK_ID] == task
    with pytest.raises(PlanError, match="on_verify_failure"):
        validate_plan(Plan(tasks=[task], agents=agents, on_verify_failure=Fixer("a", "fix")))


@pytest.mark.parametrize(
    "glob", [".claude/agents/**", ".claude/settings.json", ".husky/*", ".codex/**/*.toml"]
)
def test_writes_that_cover_only_protected_paths_are_refused(glob: str) -> None:
    """Every attempt of such a task would fail ("forbidden changes"): say so with the plan."""
    plan = Plan(
        tasks=[Task("profile", prompt="Write an agent profile", agent="dev", writes=(glob,))],
        agents=[Agent("dev", command=("agent",))],
    )
    with pytest.raises(PlanError) as raised:
        validate_plan(plan)
    (problem,) = raised.value.problems
    assert problem.path == "tasks.profile.writes[0]"
    assert "which no agent may change" in problem.message


@pytest.mark.parametrize("glob", ["src/**", "docs/claude.md", "**/*.py", ".aider*", "CLAUDE.md"])
def test_writes_that_reach_ordinary_paths_stay_valid(glob: str) -> None:
    plan = Plan(
        tasks=[Task("t", prompt="Work", agent="dev", writes=(glob,))],
        agents=[Agent("dev", command=("agent",))],
    )
    assert validate_plan(plan) is plan


def test_a_tasks_env_adds_to_the_defaults_env(tmp_path: Path) -> None:
    """`env:` on a task dropped every variable of `defaults.env` (GitHub Actions merges
    env across levels, the task's own winning)."""
    plan = parse_plan(
        "version: 1\ndefaults: {env: {LOG: /tmp/log, MODE: slow}}\n"
        "agents: {a: {backend: command, command: [x]}}\n"
        "tasks:\n  t: {agent: a, prompt: p, env: {MODE: fast, EXTRA: '1'}}\n"
        "  u: {agent: a, prompt: p}\n",
        root=tmp_path,
    )
    assert dict(plan.tasks["t"].env) == {"LOG": "/tmp/log", "MODE": "fast", "EXTRA": "1"}
    assert dict(plan.tasks["u"].env) == {"LOG": "/tmp/log", "MODE": "slow"}


def test_a_bad_default_env_variable_is_reported_once_at_defaults(tmp_path: Path) -> None:
    """With env merged over the defaults', the defaults' bad variable was reported again
    at every task with an env of its own, at lines that do not hold it."""
    with pytest.raises(PlanError) as raised:
        parse_plan(
            "version: 1\ndefaults: {env: {A: x, PLAIT_X: '1'}}\n"
            "agents: {a: {backend: command, command: [x]}}\n"
            "tasks:\n  one: {agent: a, prompt: p, env: {A: y}}\n  two: {agent: a, prompt: p}\n",
            root=tmp_path,
        )
    assert [p.path for p in raised.value.problems] == ["defaults.env.PLAIT_X"]


def test_the_schema_names_the_backends_so_an_editor_flags_a_typo() -> None:
    """`backend: clade` passed the schema (only `plait plan` refused it)."""
    from plait.model import BACKENDS

    backend = plan_json_schema()["$defs"]["AgentSpec"]["properties"]["backend"]
    names = [b for b in backend["enum"] if b is not None]
    assert "clade" not in names and set(names) <= set(BACKENDS)
    assert set(BACKENDS) - set(names) == {"python"}  # a callable: Python plans only
