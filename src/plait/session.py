"""A run's environment: repository, store, lock, workspaces; start and resume.

This is the I/O shell around `runner.Driver`: it finds the repository, takes the
run lock, checks that every agent's program is installed before anything starts,
creates the integration branch, and builds the workspaces and the merge queue.
`resume.py` continues an interrupted run through the same `drive()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
from plait.agents import get_backend
from plait.analysis import Analysis, analyze, reestimate
from plait.errors import (
    BackendMissing,
    EnvironmentProblem,
    GitError,
    NotARepository,
    PlanError,
    Problem,
)
from plait.git import Git, status_paths
from plait.gitguard import GitGuard
from plait.inplace import InPlaceProvider
from plait.merge import MergeQueue
from plait.model import Isolation, Outcome, Plan
from plait.planfile import validate_plan
from plait.pool import POOL_DIR, WorktreePool, pool_size
from plait.procsweep import end_runs
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


def with_agents(plan: Plan) -> Plan:
    """The plan with every agent it uses resolved, profiles read (a broken one is a
    plan error now, not in the middle of the run)."""
    used = {t.agent for t in plan.tasks.values()}
    if plan.on_verify_failure is not None:
        used.add(plan.on_verify_failure.agent)
    agents = dict(plan.agents)
    if missing := sorted(used - agents.keys()):
        # Imported here: profiles are read with the pydantic models, which a plan
        # built in Python does not otherwise need.
        from plait.profiles import resolve_agent

        for name in missing:
            agents[name] = resolve_agent(plan, name)
    return dataclasses.replace(plan, agents=agents)


def check_backends(plan: Plan) -> None:
    """Exit 3 before anything starts when an agent's program is missing or too old."""
    used = {plan.tasks[t].agent for t in plan.tasks}
    if plan.on_verify_failure is not None:
        used.add(plan.on_verify_failure.agent)
    problems = []
    for name in sorted(used):
        agent = plan.agents[name]
        message = get_backend(agent.backend).check(agent)
        if message:
            problems.append(f"agent {name!r} ({agent.backend}): {message}")
    if problems:
        raise BackendMissing("cannot start the run:\n  " + "\n  ".join(problems))


async def discover(root: Path) -> Git | None:
    """The repository whose checkout holds `root`; None outside any repository.

    Inside a bare repository (or a `.git` folder) there is no checkout to work in, and
    running in place there would let agents write over git's own files.
    """
    try:
        return await Git.discover(root)
    except NotARepository:
        probe = await Git(root, root).run(
            "rev-parse", "--is-bare-repository", "--is-inside-git-dir",
            cwd=root, check=False, readonly=True,
        )  # fmt: skip
        if probe.ok and "true" in probe.stdout.split():
            raise NotARepository(
                f"{root} is a bare repository or a git folder, with no checkout for agents "
                "to work in: run plait in a clone, or in a worktree of it (`git worktree add`)"
            ) from None
        return None


async def check_branch_namespace(git: Git) -> None:
    """plait's branches live under `plait/`; a branch named `plait` blocks them all (git
    cannot have a ref and a folder of refs of one name)."""
    if await git.rev_parse("refs/heads/plait") is not None:
        raise EnvironmentProblem(
            "this repository has a branch named `plait`, so git cannot create the run's "
            "branches (plait/<run>, plait/tasks/...): rename it, e.g. "
            "`git branch -m plait plait-old`"
        )


def isolation_of(plan: Plan, git: Git | None) -> Isolation:
    if plan.isolation is Isolation.WORKTREE and git is None:
        raise NotARepository(
            f"{plan.root or Path.cwd()} is not inside a git repository; "
            "run `git init` first, or set `isolation: none` in the plan"
        )
    if plan.isolation is not None:
        return plan.isolation
    return Isolation.WORKTREE if git is not None else Isolation.NONE


