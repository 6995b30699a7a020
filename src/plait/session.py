"""A run's environment: repository, store, lock, workspaces; start and resume.

This is the I/O shell around `runner.Driver`: it finds the repository, takes the
run lock, has `plait.runcheck` check the agents, the repository and the base before
anything starts, creates the integration branch, and builds the workspaces and the
merge queue.
`resume.py` continues an interrupted run through the same `drive()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait import guardkeep, heartbeat
from plait.analysis import Analysis, analyze, reestimate
from plait.git import Git
from plait.gitguard import GitGuard
from plait.inplace import InPlaceProvider
from plait.merge import MergeQueue
from plait.model import Isolation, Outcome, Plan
from plait.planfile import validate_plan
from plait.pool import POOL_DIR, WorktreePool, pool_size
from plait.procsweep import end_runs
from plait.runcheck import (
    check_backends,
    check_branch_namespace,
    discover,
    isolation_of,
    resolve_base,
    start_warnings,
    with_agents,
)
from plait.runlock import RunLock
from plait.runner import Driver, EventSink, PlanDefaults, RunOutcome, fixer_task
from plait.statehome import new_run_id, state_home, worktrees_home
from plait.store import Store
from plait.taskrun import WorkspaceProvider
from plait.worktrees import WorktreeProvider

#: How long a step of the run that is not an agent may take when nothing in the plan
#: says: the plan's verify without `defaults.timeout`, and each workspace's `setup`
#: when a task has no `timeout`. A hung test suite must not hold a run forever.
DEFAULT_STEP_TIMEOUT_S = 3600.0


#: Run statuses of a run that did not end: its plait may have left processes behind.
UNENDED_RUNS = frozenset({"running", "interrupted"})


@dataclass
class RunSettings:
    """What the person asked for on the command line (or the library call)."""

    jobs: int | None = None
    fail_fast: bool = False
    sink: EventSink | None = None


@contextlib.asynccontextmanager
async def _signals_cancel_run(caught: list[str]) -> AsyncIterator[None]:
    """SIGTERM, and SIGHUP (the terminal or ssh session closed), end the run like Ctrl-C
    does: cancelled, its agents ended, resumable. The signal's name goes into `caught`
    (a stop that is not one of these came from outside: Ctrl-C, or the caller).

    The agents run in sessions of their own, so a hangup never reaches them: left to
    its default, SIGHUP would kill plait alone and leave them working (and spending).
    A SIGHUP ignored by whoever started plait (`nohup`) stays ignored.
    """
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    signals = [signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signals.append(signal.SIGHUP)
    installed: list[signal.Signals] = []
    if current is not None:
        # Not on a loop without signal support, nor off the main thread (the library
        # run from a worker thread): there the signals keep their default meaning.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in signals:
                loop.add_signal_handler(sig, _stop, sig, current, caught)
                installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _stop(sig: signal.Signals, run: asyncio.Task[Any], caught: list[str]) -> None:
    caught.append(sig.name)
    run.cancel()


def end_dead_runs(store: Store) -> int:
    """End whatever the plaits of runs that never ended left running; how many.

    Call it holding the run lock: then no plait drives any of these runs, so every
    process that carries one's marker (an agent in its own session, a `setsid`
    escapee, a setup or verify command) is a leftover of a plait killed with SIGKILL,
    still spending money and time. DESIGN §6: found by the marker, ended.
    """
    return end_runs(row.id for row in store.runs() if row.status in UNENDED_RUNS)


def fixer_defaults(plan: Plan) -> PlanDefaults:
    """What the runner gives the `on_verify_failure` fixer: its time limit, retries and
    environment (a plan file's `defaults:`, set on the Fixer when the plan is read)."""
    fixer = plan.on_verify_failure
    if fixer is None:
        return PlanDefaults()
    return PlanDefaults(fixer.timeout_s, fixer.retries, dict(fixer.env))


def step_timeouts(plan: Plan) -> tuple[float, float]:
    """How long each workspace's `setup`, and the plan's verify, may take.

    Setup runs for a task and takes the task's `timeout` (a time of its own, not taken
    from the agent's). The provider has one limit for every workspace, so it is the
    longest any task (the fixer too) has. The verify is the plan's: its
    `verify_timeout_s` (a plan file's `defaults.timeout`). Either falls back to
    DEFAULT_STEP_TIMEOUT_S.
    """
    tasks = list(plan.tasks.values())
    fixer = fixer_task(plan, fixer_defaults(plan))
    if fixer is not None:
        tasks.append(fixer)
    limits = [t.timeout_s for t in tasks]
    setup = DEFAULT_STEP_TIMEOUT_S
    if limits and all(limit is not None for limit in limits):
        setup = max(limit for limit in limits if limit is not None)
    return setup, plan.verify_timeout_s or DEFAULT_STEP_TIMEOUT_S


def _plan_record(plan: Plan, settings: RunSettings, text: str | None) -> str:
    """What resume needs to rebuild the plan: its source text and where it lived."""
    return json.dumps(
        {
            "path": str(plan.path) if plan.path else None,
            "root": str(plan.root) if plan.root else None,
            "text": text,
            "jobs": settings.jobs,
            "fail_fast": settings.fail_fast,
        }
    )


async def start_run(plan: Plan, settings: RunSettings, *, home: Path | None = None) -> RunOutcome:
    """Run a validated plan from the start."""
    plan = with_agents(validate_plan(plan))
    root = (plan.root or Path.cwd()).resolve()
    git = await discover(root)
    isolation = isolation_of(plan, git)
    check_backends(plan)
    home = home or state_home(root)
    jobs = settings.jobs or plan.jobs
    # The graph is checked (cycles are plan errors) before anything is written.
    analysis = analyze(plan, jobs=jobs)
    text = plan.path.read_text(encoding="utf-8") if plan.path is not None else None
    # So is the base: a run that cannot start leaves no trace.
    base_commit = await resolve_base(git, plan, text) if git is not None else ""
    # The database is synced at every commit; events.jsonl is rebuilt from it after a
    # crash, so syncing the file too would only double the cost of each transition.
    with Store.open(home, fsync_events=False, any_thread=True) as store, RunLock(home) as lock:
        run_id = new_run_id()
        lock.acquire(run_id)
        end_dead_runs(store)  # before this run's agents start, which carry its own marker
        history = store.durations(plan.name)
        if history:  # earlier runs make better estimates, and so better priorities
            analysis = reestimate(analysis, history)
        branch = None
        if isolation is Isolation.WORKTREE:
            assert git is not None
            await check_branch_namespace(git)
            branch = f"plait/{run_id}"
            await git.create_branch(branch, base_commit)
        store.create_run(
            run_id,
            plan_name=plan.name,
            plan_path=str(plan.path) if plan.path else None,
            plan_json=_plan_record(plan, settings, text),
            base=base_commit or None,
            branch=branch,
            jobs=jobs,
            started_at=time.time(),
            task_ids=list(plan.tasks),
        )
        store.update_run(run_id, status="running", pid=os.getpid())
        place = RunPlace(
            plan, analysis, store, run_id, git, isolation, home, root, base_commit, branch, jobs
        )  # fmt: skip
        return await drive(place, settings)


@dataclass(frozen=True)
class RunPlace:
    """Where and on what a run works: what `start_run` and `resume_run` set up."""

    plan: Plan
    analysis: Analysis
    store: Store
    run_id: str
    git: Git | None
    isolation: Isolation
    home: Path
    root: Path
    base_commit: str
    branch: str | None
    jobs: int
    #: The wall time of the run's earlier processes (a resumed run's), so that the
    #: run's wall is the sum of its processes' and the speed-up stays meaningful.
    wall_before_s: float = 0.0


async def drive(
    place: RunPlace,
    settings: RunSettings,
    done: Mapping[str, Outcome] | None = None,
    attempts: Mapping[str, int] | None = None,
    results: Mapping[str, dict[str, Any]] | None = None,
) -> RunOutcome:
    """Run the plan's tasks (those not already `done`) to their outcomes."""
    plan, analysis, store, run_id = place.plan, place.analysis, place.store, place.run_id
    git, isolation, home, root = place.git, place.isolation, place.home, place.root
    base_commit, branch, jobs = place.base_commit, place.branch, place.jobs
    provider: WorkspaceProvider
    merge: MergeQueue | None = None
    store.run_dir(run_id)  # where every attempt's prompt, log and output go
    setup_timeout, verify_timeout = step_timeouts(plan)
    if isolation is Isolation.WORKTREE:
        assert git is not None and branch is not None
        # finished worktrees are kept (one per job at most) and reset for later attempts,
        # this run's and the next run's
        worktrees_dir = worktrees_home(home)
        pool = WorktreePool(git, worktrees_dir / POOL_DIR, pool_size(jobs))
        provider = WorktreeProvider(
            git,
            run_id,
            worktrees_dir=worktrees_dir,
            copy=plan.copy,
            setup=plan.setup,
            scope=plan.scope,
            setup_timeout_s=setup_timeout,
            pool=pool,
        )
        merge = MergeQueue(
            git,
            branch,
            verify=plan.verify,
            verify_each_merge=plan.verify_each_merge,
            verify_dir=home / "verify" / run_id,
            verify_timeout_s=verify_timeout,
        )
    else:
        provider = InPlaceProvider(root, git)
    # A run killed before it put git's own files back left their first reading: put
    # them back before this run takes its own (the dead run's agents are ended).
    recovered = guardkeep.recover(home, git.common_dir) if git is not None else []
    recovered += await start_warnings(plan, git, isolation)
    guard = _guard_of(provider)
    if guard is not None:
        guard.on_baseline = functools.partial(guardkeep.save, home, run_id, guard.common_dir)
        guard.aside = guardkeep.aside_folder(home, run_id)
    driver = Driver(
        plan,
        analysis,
        store,
        run_id,
        provider=provider,
        merge=merge,
        base_commit=base_commit,
        jobs=jobs,
        fail_fast=settings.fail_fast,
        done=done,
        attempts_so_far=attempts,
        results=results,
        sink=settings.sink,
        defaults=fixer_defaults(plan),
    )
    # The driver's clock (the wall it records at the end, the board's run time) starts
    # where the earlier processes left off: a resumed run's wall is all of its processes'.
    driver.started -= place.wall_before_s
    for message in recovered:  # said at the start too, where a log reader looks first
        driver.emit("warning", None, message=message)
    caught: list[str] = []  # the signal that stopped the run, if plait handled one
    try:
        # (the heartbeat: what `resume` and `status` take as this process's end if it
        # is killed)
        with heartbeat.beating(store.run_dir(run_id)):
            async with _signals_cancel_run(caught):
                outcome = await driver.run()
    except asyncio.CancelledError:
        driver.journal.close()
        wall = time.monotonic() - driver.started
        store.update_run(run_id, status="interrupted", wall_s=wall)
        messages = [
            *recovered,
            f"interrupted; continue with `plait resume {run_id}`"
            if plan.path is not None
            else f'interrupted; continue with plait.resume_plan(plan, "{run_id}")',
            *_put_back(provider, home),
        ]
        return RunOutcome(
            run_id, "interrupted", dict(driver.scheduler.outcomes), None, wall,
            messages=messages, stopped_by=caught[0] if caught else None,
        )  # fmt: skip
    finally:
        # Parked worktrees outlive the run: the next one starts from them (`plait clean`
        # removes them).
        driver.journal.close()
    outcome.messages[:0] = recovered
    outcome.messages.extend(_put_back(provider, home))
    if merge is not None:
        outcome_head = await merge.tip()
        store.update_run(run_id, head=outcome_head)
    return outcome


def _guard_of(provider: WorkspaceProvider) -> GitGuard | None:
    """The guard of git's own files that `provider` keeps, if it has one."""
    return provider.guard if isinstance(provider, WorktreeProvider | InPlaceProvider) else None


def _put_back(provider: WorkspaceProvider, home: Path) -> list[str]:
    """Put back git's own files an agent changed that no attempt's check saw (after a
    Ctrl-C no attempt is collected; an attempt that ended rate limited is not): a hook
    left there would run on the user's next commit. What it says, if anything."""
    guard = _guard_of(provider)
    restored = guard.restore_shared() if guard is not None else []
    guardkeep.discard(home)  # put back: nothing is left for a later run to recover
    if not restored:
        return []
    paths = ", ".join(f".git/{p}" for p in restored)
    return [f"put back what an agent changed in git's own files: {paths}"]
