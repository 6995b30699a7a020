"""`plait resume`: continue an interrupted run where it stopped.

The store says what each task had reached; git says which merges landed. Resume
reconciles the two (a merge that landed before the crash is recorded, not run
again; a task whose tries ran out is ended), ends the killed run's leftover agents,
closes the worktrees it left open, and drives the rest like any run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plait.analysis import analyze
from plait.branches import clear_stale_ref_locks, task_branch
from plait.carryover import tries_used
from plait.errors import RunNotFound, UsageError
from plait.git import ZERO_OID, Git
from plait.model import Isolation, Outcome, Plan, Task
from plait.planfile import parse_plan, validate_plan
from plait.planrules import FIXER_TASK_ID
from plait.runcheck import check_backends, discover, isolation_of, with_agents
from plait.runlock import RunLock
from plait.runner import RunOutcome, fixer_task
from plait.session import RunPlace, RunSettings, drive, end_dead_runs, fixer_defaults
from plait.statehome import state_home, usable_home, worktrees_home
from plait.status import RESUMED_EVENT, last_sign_of_life, latest_process, stopped_at
from plait.store import AttemptRow, RunRow, Store
from plait.workspace import Workspace
from plait.worktrees import WorktreeProvider

FINAL_STATES = {o.value for o in Outcome}
#: Run statuses of a run that ended: resuming one changes nothing.
FINISHED_RUNS = frozenset({"succeeded", "failed"})
#: Attempt statuses whose worktree a run keeps for inspection.
KEPT_ATTEMPTS = frozenset({"failed", "timeout", "crashed", "rejected", "errored"})
#: Task outcomes whose last worktree a run keeps for inspection, whatever its attempt says.
FAILED_TASKS = frozenset({Outcome.FAILED.value, Outcome.ERRORED.value})


async def resume_run(
    run_id: str | None,
    settings: RunSettings,
    *,
    cwd: Path,
    home: Path | None = None,
    python_plan: Plan | None = None,
) -> RunOutcome:
    """Continue an interrupted run: finished tasks stay finished, in-flight ones run again.

    A run started from Python has no plan text to rebuild it from (its agents may be
    callables): `python_plan` is that plan again (`plait.resume_plan`)."""
    home = usable_home(home or state_home(cwd))
    if not Store.exists(home):  # (opening would create an empty state for nothing)
        raise RunNotFound(f"no plait runs in {cwd} yet; there is no run to resume")
    with Store.open(home, fsync_events=False, any_thread=True) as store, RunLock(home) as lock:
        run_id = run_id or store.latest_run_id()
        if run_id is None:
            raise RunNotFound("there is no run to resume here")
        row = store.run(run_id)
        if row.status in FINISHED_RUNS:
            return _already_finished(store, row)
        lock.acquire(run_id)
        record = json.loads(row.plan_json)
        if record.get("text") is None and python_plan is None:
            raise RunNotFound(
                f"run {run_id} was started from Python: resume it there, with "
                f'plait.resume_plan(plan, "{run_id}") and the same plan'
            )
        root = Path(record["root"]) if record.get("root") else cwd
        if not root.is_dir():
            raise RunNotFound(
                f"run {run_id} was started in {root}, which is gone (moved or renamed?); "
                "resume it from there, or start the plan again with `plait run`"
            )
        if python_plan is not None:
            plan = validate_plan(dataclasses.replace(python_plan, root=python_plan.root or root))
            _same_tasks(plan, store, run_id)
        else:
            plan = parse_plan(record["text"], file=record.get("path"), root=root)
        if record.get("path"):
            plan = dataclasses.replace(plan, path=Path(record["path"]))
        plan = with_agents(plan)
        settings.jobs = settings.jobs or record.get("jobs")
        settings.fail_fast = settings.fail_fast or bool(record.get("fail_fast"))
        git = await discover(root)
        isolation = isolation_of(plan, git)
        if isolation is Isolation.WORKTREE and git is not None and row.branch:
            await _check_result_branch(git, row.branch, run_id)
        check_backends(plan)
        jobs = settings.jobs or row.jobs
        analysis = analyze(plan, jobs=jobs, history=store.durations(plan.name))
        # Measured before this process writes anything (its writes are no sign of the
        # killed one's life); recorded with the moment it starts, for the next resume.
        wall_before = earlier_wall_s(store, row)
        died = stopped_at(store, row)  # for the attempts the stopped plait left open
        store.add_event(run_id, RESUMED_EVENT, None, wall_before_s=round(wall_before, 3))
        # Agents of the interrupted run (and of any other killed one) live on in their
        # own sessions: end them first.
        end_dead_runs(store)
        if git is not None:  # and a git process killed with it may have left a ref locked
            clear_stale_ref_locks(git.common_dir, run_id)
        tasks = dict(plan.tasks)
        if (fixer := fixer_task(plan, fixer_defaults(plan))) is not None:
            tasks[fixer.id] = fixer  # its row is reconciled like a task's
        done, attempts, results = await _reconcile(
            store, run_id, git, row.branch, plan, tasks, died
        )
        if isolation is Isolation.WORKTREE and git is not None:
            await _close_left_open(git, store, run_id, home)
        # No end recorded until this process records its own (wall_s with it).
        store.update_run(run_id, status="running", pid=os.getpid(), finished_at=None, wall_s=None)
        place = RunPlace(
            plan, analysis, store, run_id, git, isolation, home, root, row.base or "",
            row.branch, jobs, wall_before_s=wall_before,
        )  # fmt: skip
        outcome = await drive(place, settings, done, attempts, results)
    changed = _plan_changed(record, root, run_id)
    if changed:
        outcome.messages.insert(0, changed)
    return outcome


def _same_tasks(plan: Plan, store: Store, run_id: str) -> None:
    """A plan given again to resume a run must be the run's: a task missing from it was
    left unfinished while the run said it succeeded, a new one had no row to run in."""
    recorded = {t.id for t in store.tasks(run_id)} - {FIXER_TASK_ID}
    missing, extra = sorted(recorded - set(plan.tasks)), sorted(set(plan.tasks) - recorded)
    if missing or extra:
        said = [f"without {', '.join(missing)}"] if missing else []
        said += [f"with {', '.join(extra)} added"] if extra else []
        raise UsageError(
            f"this plan is not run {run_id}'s ({' and '.join(said)}): resume it with the "
            "plan it was started with, or start this one with plait.run_plan"
        )


def _plan_changed(record: Mapping[str, Any], root: Path, run_id: str) -> str | None:
    """A note if the plan file was edited since the run started: resume goes on with
    the plan as it was (the one its finished tasks ran under), which would otherwise
    surprise whoever edited it."""
    if not record.get("path"):
        return None
    path = Path(record["path"])
    try:
        now = (path if path.is_absolute() else root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if now == record.get("text"):
        return None
    return (
        f"{path} changed since run {run_id} started: the run went on with the plan as it "
        "was then; start a new run (`plait run`) for the plan as it is now"
    )


async def _check_result_branch(git: Git, branch: str, run_id: str) -> None:
    """A run whose result branch is gone cannot go on: exit 2, nothing changed.

    Its merged tasks' work lived on that branch alone (`plait clean --branches`
    deletes it), so resuming would either fail half-way or build on nothing. Like
    asking for a run that does not exist, it is the request that cannot be met.
    """
    if await git.rev_parse(f"refs/heads/{branch}^{{commit}}") is None:
        raise RunNotFound(
            f"run {run_id} cannot be resumed: its result branch {branch} is gone "
            "(`plait clean --branches` deletes it); start the plan again with `plait run`"
        )


def earlier_wall_s(store: Store, row: RunRow) -> float:
    """The wall time of the run's processes so far, before the one resuming it now.

    Each process counts from its start to its end: the end it recorded when a signal
    stopped it (its `wall_s` is then the whole run's so far), or, when it was killed
    outright, the run's last sign of life (as `plait status` judges it). Where the
    last process started, and what came before it, is in its `RESUMED_EVENT`; the
    first process started with the run. The gaps between processes do not count.
    """
    if row.status != "running" and row.wall_s is not None:
        return row.wall_s
    # Not `run_wall_s`: this process holds the lock now, so the run looks alive.
    start, before = latest_process(store, row)
    return before + max(0.0, last_sign_of_life(store, row) - start)


def _already_finished(store: Store, row: RunRow) -> RunOutcome:
    """A run that ended is left as it is: resuming it changes nothing, and says how it
    ended, with its exit code (so a script that resumes after any stop gets the run's)."""
    outcomes = {t.id: Outcome(t.status) for t in store.tasks(row.id) if t.status in FINAL_STATES}
    verify = row.verify.get("ok") if isinstance(row.verify, dict) else None
    return RunOutcome(
        row.id,
        row.status,
        outcomes,
        verify if isinstance(verify, bool) else None,
        row.wall_s or 0.0,
        messages=[f"run {row.id} already finished ({row.status}); there is nothing to resume"],
    )


async def _reconcile(
    store: Store,
    run_id: str,
    git: Git | None,
    branch: str | None,
    plan: Plan,
    tasks: Mapping[str, Task],
    died: float,
) -> tuple[dict[str, Outcome], dict[str, int], dict[str, dict[str, Any]]]:
    """What the store and git say happened before the interruption (`tasks`: the plan's
    and the fixer, by id; `died`: when the plait that left attempts open was last alive)."""
    done: dict[str, Outcome] = {}
    attempts: dict[str, int] = {}
    results: dict[str, dict[str, Any]] = {}
    tip = await git.rev_parse_commit(branch) if git is not None and branch else None
    now = time.time()
    # An attempt the killed plait left in flight ended with that plait, not now: the
    # time between is no part of the run (nor of the sum of its task times).
    for attempt in store.unfinished_attempts(run_id):
        store.finish_attempt(
            run_id,
            attempt.task_id,
            attempt.attempt,
            status="interrupted",
            finished_at=max(attempt.started_at, min(died, now)),
            error="plait stopped during this attempt",
        )
    by_task: dict[str, list[AttemptRow]] = {}
    for row in store.attempts(run_id):
        by_task.setdefault(row.task_id, []).append(row)
    for task in store.tasks(run_id):
        attempts[task.id] = task.attempts
        status = task.status
        ran_out = _tries_ran_out(plan, tasks.get(task.id), by_task.get(task.id, []))
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


def _tries_ran_out(
    plan: Plan, task: Task | None, rows: list[AttemptRow]
) -> tuple[Outcome, str] | None:
    """The outcome of a task whose recorded attempts used up its retries or re-runs."""
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
    provider = WorktreeProvider(git, run_id, worktrees_dir=worktrees_home(home))
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
        if info.path.parent == runs_dir and info.branch is None and info.head in (None, ZERO_OID):
            # Killed while `git worktree add` made it (its HEAD is still git's detached
            # placeholder): no agent ran there, nothing to keep; git fsck flags it. (An
            # agent's `checkout --orphan` also leaves no commit, but on a branch.)
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
