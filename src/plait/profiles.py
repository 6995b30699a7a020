"""Agent profiles: Claude Code's subagent files, in `.claude/agents/` and `.plait/agents/`.

They are read from the plan's folder and, when the plan is in a subfolder, from the
repository's top level too (where `plait init` writes them and Claude Code keeps
its own); the plan folder's profile wins over the top level's of the same name.

A profile is Markdown with YAML front matter (`name`, `description`, `model`,
`tools`); its body becomes the agent's instructions. Files in `.plait/agents/` may
also say `backend`, `permission`, `command`, `args` and `env`; files in
`.claude/agents/` belong to Claude Code, so plait reads only Claude's keys there and
ignores the rest (Claude adds keys over time). A plan's own `agents:` entry wins
over a profile of the same name, and `.plait/agents/` wins over `.claude/agents/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationError

from plait.errors import PlanError, Problem
from plait.model import PROFILE_DIRS, Agent, Plan
from plait.planfile import read_capped
from plait.planfind import profile_folders
from plait.planrules import check_agent
from plait.planspec import AgentSpec, spec_problems
from plait.planvalues import agent_from_spec
from plait.planyaml import Located, read_yaml

__all__ = ["PROFILE_DIRS", "load_profile", "profile_names", "resolve_agent"]

#: A profile larger than this is refused unread (it is instructions, not a data file).
MAX_PROFILE_BYTES = 256 * 1024
_CLAUDE_KEYS = ("name", "description", "model", "tools")
_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)


class ProfileSpec(AgentSpec):
    """Front matter of a `.plait/agents/<name>.md` profile."""

    name: str | None = Field(
        default=None,
        description="The agent's name; plait refers to a profile by its file name.",
    )


def profile_names(root: Path) -> dict[str, Path]:
    """Agent name → profile file, for every profile of a plan whose folder is `root`:
    in its folder and at the repository's top level, the plan folder's winning (see
    `plait.planfind.profile_folders`). No file is parsed."""
    found: dict[str, Path] = {}
    for directory in profile_folders(Path(root)):
        if directory.is_dir():
            for file in sorted(directory.glob("*.md")):
                if file.is_file():
                    found[file.stem] = file
    return found


def _split(text: str, shown: str) -> tuple[str | None, str, int]:
    """(front matter or None, body, file line the front matter starts on)."""
    lines = text.splitlines(keepends=True)
    if not lines or not _FENCE.fullmatch(lines[0].rstrip("\r\n")):
        return None, text, 1
    for i, line in enumerate(lines[1:], start=1):
        if _FENCE.fullmatch(line.rstrip("\r\n")):
            return "".join(lines[1:i]), "".join(lines[i + 1 :]), 2
    problem = Problem("", "the front matter opened by '---' on line 1 is never closed", 1, 1)
    raise PlanError([problem], shown)


def load_profile(path: Path) -> Agent:
    """The Agent a profile file describes; Agent.source is the file.

    The backend is `claude` unless a `.plait/agents/` profile names another.
    Raises PlanError, located in the file, when the profile is malformed.
    """
    path = Path(path)
    shown = str(path)
    try:
        # A bounded read: a profile linked to a device or a pipe has no size to trust.
        raw = read_capped(path, MAX_PROFILE_BYTES)
        if len(raw) > MAX_PROFILE_BYTES:
            raise PlanError([Problem("", f"is larger than {MAX_PROFILE_BYTES:,} bytes", 1)], shown)
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlanError([Problem("", "is not UTF-8 text", 1)], shown) from None
    except OSError as exc:
        raise PlanError([Problem("", f"cannot read profile: {exc.strerror}")], shown) from None
    front, body, first_line = _split(text, shown)
    located = read_yaml(front, file=shown, first_line=first_line) if front else Located({})
    data = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        problem = Problem("", "front matter must be a YAML mapping of keys", first_line, 1)
        raise PlanError([problem], shown)
    if path.parent.parent.name != ".plait":
        data = {k: v for k, v in data.items() if k in _CLAUDE_KEYS}
        data.pop("backend", None)
    try:
        spec = ProfileSpec.model_validate(data)
    except ValidationError as exc:
        raise PlanError(spec_problems(exc, located, ProfileSpec), shown) from None
    if spec.model == "inherit":  # Claude Code's "use the caller's model"
        spec = spec.model_copy(update={"model": None})
    if spec.instructions is None and body.strip():
        spec = spec.model_copy(update={"instructions": body.strip()})
    # No backend: `command` when a command is given, else `claude` (agent_from_spec's rule).
    agent = agent_from_spec(path.stem, spec, source=shown)
    problems: list[Problem] = []
    check_agent("", path.stem, agent, lambda p, m: problems.append(Problem(p, m)))
    if problems:
        located_problems = [Problem(p.path, p.message, *located.where(p.path)) for p in problems]
        raise PlanError(located_problems, shown)
    return agent


def resolve_agent(plan: Plan, name: str) -> Agent:
    """The agent `name` in a plan: its `agents:` entry, else a profile under Plan.root.

    Raises PlanError when neither exists (a validated plan never does).
    """
    if name in plan.agents:
        return plan.agents[name]
    found = profile_names(plan.root) if plan.root is not None else {}
    if name in found:
        return load_profile(found[name])
    problem = Problem("", f"unknown agent '{name}'")
    raise PlanError([problem], str(plan.path) if plan.path else None)
