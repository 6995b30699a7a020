"""Agent profiles: Claude Code subagent files and plait's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from plait.errors import PlanError
from plait.model import Agent, Permission, Plan, Task
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
