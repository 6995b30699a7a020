"""A run's environment: repository, store, lock, workspaces; start and resume.

This is the I/O shell around `runner.Driver`: it finds the repository, takes the
run lock, checks that every agent's program is installed before anything starts,
creates the integration branch, and on resume reconciles the store with git.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.agents import get_backend
from plait.analysis import Analysis, analyze
from plait.errors import BackendMissing, NotARepository, RunNotFound
from plait.git import Git
from plait.merge import MergeQueue
from plait.model import Isolation, Outcome, Plan
from plait.planfile import parse_plan, validate_plan
from plait.pool import POOL_DIR, WorktreePool, pool_size
from plait.proc import kill_marked
from plait.profiles import resolve_agent
from plait.runlock import RunLock
from plait.runner import Driver, EventSink, RunOutcome
from plait.store import AttemptRow, Store, new_run_id, state_home
from plait.taskrun import WorkspaceProvider, tries_used
from plait.workspace import InPlaceProvider, Workspace, WorktreeProvider, task_branch

FINAL_STATES = {o.value for o in Outcome}
#: Attempt statuses whose worktree a run keeps for inspection.
KEPT_ATTEMPTS = frozenset({"failed", "timeout", "crashed", "rejected", "errored"})
#: Task outcomes whose last worktree a run keeps for inspection, whatever its attempt says.
FAILED_TASKS = frozenset({Outcome.FAILED.value, Outcome.ERRORED.value})


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
    for name in sorted(used - agents.keys()):
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


async def _discover(root: Path) -> Git | None:
    try:
        return await Git.discover(root)
    except NotARepository:
        return None


def _isolation(plan: Plan, git: Git | None) -> Isolation:
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
    """SIGTERM ends the run like Ctrl-C does: cancelled, resumable."""
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    installed = False
    if current is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, current.cancel)
            installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def _plan_record(plan: Plan, settings: RunSettings) -> str:
    """What resume needs to rebuild the plan: its source text and where it lived."""
    text = plan.path.read_text(encoding="utf-8") if plan.path is not None else None
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
    git = await _discover(root)
    isolation = _isolation(plan, git)
    check_backends(plan)
    home = home or state_home(root)
    jobs = settings.jobs or plan.jobs
    # The graph is checked (cycles are plan errors) before anything is written.
    analysis = analyze(plan, jobs=jobs)
    # The database is synced at every commit; events.jsonl is rebuilt from it after a
    # crash, so syncing the file too would only double the cost of each transition.
    with Store.open(home, fsync_events=False, any_thread=True) as store, RunLock(home) as lock:
        run_id = new_run_id()
        lock.acquire(run_id)
        history = store.durations(plan.name)
        if history:  # earlier runs make better estimates, and so better priorities
            analysis = analyze(plan, jobs=jobs, history=history)
        base_commit, branch = "", None
        if git is not None:
            base_commit = await git.rev_parse_commit(plan.base or "HEAD")
        if isolation is Isolation.WORKTREE:
            assert git is not None
            branch = f"plait/{run_id}"
            await git.create_branch(branch, base_commit)
        store.create_run(
            run_id,
            plan_name=plan.name,
            plan_path=str(plan.path) if plan.path else None,
            plan_json=_plan_record(plan, settings),
            base=base_commit or None,
            branch=branch,
            jobs=jobs,
            started_at=time.time(),
            task_ids=list(plan.tasks),
        )
        store.update_run(run_id, status="running", pid=os.getpid())
        return await _drive(
            plan,
            analysis,
            store,
            run_id,
            git,
            isolation,
            home,
            root,
            base_commit,
            branch,
            jobs,
            settings,
        )


async def _drive(
    plan: Plan,
    analysis: Analysis,
    store: Store,
    run_id: str,
    git: Git | None,
    isolation: Isolation,
    home: Path,
    root: Path,
    base_commit: str,
    branch: str | None,
    jobs: int,
    settings: RunSettings,
    done: Mapping[str, Outcome] | None = None,
    attempts: Mapping[str, int] | None = None,
    results: Mapping[str, dict[str, Any]] | None = None,
) -> RunOutcome:
    provider: WorkspaceProvider
    merge: MergeQueue | None = None
    pool: WorktreePool | None = None
    if isolation is Isolation.WORKTREE:
        assert git is not None and branch is not None
        # finished worktrees are reset for the next attempts, one per job at most
        pool = WorktreePool(git, home / "worktrees" / POOL_DIR, pool_size(jobs))
        provider = WorktreeProvider(
            git,
            run_id,
            worktrees_dir=home / "worktrees",
            copy=plan.copy,
            setup=plan.setup,
            scope=plan.scope,
            pool=pool,
        )
        merge = MergeQueue(
            git,
            branch,
            verify=plan.verify,
            verify_each_merge=plan.verify_each_merge,
            verify_dir=home / "verify" / run_id,
        )
    else:
        provider = InPlaceProvider(root, git)
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
    )
    started = time.monotonic()
    try:
        async with _signals_cancel_run():
            outcome = await driver.run()
    except asyncio.CancelledError:
        driver.journal.close()
        store.update_run(run_id, status="interrupted", wall_s=time.monotonic() - started)
        return RunOutcome(
            run_id,
            "interrupted",
            dict(driver.scheduler.outcomes),
            None,
            time.monotonic() - started,
            messages=[f"interrupted; continue with `plait resume {run_id}`"],
        )
    finally:
        driver.journal.close()
        if pool is not None:  # parked worktrees outlive a run only when it is killed
            await pool.drain()
    if merge is not None:
        outcome_head = await merge.tip()
        store.update_run(run_id, head=outcome_head)
    return outcome


async def resume_run(
    run_id: str | None, settings: RunSettings, *, cwd: Path, home: Path | None = None
) -> RunOutcome:
    """Continue an interrupted run: finished tasks stay finished, in-flight ones run again."""
    home = home or state_home(cwd)
    with Store.open(home, fsync_events=False, any_thread=True) as store, RunLock(home) as lock:
        run_id = run_id or store.latest_run_id()
        if run_id is None:
            raise RunNotFound("there is no run to resume here")
        row = store.run(run_id)
        lock.acquire(run_id)
        record = json.loads(row.plan_json)
        if record.get("text") is None:
            raise RunNotFound(f"run {run_id} was started from Python; resume it from Python")
        root = Path(record["root"]) if record.get("root") else cwd
        plan = parse_plan(record["text"], file=record.get("path"), root=root)
        if record.get("path"):
            plan = dataclasses.replace(plan, path=Path(record["path"]))
        plan = with_agents(plan)
        settings.jobs = settings.jobs or record.get("jobs")
        settings.fail_fast = settings.fail_fast or bool(record.get("fail_fast"))
        git = await _discover(root)
        isolation = _isolation(plan, git)
        check_backends(plan)
        jobs = settings.jobs or row.jobs
        analysis = analyze(plan, jobs=jobs, history=store.durations(plan.name))
        # Agents of the interrupted run live on in their own sessions: end them first.
        kill_marked(f"{run_id}/", prefix=True)
        done, attempts, results = await _reconcile(store, run_id, git, row.branch, plan)
        if isolation is Isolation.WORKTREE and git is not None:
            await _close_left_open(git, store, run_id, home)
        store.update_run(run_id, status="running", pid=os.getpid(), finished_at=None)
        return await _drive(
            plan,
            analysis,
            store,
            run_id,
            git,
            isolation,
            home,
            root,
            row.base or "",
            row.branch,
            jobs,
            settings,
            done,
            attempts,
            results,
        )


async def _reconcile(
    store: Store,
    run_id: str,
    git: Git | None,
    branch: str | None,
    plan: Plan,
) -> tuple[dict[str, Outcome], dict[str, int], dict[str, dict[str, Any]]]:
    """What the store and git say happened before the interruption."""
    done: dict[str, Outcome] = {}
    attempts: dict[str, int] = {}
    results: dict[str, dict[str, Any]] = {}
    tip = await git.rev_parse_commit(branch) if git is not None and branch else None
    now = time.time()
    for attempt in store.unfinished_attempts(run_id):
        store.finish_attempt(
            run_id,
            attempt.task_id,
            attempt.attempt,
            status="interrupted",
            finished_at=now,
            error="plait stopped during this attempt",
        )
    by_task: dict[str, list[AttemptRow]] = {}
    for row in store.attempts(run_id):
        by_task.setdefault(row.task_id, []).append(row)
    for task in store.tasks(run_id):
        attempts[task.id] = task.attempts
        status = task.status
        ran_out = _tries_ran_out(plan, task.id, by_task.get(task.id, []))
        if status not in FINAL_STATES and ran_out is not None:
            # Its last attempt failed (or conflicted) with no retries left: the task
            # had ended, only its row was not updated. Running it again would give it
            # an attempt more than the plan allows.
            status = ran_out[0].value
            store.update_task(run_id, task.id, status=status, finished_at=now, error=ran_out[1])
        if (
            status == "merging"
            and task.commit
            and git is not None
            and tip is not None
            and await git.is_ancestor(task.commit, tip)
        ):
            # The merge landed before the crash; only its row was not updated. The
            # row already holds the output and files (written before the merge).
            status = Outcome.SUCCEEDED.value
            merged = await _merge_commit_of(git, tip, task.commit) or task.commit
            store.update_task(
                run_id, task.id, status=status, merged=True, finished_at=now, commit=merged
            )
            task = dataclasses.replace(task, commit=merged)
        if status in FINAL_STATES and status != Outcome.CANCELLED.value:
            done[task.id] = Outcome(status)
        if status == Outcome.SUCCEEDED.value:
            results[task.id] = {
                "output": task.output or "",
                "commit": task.commit or "",
                "branch": branch or "",
                "changed_files": list(task.changed_files or []),
            }
    return done, attempts, results


async def _merge_commit_of(git: Git, tip: str, commit: str) -> str | None:
    """The commit on `tip`'s first-parent line that merged `commit` in."""
    listed = await git.run("rev-list", "--first-parent", "--parents", tip, readonly=True)
    for line in listed.stdout.splitlines():
        ids = line.split()
        if commit in ids[2:]:
            return ids[0]
    return None


