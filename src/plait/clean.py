"""`plait clean`: remove what runs left in the repository, keeping their work as refs.

Worktrees (pooled ones too) are removed after their uncommitted work is
snapshotted, and task branches are deleted after an unmerged one is kept as a
snapshot ref. With `result_branches`, a run's integration branch goes as well,
kept as a snapshot ref unless a branch of the user's holds it (the run was
applied), and so do the snapshot refs a branch of the user's holds. Refs checked
out somewhere, and worktrees or branches plait did not make, are never touched.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass
from pathlib import Path

from plait.branches import RUN_ID, integration_branch, snapshot_ref, snapshots_of, task_branch
from plait.git import ZERO_OID, Git
from plait.pool import POOL_DIR, WorktreePool
from plait.worktreegit import found_workspace, remove_worktree, snapshot

__all__ = ["CleanReport", "clean_runs", "result_snapshot"]


@dataclass(frozen=True)
class CleanReport:
    """What `clean` removed, and what it kept as refs."""

    worktrees: tuple[Path, ...] = ()
    branches: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()  # refs holding work that would otherwise be lost
    pooled: tuple[Path, ...] = ()  # parked worktrees of the pool, no run's (not in worktrees)
    made: tuple[str, ...] = ()  # those of `snapshots` this clean wrote (others were there)


async def clean_runs(
    git: Git,
    worktrees_dir: Path,
    pool: WorktreePool | None,
    run_id: str | None = None,
    *,
    result_branches: bool = False,
    verify_dir: Path | None = None,
) -> CleanReport:
    """Remove the worktrees and task branches of one run (or all runs).

    A task branch that is not merged into its run's integration branch is
    kept as a snapshot ref first. With `result_branches`, the integration
    branch `plait/<run>` goes too, kept as `result_snapshot(run)` unless a
    branch of the user's holds its commit; snapshot refs stay unless a branch
    of the user's holds their commit (they are the only copy of unmerged
    work). Refs checked out somewhere are never deleted. An existing snapshot
    ref is never overwritten, and the report's `made` lists the refs this
    call wrote. The pool of finished worktrees is emptied too, and so are the
    checkouts of the plan's verify (under `verify_dir`) that a killed run left.
    """
    root = worktrees_dir / run_id if run_id else worktrees_dir
    pool = pool or WorktreePool(git, worktrees_dir / POOL_DIR, 0)
    pooled = await pool.drain()
    removed: list[Path] = []
    checks = None if verify_dir is None else verify_dir / run_id if run_id else verify_dir
    saved: list[str] = []
    checked_out: set[str] = set()
    for info in await git.worktree_list():
        if checks is not None and checks in info.path.parents:
            async with git.write_lock:  # a detached checkout of a merge result: no work
                await remove_worktree(git, info.path)
            removed.append(info.path)
            continue
        inside = info.path == root or root in info.path.parents
        if not inside:
            if info.branch:
                checked_out.add(info.branch)
            continue
        run = info.path.relative_to(worktrees_dir).parts[0]
        ws = found_workspace(git, info.path, info.head)
        ref = await snapshot(git, ws, run) if info.head else True
        if isinstance(ref, str):
            saved.append(ref)
        async with git.write_lock:
            await remove_worktree(git, info.path)
        removed.append(info.path)
    for folder in (root, checks):
        if folder is not None and folder.exists():
            shutil.rmtree(folder)
    await git.worktree_prune()
    made = list(saved)  # the refs this clean wrote (saved also lists ones kept from before)
    tasks_prefix = f"refs/heads/{task_branch(run_id, '')}" if run_id else "refs/heads/plait/tasks/"
    doomed: list[str] = []
    for ref, oid in (await git.list_refs(tasks_prefix)).items():
        if ref in checked_out:
            continue
        run, _, task = ref.removeprefix("refs/heads/plait/tasks/").partition("/")
        tip = await git.rev_parse(f"refs/heads/{integration_branch(run)}")
        merged = tip is not None and await git.is_ancestor(oid, tip)
        if not merged:  # its work survives it, --branches or not
            backup = snapshot_ref(run, task, "branch")
            await _keep(git, backup, oid, "plait clean: unmerged task branch", saved, made)
        doomed.append(ref)
    if result_branches:
        runs = [run_id] if run_id else sorted(await _run_ids(git))
        for run in runs:
            ref = f"refs/heads/{integration_branch(run)}"
            tip = await git.rev_parse(ref)
            if ref in checked_out or tip is None:
                continue
            # A run nobody applied: its result is work no branch of the user's holds.
            if not await _held_by_users(git, tip):
                backup = result_snapshot(run)
                await _keep(git, backup, tip, "plait clean: unapplied result", saved, made)
            doomed.append(ref)
        for run in runs:
            for ref, oid in (await git.list_refs(snapshots_of(run))).items():
                if await _held_by_users(git, oid):
                    doomed.append(ref)  # a branch that stays has it: nothing is lost
                elif ref not in saved:
                    saved.append(ref)
        saved = [ref for ref in saved if ref not in doomed]
        made = [ref for ref in made if ref not in doomed]
    await git.delete_refs(doomed)
    branches = tuple(r.removeprefix("refs/heads/") for r in doomed if r.startswith("refs/heads/"))
    return CleanReport(tuple(removed), branches, tuple(saved), tuple(pooled), tuple(made))


def result_snapshot(run_id: str) -> str:
    """Where `clean --branches` keeps the result of a run nobody applied.

    `_` cannot start a task id, so no task's snapshots (`<run>/<task>/...`) clash.
    """
    return f"{snapshots_of(run_id)}_result"


async def _keep(
    git: Git, ref: str, oid: str, message: str, saved: list[str], made: list[str]
) -> None:
    """Keep commit `oid` under `ref`, or `ref-2`, `ref-3`... when `ref` holds another
    commit (a resumed run's task can be cleaned twice): an old snapshot is never
    overwritten. Adds the ref to `saved`, and to `made` if this wrote it."""
    name = ref
    for number in itertools.count(2):
        current = await git.rev_parse(name)
        if current == oid:
            break
        if current is None and await git.update_ref(name, oid, ZERO_OID, message=message):
            made.append(name)
            break
        name = f"{ref}-{number}"
    if name not in saved:
        saved.append(name)


async def _held_by_users(git: Git, oid: str) -> bool:
    """True if a local branch that is not plait's own (a run's result or task branch)
    contains commit `oid`: the user's branches stay, plait's may go at the next clean."""
    result = await git.run(
        "for-each-ref", "--contains", oid, "--format=%(refname)", "refs/heads/",
        readonly=True, check=False,
    )  # fmt: skip
    for ref in result.stdout.split():
        name = ref.removeprefix("refs/heads/plait/")
        if name == ref or not (name.startswith("tasks/") or RUN_ID.fullmatch(name)):
            return True
    return False


async def _run_ids(git: Git) -> set[str]:
    """Runs that have task branches, or an integration branch named like a run id.

    A branch `plait/<name>` that does not look like a run id is the user's own.
    """
    runs = {r.split("/")[4] for r in await git.list_refs("refs/heads/plait/tasks/")}
    for ref in await git.list_refs("refs/heads/plait/"):
        name = ref.removeprefix("refs/heads/plait/")
        if RUN_ID.fullmatch(name):
            runs.add(name)
    return runs
