"""plait: run many coding agents in parallel on one git repository, safely.

    import plait

    plan = plait.load_plan("plait.yaml")
    result = plait.run_plan(plan, jobs=4)
    print(result.status, result.outputs["contract"])

A plan can also be built in Python; `task.output` in another task's prompt is a
template reference, and so a dependency:

    contract = plait.Task("contract", prompt="Write docs/api.md", agent="architect")
    ui = plait.Task("ui", prompt=f"Build the UI for:\\n{contract.output}", agent="frontend")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import Error, PlanError
from plait.model import Agent, Fixer, Isolation, Outcome, Permission, Plan, ScopePolicy, Task

if TYPE_CHECKING:
    from plait.runner import EventSink
    from plait.runner import RunOutcome as RunResult

__all__ = [
    "Agent",
    "Error",
    "Fixer",
    "Isolation",
    "Outcome",
    "Permission",
    "Plan",
    "PlanError",
    "RunResult",
    "ScopePolicy",
    "Task",
    "load_plan",
    "resume_plan",
    "run_plan",
    "run_plan_async",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The engine is imported on first use, so `import plait` (and the CLI's
    # `plait plan`) stays light.
    if name == "RunResult":
        from plait.runner import RunOutcome

        return RunOutcome
    raise AttributeError(f"module 'plait' has no attribute {name!r}")


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file, graph included; raises PlanError (exit 2)."""
    from plait.analysis import analyze
    from plait.planfile import load_plan as _load

    plan = _load(path)
    analyze(plan)  # cycles are plan errors too
    return plan


async def run_plan_async(
    plan: Plan,
    *,
    jobs: int | None = None,
    fail_fast: bool = False,
    on_event: EventSink | None = None,
    home: str | Path | None = None,
) -> RunResult:
    """Run a plan to its end and return how it went (the async twin of `run_plan`)."""
    from plait.session import RunSettings, start_run

    settings = RunSettings(jobs=jobs, fail_fast=fail_fast, sink=on_event)
    return await start_run(plan, settings, home=Path(home) if home is not None else None)


def run_plan(
    plan: Plan,
    *,
    jobs: int | None = None,
    fail_fast: bool = False,
    on_event: EventSink | None = None,
    home: str | Path | None = None,
) -> RunResult:
    """Run a plan to its end and return how it went.

    Ctrl-C stops the run as it stops `plait run` (recorded, resumable), then raises
    KeyboardInterrupt, as any program's Ctrl-C does.
    """
    import asyncio

    return _raise_ctrl_c(
        asyncio.run(
            run_plan_async(plan, jobs=jobs, fail_fast=fail_fast, on_event=on_event, home=home)
        )
    )


def _raise_ctrl_c(result: RunResult) -> RunResult:
    """`result`, unless Ctrl-C stopped it: a synchronous run is stopped from outside
    only by asyncio's SIGINT handler, which the run's end swallowed."""
    if result.status == "interrupted" and result.stopped_by is None:
        raise KeyboardInterrupt
    return result


def resume_plan(
    plan: Plan,
    run_id: str | None = None,
    *,
    jobs: int | None = None,
    on_event: EventSink | None = None,
    home: str | Path | None = None,
) -> RunResult:
    """Continue an interrupted run of `plan` (the latest run, if `run_id` is None):
    finished tasks stay finished. For a plan built in Python, which `plait resume`
    cannot rebuild; pass the same plan (its agents' callables with it)."""
    import asyncio

    from plait.resume import resume_run
    from plait.session import RunSettings

    settings = RunSettings(jobs=jobs, sink=on_event)
    cwd = (plan.root or Path.cwd()).resolve()
    where = Path(home) if home is not None else None
    return _raise_ctrl_c(
        asyncio.run(resume_run(run_id, settings, cwd=cwd, home=where, python_plan=plan))
    )
