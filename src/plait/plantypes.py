"""The shapes a plan built in Python must have, which a plan file gets from its parser.

A plan file is read through the pydantic model (`plait.planspec`), which refuses a
string where an argv list belongs and a value no enumeration has. A `Plan` built in
Python skips that: `model` turns what it safely can into the file's shapes (a string
of `needs`, a shell line of `verify`, "worktree" for `Isolation.WORKTREE`), and
`type_problems` names the rest, so that `validate_plan` refuses them as plan errors
(a misspelt `isolation` ran the agents in the user's checkout).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from plait.errors import Problem
from plait.model import Isolation, Permission, Plan, ScopePolicy

__all__ = ["type_problems"]


def type_problems(plan: Plan) -> list[Problem]:
    """What in `plan` has a shape no plan file could give it."""
    problems: list[Problem] = []
    if plan.isolation is not None:
        problems += _enum("isolation", plan.isolation, Isolation)
    problems += _enum("scope", plan.scope, ScopePolicy)
    for name, agent in plan.agents.items():
        problems += _enum(f"agents.{name}.permission", agent.permission, Permission)
        for field in ("command", "args"):
            value: Any = getattr(agent, field)
            if isinstance(value, str):
                problems.append(
                    Problem(
                        f"agents.{name}.{field}",
                        f'must be an argv list such as ["python3", "agent.py"], not the '
                        f"string {value!r}: agents are never started through a shell",
                    )
                )
    return problems


def _enum(path: str, value: object, kind: type[StrEnum]) -> list[Problem]:
    if isinstance(value, kind):
        return []
    valid = ", ".join(member.value for member in kind)
    return [Problem(path, f"{value!r} is not one of: {valid}")]
