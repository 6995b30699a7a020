"""`plait agents`: each role, its backend, and whether its program is there."""

from __future__ import annotations

import shutil
from typing import Any

from plait.agents import get_backend
from plait.model import Plan


def inventory(plan: Plan) -> list[dict[str, Any]]:
    """One row per agent the plan can use: role, backend, program, installed, problem."""
    used = {t.agent for t in plan.tasks.values()}
    rows = []
    for name in sorted(plan.agents):
        agent = plan.agents[name]
        backend = get_backend(agent.backend)
        program = backend.program(agent)
        problem = backend.check(agent) if name in used or program else None
        rows.append(
            {
                "role": name,
                "backend": agent.backend,
                "source": agent.source,
                "program": program,
                "path": shutil.which(program) if program else None,
                "used": name in used,
                "ok": problem is None,
                "problem": problem,
            }
        )
    return rows


def inventory_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "this plan names no agents"
    width = max(len(r["role"]) for r in rows)
    lines = []
    for row in rows:
        where = row["path"] or row["program"] or "(in-process)"
        state = "ok" if row["ok"] else f"MISSING: {row['problem']}"
        used = "" if row["used"] else "  (not used by any task)"
        lines.append(f"{row['role']:<{width}}  {row['backend']:<8}  {where}  {state}{used}")
    return "\n".join(lines)