@contextlib.asynccontextmanager
async def _signals_cancel_run() -> AsyncIterator[None]:
    """SIGTERM, and SIGHUP (the terminal or ssh session closed), end the run like Ctrl-C
    does: cancelled, its agents ended, resumable.

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
                loop.add_signal_handler(sig, current.cancel)
                installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


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


async def resolve_base(git: Git, plan: Plan, text: str | None) -> str:
    """The commit the run starts from; a `base` naming none is a plan error (exit 2)."""
    try:
        return await git.rev_parse_commit(plan.base or "HEAD")
    except GitError:
        if plan.base is None:
            raise EnvironmentProblem(
                f"{git.toplevel} has no commit yet: commit something before `plait run`"
            ) from None
    line = column = None
    if text is not None:
        from plait.planyaml import read_yaml

        line, column = read_yaml(text).where("base")
    message = f"{plan.base!r} does not name a commit in this repository"
    # (named as the other plan errors name it: from where the user is, if below)
    file = None
    if plan.path is not None:
        below = not os.path.relpath(plan.path).startswith("..")
        file = os.path.relpath(plan.path) if below else str(plan.path)
    raise PlanError([Problem("base", message, line, column)], file)


async def check_base(plan: Plan) -> None:
    """For `plait plan`: a `base` that names no commit here is the plan error `run`
    would give (exit 2), not a plan shown as valid. Outside a repository: unchecked."""
    if plan.base is None:
        return
    git = await discover((plan.root or Path.cwd()).resolve())
    if git is None:
        return
    text = None
    if plan.path is not None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            text = Path(plan.path).read_text(encoding="utf-8")
    await resolve_base(git, plan, text)


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
    if isolation is Isolation.WORKTREE and git is not None:
        recovered += _copy_unmatched(plan, git.toplevel)
        recovered += await _not_committed(git, plan)
    recovered += _budget_blind_spots(plan)
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
    try:
        # (the heartbeat: what `resume` and `status` take as this process's end if it
        # is killed)
        with heartbeat.beating(store.run_dir(run_id)):
            async with _signals_cancel_run():
                outcome = await driver.run()
    except asyncio.CancelledError:
        driver.journal.close()
        wall = time.monotonic() - driver.started
        store.update_run(run_id, status="interrupted", wall_s=wall)
        messages = [
            *recovered,
            f"interrupted; continue with `plait resume {run_id}`",
            *_put_back(provider, home),
        ]
        return RunOutcome(
            run_id, "interrupted", dict(driver.scheduler.outcomes), None, wall, messages=messages
        )
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


def _copy_unmatched(plan: Plan, top: Path) -> list[str]:
    """What to say of `copy` entries that match no file in the checkout: a misspelt
    `.env.local` shows up otherwise only as agents and tests failing without it."""
    missing = [p for p in plan.copy if not Path(p).is_absolute() and not any(top.glob(p))]
    return [f"copy: {p!r} matches no file in {top}, so no workspace gets it" for p in missing]


async def _not_committed(git: Git, plan: Plan) -> list[str]:
    """What to say of changes in the checkout that no worktree will have: agents start
    from a commit, and an uncommitted script or fix (the agent's own program, often)
    is simply not there. The plan and the agent profiles are read from the checkout
    itself, so they do not count."""
    listed = await git.run("status", "--porcelain=v1", "-z", readonly=True, check=False)
    if not listed.ok:
        return []
    plan_file = None
    if plan.path is not None:
        with contextlib.suppress(ValueError):
            plan_file = Path(plan.path).resolve().relative_to(git.toplevel.resolve()).as_posix()
    paths = [
        p
        for p in dict.fromkeys(status_paths(listed.stdout))
        if p != plan_file and not p.startswith((".plait/", ".claude/"))
    ]
    if not paths:
        return []
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return [f"not committed, so not in the agents' worktrees (they start from a commit): {shown}"]


def _budget_blind_spots(plan: Plan) -> list[str]:
    """What to say of a `budget_usd` that some agents' spending cannot count toward:
    plait counts only the cost an agent reports, and never estimates one."""
    if plan.budget_usd is None:
        return []
    used = dict.fromkeys(task.agent for task in plan.tasks.values())
    blind = [
        f"{name} ({plan.agents[name].backend})"
        for name in used
        if name in plan.agents
        and not getattr(get_backend(plan.agents[name].backend), "REPORTS_COST", False)
    ]
    if not blind:
        return []
    return [
        f"budget_usd counts only the cost agents report, and these report none: "
        f"{', '.join(blind)}; what they spend is not counted"
    ]


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
