"""Pieces of the command line kept out of `plait.cli` (which holds the commands):
the streams and usage errors of `main`, the version line, a run's result branch as
`plait status` shows it, and the `plait agents` rows for a program given as a
relative path.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from plait import errors
from plait.cliio import branch_tip, print_json
from plait.model import Isolation, Plan
from plait.planfind import repo_top

__all__ = [
    "branch_now",
    "placed_rows",
    "print_version",
    "relative_program",
    "replace_unshowable",
    "show_usage_error",
    "shown_rows",
    "version_text",
    "workspace_base",
]


def replace_unshowable() -> None:
    """A terminal or pipe that is not UTF-8 (PYTHONIOENCODING=ascii) gets '?' for what
    it cannot show, instead of a traceback in the middle of a run."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
            reconfigure(errors="replace")


def show_usage_error(exc: Exception, *, json_asked: bool) -> bool:
    """Print a usage error of the argument parser (click's, or typer's own copy of it)
    as it does, and with `--json` as one object on stdout still; False if `exc` is
    not one (the caller re-raises it)."""
    show = getattr(exc, "show", None)
    if show is None or not hasattr(exc, "exit_code"):
        return False
    show()
    if json_asked:
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        print_json({"error": {"exit_code": 2, "message": str(message)}})
    return True


def branch_now(data: dict[str, Any], plan_json: str) -> bool:
    """Fill in the head of an unfinished run's result branch (`plait status`); True
    when the branch is gone. Its head is recorded when the run ends: until then the
    branch itself says, in the repository the run was started in (not wherever
    status is asked from)."""
    if data["status"] not in ("interrupted", "running") or not data.get("branch"):
        return False
    with contextlib.suppress(errors.Error):  # git cannot say: nothing is claimed
        data["head"] = branch_tip(data["branch"], _run_root(plan_json))
        return data["head"] is None
    return False


def _run_root(plan_json: str) -> Path:
    """The folder a run was started in (its plan's root), or here if unknown or gone."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        root = Path(json.loads(plan_json)["root"])
        if root.is_dir():
            return root
    return Path.cwd()


def print_version(asked: bool) -> None:
    """`plait --version`: print the version line and leave (typer calls it eagerly)."""
    if asked:
        from plait.cliio import out

        out().print(version_text())
        raise typer.Exit(0)


def version_text() -> str:
    """`plait <version>`, from the installed package's metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"plait {version('plait')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "plait (version unknown: the package is not installed)"


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
