"""Agent profiles: Claude Code subagent files and plait's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plait.errors import PlanError
from plait.model import Agent, Permission, Plan, Task
from plait.planfile import load_plan, validate_plan
from plait.profiles import load_profile, profile_names, resolve_agent

CLAUDE_PROFILE = """\
---
name: frontend-engineer
description: Builds accessible React components.
model: sonnet
tools: Read, Edit, Bash
color: blue
---

You build React components in TypeScript.

Always add a test beside each component.
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_profile_names_prefer_plait_over_claude(tmp_path: Path) -> None:
    claude = write(tmp_path / ".claude/agents/reviewer.md", CLAUDE_PROFILE)
    write(tmp_path / ".claude/agents/shared.md", CLAUDE_PROFILE)
    plait = write(tmp_path / ".plait/agents/shared.md", "---\nbackend: codex\n---\n")
    write(tmp_path / ".plait/agents/notes.txt", "not a profile")
    (tmp_path / ".plait/agents/dir.md").mkdir()
    assert profile_names(tmp_path) == {
        "reviewer": claude,
        "shared": plait,
    }
    assert profile_names(tmp_path / "nowhere") == {}


def test_claude_profile(tmp_path: Path) -> None:
    path = write(tmp_path / ".claude/agents/frontend-engineer.md", CLAUDE_PROFILE)
    agent = load_profile(path)
    assert agent == Agent(
        name="frontend-engineer",
        backend="claude",
        model="sonnet",
        description="Builds accessible React components.",
        tools=("Read", "Edit", "Bash"),
        instructions="You build React components in TypeScript.\n\n"
        "Always add a test beside each component.",
        source=str(path),
    )


def test_claude_profile_ignores_keys_claude_code_owns_and_plait_keys(tmp_path: Path) -> None:
    # .claude/agents belongs to Claude Code: plait's own keys have no effect there.
    text = "---\nname: x\nbackend: command\ncommand: [evil]\nmodel: inherit\n---\nBody\n"
    agent = load_profile(write(tmp_path / ".claude/agents/x.md", text))
    assert agent.backend == "claude"
    assert agent.command is None
    assert agent.model is None  # "inherit" means the caller's model


def test_plait_profile_with_command_backend(tmp_path: Path) -> None:
    text = (
        "---\n"
        "description: A scripted agent\n"
        "backend: command\n"
        "command: [python3, tools/agent.py, --fast]\n"
        "permission: full\n"
        "tools: [Read, Write]\n"
        "---\n"
        "Instructions here.\n"
    )
    path = write(tmp_path / ".plait/agents/scripted.md", text)
    agent = load_profile(path)
    assert agent.backend == "command"
    assert agent.command == ("python3", "tools/agent.py", "--fast")
    assert agent.permission is Permission.FULL
    assert agent.tools == ("Read", "Write")
    assert agent.instructions == "Instructions here."
    assert agent.source == str(path)


def test_plait_profile_without_backend_is_claude(tmp_path: Path) -> None:
    agent = load_profile(write(tmp_path / ".plait/agents/arch.md", "---\nmodel: opus\n---\nDo."))
    assert (agent.backend, agent.model, agent.instructions) == ("claude", "opus", "Do.")


def test_profile_without_front_matter_is_all_instructions(tmp_path: Path) -> None:
    agent = load_profile(write(tmp_path / ".claude/agents/plain.md", "Just be careful.\n"))
    assert agent.instructions == "Just be careful."
    assert agent.backend == "claude"


@pytest.mark.parametrize(
    ("relative", "text", "line", "fragment"),
    [
        (".plait/agents/a.md", "---\nmodel: x\n", 1, "never closed"),
        (".plait/agents/a.md", "---\nmodel: x\nbakend: codex\n---\n", 3, "did you mean 'backend'"),
        (".plait/agents/a.md", "---\nbackend: codx\n---\n", 2, "did you mean 'codex'"),
        (".plait/agents/a.md", "---\nbackend: command\n---\n", 2, "needs `command`"),
        (".plait/agents/a.md", "---\ncommand: run me\n---\n", 2, "argv list"),
        (".plait/agents/a.md", "---\nmodel: [unclosed\n---\n", 3, "not valid YAML"),
        (".plait/agents/a.md", "---\nmodel: a\nmodel: b\n---\n", 3, "duplicate key"),
        (".claude/agents/a.md", "---\n- a\n- b\n---\n", 2, "mapping"),
        (".claude/agents/a.md", "---\ntools: !custom x\n---\n", 2, "tag !custom"),
        (".claude/agents/a.md", "---\nmodel: 3\n---\n", 2, "expected text"),
    ],
)
def test_malformed_profiles(
    tmp_path: Path, relative: str, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path / relative, text)
    with pytest.raises(PlanError) as raised:
        load_profile(path)
    message = str(raised.value)
    assert f"{path}:{line}:" in message, message
    assert fragment in message, message
    assert raised.value.exit_code == 2