def _tries_ran_out(plan: Plan, task_id: str, rows: list[AttemptRow]) -> tuple[Outcome, str] | None:
    """The outcome of a task whose recorded attempts used up its retries or re-runs."""
    task = plan.tasks.get(task_id)
    if task is None or not rows:
        return None
    retries, reruns = tries_used(rows)
    error = max(rows, key=lambda a: a.attempt).error or ""
    if retries > task.retries:
        return Outcome.FAILED, error
    if reruns > plan.max_conflict_reruns:
        return Outcome.CONFLICTED, error
    return None


async def _close_left_open(git: Git, store: Store, run_id: str, home: Path) -> None:
    """Close the worktrees and branches a killed process left open, as it would have.

    A task's last attempt before the kill (in flight, or merged just before it) never
    reached the end of `close()`: its worktree is removed now, its uncommitted work
    kept as a snapshot ref first, unless the attempt or its task failed, which keeps
    it for inspection as in any run; a succeeded task's merged branch is deleted.
    Without this, such worktrees stay registered after the run completes and such
    branches stay forever. Judged from the state, not from what this resume changed,
    so a resume killed half-way through leaves the next one the same work to do. The
    plan verify's worktrees hold no work at all.
    """
    provider = WorktreeProvider(git, run_id, worktrees_dir=home / "worktrees")
    runs_dir = provider.worktrees_dir / run_id
    verify_dir = (home / "verify" / run_id).resolve()
    attempts = {(a.task_id, a.attempt): a for a in store.attempts(run_id)}
    statuses = {t.id: t.status for t in store.tasks(run_id)}
    for info in await git.worktree_list():
        if verify_dir in info.path.parents:
            async with git.write_lock:
                await git.run("worktree", "remove", "--force", "--force", str(info.path),
                              check=False)  # fmt: skip
            continue
        task, _, number = info.path.name.rpartition("-")
        row = attempts.get((task, int(number))) if number.isdigit() else None
        if info.path.parent != runs_dir or row is None:
            continue
        if row.status not in KEPT_ATTEMPTS and statuses.get(task) not in FAILED_TASKS:
            branch = task_branch(run_id, task)
            ws = Workspace(task, row.attempt, info.path, branch, row.start_commit or "")
            await provider.close(ws, keep=False)
    await git.worktree_prune()
    tip = await git.rev_parse(f"refs/heads/plait/{run_id}")
    succeeded = {t for t, status in statuses.items() if status == Outcome.SUCCEEDED.value}
    for ref, head in (await git.list_refs(f"refs/heads/{task_branch(run_id, '')}")).items():
        task = ref.rsplit("/", 1)[1]
        if task in succeeded and tip and await git.is_ancestor(head, tip):
            async with git.write_lock:  # -D refuses while a worktree has it checked out
                await git.run("branch", "-D", task_branch(run_id, task), check=False)
