"""Pieces of the command line kept out of `plait.cli` (which holds the commands):
the `plait agents` rows for a program given as a relative path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from plait.model import Isolation, Plan
from plait.planfind import repo_top

__all__ = ["placed_rows", "relative_program", "shown_rows", "workspace_base"]


def workspace_base(plan: Plan) -> Path:
    """Where a task's agent runs, as this checkout shows it: the repository's top level
    (each workspace is a worktree of it), or the plan's folder with `isolation: none`
    or outside git, where the agents run in place."""
    root = (plan.root or Path.cwd()).absolute()
    top = repo_top(root)
    if top is None or plan.isolation is Isolation.NONE:
        return root
    return top


def relative_program(program: str | None) -> bool:
    """Whether `program` is a path relative to the agent's workspace (`./tools/run.sh`):
    found there when the agent starts, not on PATH nor from here."""
    return bool(program) and "/" in str(program) and not os.path.isabs(str(program))


def placed_rows(rows: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """`plait agents` rows with a relative program looked up where the agent will run
    (`workspace_base`), not in the folder `plait agents` was started in: `path` is the
    file there, `installed` whether it is an executable file now (it may be made by
    `setup` or a task, so it never makes a row fail)."""
    base = workspace_base(plan)
    placed = []
    for row in rows:
        program = row.get("program")
        if relative_program(program) and "{" not in str(program):
            target = base / str(program)
            there = target.is_file() and os.access(target, os.X_OK)
            row = {**row, "path": str(target) if there else None, "installed": there}
        placed.append(row)
    return placed


def shown_rows(rows: list[dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    """The rows as `plait agents` prints them: a relative program says where it is
    resolved (each task's workspace) instead of 'not installed'."""
    base = workspace_base(plan)
    shown = []
    for row in rows:
        program = row.get("program")
        if relative_program(program):
            now = f"in this checkout: {row['path']}" if row["installed"] else f"not in {base} yet"
            where = f"{program} (relative to each task's workspace; {now})"
            row = {**row, "path": where, "installed": True}
        shown.append(row)
    return shown
