"""`plait agents`: each role, its backend, whether its program is there and its version.

The roles are the plan's `agents:` and every profile under the plan's root
(`.plait/agents/*.md`, `.claude/agents/*.md`), so a plan that names no agents still
shows the roles `plait init` wrote. A role's check is the one `plait run` makes
before it starts; the version shown is the answer to that check's `--version`
probe (asked once per program, never for `command` agents: running an arbitrary
program with `--version` could do anything).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from plait.agents import get_backend
from plait.agents.cli_agent import CliBackend
from plait.agents.versions import probe_version
from plait.errors import PlanError
from plait.model import Agent, Plan
from plait.profiles import load_profile, profile_names, resolve_agent


def _roles(plan: Plan, used: set[str]) -> dict[str, Agent | PlanError]:
    """Every role the plan can name: its own agents, then the profiles under its root.

    A broken profile of a role the plan uses is a plan error (as in `plait run`); an
    unused one is shown with its problem instead of hiding the other roles.
    """
    roles: dict[str, Agent | PlanError] = dict(plan.agents)
    found = profile_names(plan.root) if plan.root is not None else {}
    for name in sorted(used - roles.keys()):
        roles[name] = resolve_agent(plan, name)
    for name, path in found.items():
        if name not in roles:
            try:
                roles[name] = load_profile(path)
            except PlanError as exc:
                roles[name] = exc
    return roles


def _version(agent: Agent, path: str | None) -> str | None:
    if path is None or not isinstance(get_backend(agent.backend), CliBackend):
        return None
    probe = probe_version(path)  # cached: `check` asked already
    return probe.text or None


def inventory(plan: Plan) -> list[dict[str, Any]]:
    """One row per role: role, backend, source, program, path, installed, version,
    used, problem, and ok (False only when a role some task uses cannot run)."""
    used = {t.agent for t in plan.tasks.values()}
    if plan.on_verify_failure is not None:
        used.add(plan.on_verify_failure.agent)
    rows = []
    for name, agent in sorted(_roles(plan, used).items()):
        if isinstance(agent, PlanError):
            rows.append(_broken_row(name, agent))
            continue
        backend = get_backend(agent.backend)
        program = backend.program(agent)
        path = shutil.which(program) if program else None
        problem = backend.check(agent) if name in used or program else None
        rows.append(
            {
                "role": name,
                "backend": agent.backend,
                "source": agent.source,
                "program": program,
                "path": path,
                "installed": None if program is None else path is not None,
                "version": _version(agent, path),
                "used": name in used,
                "ok": problem is None or name not in used,
                "problem": problem,
            }
        )
    return rows


def _broken_row(name: str, error: PlanError) -> dict[str, Any]:
    return {
        "role": name,
        "backend": None,
        "source": error.file,
        "program": None,
        "path": None,
        "installed": None,
        "version": None,
        "used": False,
        "ok": True,  # no task uses it (a used one raised)
        "problem": "; ".join(p.render(error.file) for p in error.problems),
    }


def _shown_source(source: str | None, root: Path) -> str:
    if not source or source == "plan":
        return ""
    try:
        return f"  (from {Path(source).resolve().relative_to(root.resolve())})"
    except ValueError:
        return f"  (from {source})"


def inventory_text(rows: list[dict[str, Any]], root: Path | None = None) -> str:
    """The table `plait agents` prints, and a closing line when the plan cannot run."""
    if not rows:
        return "this plan names no agents, and there are no profiles in .plait/agents/"
    width = max(len(r["role"]) for r in rows)
    lines = []
    for row in rows:
        if row["program"] is None:
            where = "(in-process)" if row["backend"] else "(broken profile)"
        elif row["installed"]:
            where = row["path"]
        else:
            where = f"{row['program']} (not installed)"
        version = f"  {row['version']}" if row["version"] else ""
        state = "ok" if row["problem"] is None else f"PROBLEM: {row['problem']}"
        used = "" if row["used"] else "  (not used by any task)"
        source = _shown_source(row["source"], root or Path.cwd())
        backend = row["backend"] or "-"
        lines.append(
            f"{row['role']:<{width}}  {backend:<8}  {where}{version}  {state}{used}{source}"
        )
    blocked = [r["role"] for r in rows if not r["ok"]]
    if blocked:
        lines.append(
            f"plait run would stop before starting: {', '.join(blocked)} cannot run (see above)"
        )
    return "\n".join(lines)
