"""How a plan file's values become the model's: durations, commands, lists, agents.

The pydantic models in `plait.planspec` and the plain reader in `plait.planfile`
both convert with these, so the two readers can never disagree on what a value
means. They change a value's form only; whether the result is allowed is for
`plait.planrules`, which Python-built plans go through too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from plait.model import Agent, Permission


def describe(value: object) -> str:
    """How a YAML value reads in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return "a list" if isinstance(value, list) else "a mapping"


_DURATION_RE = re.compile(
    r"(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?"
)
_DURATION_HELP = "a duration like 90s, 30m, 2h or 1h30m, or a number of seconds"
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: str | float) -> float:
    """Seconds in `value`: a number of seconds, or text like ``90s``, ``30m``, ``1h30m``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {_DURATION_HELP}, got {describe(value)}")
    if not isinstance(value, str):
        return float(value)
    text = value.strip().replace(" ", "")
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"expected {_DURATION_HELP}, got '{value}'")
    return sum(float(n) * _UNIT_S[u] for u, n in match.groupdict().items() if n)


def to_duration(value: object) -> object:
    """A duration field's value in seconds (None stays None); ValueError if it is none."""
    return parse_duration(value) if value is not None else None  # type: ignore[arg-type]


def to_command(value: object) -> object:
    """A command given as one line runs through the shell; a list is the argv."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("is an empty command")
        return ["/bin/sh", "-c", value]  # the user's own command line, run by the shell
    return value


def to_argv(value: object) -> object:
    """An agent's command must be an argv list: agents never start through a shell."""
    if isinstance(value, str):
        raise ValueError(
            'must be an argv list such as ["python3", "agent.py"], not a string: '
            "agents are never started through a shell"
        )
    return value


def to_list(value: object) -> object:
    """One text stands for a list of one."""
    return [value] if isinstance(value, str) else value


def to_tools(value: object) -> object:
    """Tools as a list, or as one comma-separated text."""
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return value


def to_env_value(value: object) -> object:
    """Environment values are text; YAML numbers and booleans are written out."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


class AgentFields(Protocol):
    """An `agents:` entry's fields (pydantic's AgentSpec, or the plain reader's)."""

    @property
    def backend(self) -> str | None: ...
    @property
    def command(self) -> Sequence[str] | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def instructions(self) -> str | None: ...
    @property
    def description(self) -> str | None: ...
    @property
    def permission(self) -> str | None: ...
    @property
    def tools(self) -> Sequence[str] | None: ...
    @property
    def args(self) -> Sequence[str] | None: ...
    @property
    def env(self) -> Mapping[str, str] | None: ...


def agent_from_spec(name: str, spec: AgentFields, source: str = "plan") -> Agent:
    """The `Agent` an `agents:` entry (or a profile's front matter) describes."""
    return Agent(
        name=name,
        backend=spec.backend or ("command" if spec.command is not None else "claude"),
        command=tuple(spec.command) if spec.command is not None else None,
        model=spec.model,
        instructions=spec.instructions,
        permission=Permission(spec.permission or "edit"),
        args=tuple(spec.args or ()),
        env=dict(spec.env or {}),
        tools=tuple(spec.tools or ()),
        description=spec.description,
        source=source,
    )