def test_resolve_agent_prefers_the_plan(tmp_path: Path) -> None:
    write(tmp_path / ".claude/agents/dev.md", "---\nmodel: sonnet\n---\nFrom the file.")
    write(tmp_path / ".claude/agents/reviewer.md", "---\nmodel: haiku\n---\nReview.")
    own = Agent("dev", command=("agent",))
    plan = Plan(tasks=[Task("a", prompt="x", agent="dev")], agents=[own], root=tmp_path)
    assert resolve_agent(plan, "dev") is own
    reviewer = resolve_agent(plan, "reviewer")
    assert (reviewer.model, reviewer.instructions) == ("haiku", "Review.")
    with pytest.raises(PlanError, match="unknown agent 'ghost'"):
        resolve_agent(plan, "ghost")


@pytest.mark.parametrize("backend", ["claude", "codex"])
def test_profiles_written_by_plait_init_load(tmp_path: Path, backend: str) -> None:
    from plait.roles import write_profiles

    written = write_profiles(tmp_path, backend)
    assert written
    names = profile_names(tmp_path)
    for path in written:
        agent = load_profile(path)
        assert agent.backend == backend
        assert agent.instructions
        assert names[agent.name] == path


# --- reading a plan checks the profiles it uses, all at once, with their file and line ---

PLAN_USING_PROFILES = """\
version: 1
defaults:
  agent: typo
agents:
  mine: {backend: codex}
on_verify_failure:
  agent: unclosed
  prompt: fix it
tasks:
  a: {prompt: x}
  b: {agent: badyaml, prompt: x}
  c: {agent: tools, prompt: x}
  d: {agent: tools, prompt: x}
  e: {agent: mine, prompt: x}
  f: {agent: fine, prompt: x}
"""


def test_loading_a_plan_reports_every_broken_profile_it_uses(tmp_path: Path) -> None:
    write(tmp_path / ".plait/agents/typo.md", "---\nbackend: comand\ncommand: [x]\n---\n")
    write(tmp_path / ".plait/agents/badyaml.md", "---\nmodel: [unclosed\n---\n")
    write(tmp_path / ".claude/agents/unclosed.md", "---\nname: x\nno end\n")
    write(tmp_path / ".claude/agents/tools.md", "---\ntools: 5\n---\n")
    write(tmp_path / ".claude/agents/fine.md", CLAUDE_PROFILE)
    # Broken, but the plan's own `mine` wins, and nothing uses `unused`.
    write(tmp_path / ".plait/agents/mine.md", "---\nbackend: nope\n---\n")
    write(tmp_path / ".plait/agents/unused.md", "---\nbackend: nope\n---\n")
    plan_file = write(tmp_path / "plait.yaml", PLAN_USING_PROFILES)
    with pytest.raises(PlanError) as raised:
        load_plan(plan_file)
    found = [(p.path, p.line, p.message) for p in raised.value.problems]
    assert [(path, line) for path, line, _ in found] == [
        ("defaults.agent", 3),
        ("on_verify_failure.agent", 7),
        ("tasks.b.agent", 11),
        ("tasks.c.agent", 12),  # once, though d uses it too
    ]
    messages = [message for _, _, message in found]
    assert (
        ".plait/agents/typo.md:2, which is invalid: backend: unknown backend 'comand'"
        in (messages[0])
    )
    assert ".claude/agents/unclosed.md:1, which is invalid:" in messages[1]
    assert "never closed" in messages[1]
    assert ".plait/agents/badyaml.md:" in messages[2] and "not valid YAML" in messages[2]
    assert ".claude/agents/tools.md:2, which is invalid: tools: expected a list" in messages[3]
    assert raised.value.exit_code == 2
    assert f"{plan_file}:3:" in str(raised.value)


def test_a_python_built_plan_checks_its_profiles_too(tmp_path: Path) -> None:
    write(tmp_path / ".plait/agents/typo.md", "---\nbackend: comand\ncommand: [x]\n---\n")
    plan = Plan(tasks=[Task("a", prompt="x", agent="typo", line=4)], root=tmp_path)
    with pytest.raises(PlanError) as raised:
        validate_plan(plan)
    [problem] = raised.value.problems
    assert (problem.path, problem.line) == ("tasks.a.agent", 4)
    assert "unknown backend 'comand'" in problem.message


def test_a_plan_using_no_profile_reads_none(tmp_path: Path) -> None:
    plan_text = "version: 1\nagents: {a: {backend: codex}}\ntasks:\n  t: {agent: a, prompt: x}\n"
    plan_file = write(tmp_path / "bare" / "plait.yaml", plan_text)
    code = (
        "import sys; from plait.planfile import load_plan\n"
        f"load_plan({str(plan_file)!r})\n"
        "print('plait.profiles' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"  # no profile folder: the module is not even loaded
    # A broken profile that no task uses does not stop the plan.
    write(tmp_path / "bare" / ".plait/agents/broken.md", "---\nbackend: [\n")
    assert list(load_plan(plan_file).tasks) == ["t"]
