"""`plait apply` and `plait clean`: the only commands that touch the user's checkout.

A run never touches the user's branch, index or working tree. `apply` merges a
run's result branch into the current branch, and only when nothing of the user's
is in the way: the checkout is on a branch, has no uncommitted changes and no
merge, rebase, cherry-pick, revert or bisect of the user's own in progress, and
the merge (tried first in memory) neither conflicts nor writes a file where an
untracked or ignored one is. Otherwise it says why and changes nothing. A run
still in progress is never applied (its branch holds only what merged so far); an
interrupted or failed one is, after saying which tasks its result lacks. `clean`
ends what killed runs left running before it removes their worktrees, and keeps
the result of a run nobody applied as a snapshot ref before it deletes its branch.
"""

from __future__ import annotations

import os
from pathlib import Path

from plait import guardkeep
from plait.branches import RUN_ID, snapshots_of, task_branch
from plait.errors import ApplyRefused, EnvironmentProblem, GitError, RunNotFound
from plait.git import Git
from plait.procsweep import end_runs
from plait.runlock import LockHolder, RunLock
from plait.statehome import state_home, usable_home, worktrees_home
from plait.status import shown_status
from plait.store import Store, TaskRow

#: Task statuses not in a run's result, and how `apply` names them; others "not finished".
_MISSING = {
    "failed": "failed",
    "errored": "errored",
    "conflicted": "conflicted",
    "skipped": "skipped",
    "cancelled": "cancelled",
    "pending": "not run",
    "ready": "not run",
}


class RunInProgress(EnvironmentProblem):
    """`plait apply` of a run that a live plait is still driving (exit 3, as a held lock)."""

    def __init__(self, run_id: str, holder: LockHolder) -> None:
        who = f"plait process {holder.pid}" + (f" on {holder.host}" if holder.host else "")
        if not holder.run_id:
            who += " (`plait clean`, or a run it does not name)"
        super().__init__(
            f"not applied: run {run_id} is still in progress ({who} holds this "
            f"repository's run lock); its branch holds only what merged so far. "
            f"Wait for it to finish, then run `plait apply {run_id}`; nothing was changed."
        )


async def apply_run(cwd: Path, run_id: str) -> str:
    """Merge `plait/<run>` into the current branch; a message saying what happened."""
    git = await Git.discover(cwd)
    home = state_home(git.toplevel)
    holder = RunLock(home).holder()
    # The lock names the run it drives; a holder that names none could be this one, or
    # `plait clean` (which may be deleting the branch this would merge).
    if holder is not None and holder.run_id in (run_id, None, ""):
        raise RunInProgress(run_id, holder)
    if _ran_in_place(home, run_id):
        return (
            f"run {run_id} ran in the checkout itself (isolation: none): its changes are "
            "already there, and there is nothing to apply"
        )
    branch = f"plait/{run_id}"
    result = await git.rev_parse(f"refs/heads/{branch}")
    if result is None:
        raise RunNotFound(f"run {run_id} has no result branch {branch} (was it cleaned?)")
    note = _put_back_after_kill(home, git) + await _unfinished_note(git, home, run_id, result)
    # Everything is decided before the checkout is touched: once `git merge` has
    # started, its `--abort` would delete the ignored files it overwrote.
    git_dir = await _refuse_unless_ready(git, run_id)
    head = await git.rev_parse("HEAD")
    if head is not None and await git.is_ancestor(result, head):
        return f"{note}{branch} is already part of the current branch; nothing to do"
    await _refuse_unless_mergeable(git, run_id, branch, result, head)
    merged = await git.run(
        "merge", "--no-edit", "-m", f"Merge plait run {run_id}", branch,
        env=await git.identity_env(), check=False,
    )  # fmt: skip
    if merged.returncode != 0:
        # Only a merge plait started (there was no MERGE_HEAD before) is aborted:
        # git explains on stderr when it refuses to start, on stdout when it stops.
        why = merged.stderr.strip() or merged.stdout.strip()
        outcome = "nothing was changed"
        if (git_dir / "MERGE_HEAD").exists():
            aborted = await git.run("merge", "--abort", check=False)
            if not aborted.ok:
                outcome = f"`git merge --abort` failed too ({aborted.stderr.strip()}): "
                outcome += "the merge is still in progress, `git status` shows it"
        raise ApplyRefused(
            f"not applied: git could not merge {branch} into the current branch:\n{why}\n"
            f"Once what git names is dealt with, run `plait apply {run_id}`; {outcome}."
        )
    now = await git.rev_parse("HEAD")
    return f"{note}applied {branch} to the current branch (now at {str(now)[:12]})"


def _put_back_after_kill(home: Path, git: Git) -> str:
    """Put back git's own files as a run killed with SIGKILL found them (its agents
    ended first), as `run` and `resume` do: `git merge` would run a hook one of its
    agents planted. What was put back, as lines of the message."""
    if not (home / guardkeep.BASELINE_FILE).exists():
        return ""
    if RunLock(home).holder() is not None:
        return ""  # a live run's own reading, not a killed one's: that run puts back
    from plait.session import end_dead_runs

    with RunLock(home) as lock:
        lock.acquire("")
        with Store.open(home) as store:
            end_dead_runs(store)
        return "".join(f"{line}\n" for line in guardkeep.recover(home, git.common_dir))


#: What a file or folder in the git dir says is in progress, and how to end it.
_IN_PROGRESS = (
    ("rebase-merge", "a rebase", "`git rebase --continue` or `git rebase --abort`"),
    ("rebase-apply", "a rebase (or `git am`)", "`git rebase --abort` or `git am --abort`"),
    ("MERGE_HEAD", "a merge", "`git commit` or `git merge --abort`"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "`git cherry-pick --continue` or `--abort`"),
    ("REVERT_HEAD", "a revert", "`git revert --continue` or `--abort`"),
    ("sequencer", "a cherry-pick or revert", "`git cherry-pick --continue` or `--abort`"),
    ("BISECT_START", "a bisect", "`git bisect reset`"),
)


async def _refuse_unless_ready(git: Git, run_id: str) -> Path:
    """ApplyRefused unless the checkout is on a branch, clean, and in no operation of the
    user's own; the checkout's git dir (a linked worktree has its own)."""
    found = await git.run("rev-parse", "--absolute-git-dir", readonly=True)
    git_dir = Path(found.stdout.strip())
    for name, what, end in _IN_PROGRESS:
        if (git_dir / name).exists():
            raise ApplyRefused(
                f"not applied: {what} is in progress in this checkout; finish or end it "
                f"({end}), then run `plait apply {run_id}`; nothing was changed."
            )
    on_branch = await git.run("symbolic-ref", "-q", "HEAD", readonly=True, check=False)
    if on_branch.returncode != 0:
        raise ApplyRefused(
            "not applied: HEAD is detached, there is no current branch to merge into. "
            f"Check out the branch to apply it to (`git switch <branch>`), then run "
            f"`plait apply {run_id}`; nothing was changed."
        )
    dirty = await git.run("status", "--porcelain", "--untracked-files=no", readonly=True)
    if dirty.stdout.strip():
        files = ", ".join(line[3:] for line in dirty.stdout.splitlines()[:10])
        raise ApplyRefused(
            f"not applied: the working tree has uncommitted changes ({files}). "
            f"Commit or stash them, then run `plait apply {run_id}`; nothing was changed."
        )
    return git_dir


async def _refuse_unless_mergeable(
    git: Git, run_id: str, branch: str, result: str, head: str | None
) -> None:
    """ApplyRefused if merging `branch` into HEAD would conflict, or would write a file
    where the user has one git does not track (git overwrites an ignored one silently).

    The files in the way are named first: merging by hand would overwrite them too.
    """
    if head is None:  # an unborn branch: the merge checks out the result as it is
        conflicts: tuple[str, ...] = ()
        listed = await git.run("ls-tree", "-r", "-z", "--name-only", result, readonly=True)
    else:
        try:
            merge = await git.merge_tree(head, result)
        except GitError as exc:  # unrelated histories, say
            raise ApplyRefused(
                f"not applied: git cannot merge {branch} into the current branch: "
                f"{exc.stderr.strip()}; nothing was changed."
            ) from None
        conflicts = merge.conflicts
        listed = await git.run(
            "diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", "--no-ext-diff",
            head, merge.tree, "--", readonly=True,
        )  # fmt: skip
    added = [path for path in listed.stdout.split("\0") if path]
    in_the_way = await _in_the_way(git, added)
    if in_the_way:
        also = f" (merging it would then conflict in {_some(conflicts)})" if conflicts else ""
        raise ApplyRefused(
            f"not applied: merging {branch} would overwrite files the current branch does "
            f"not track (untracked or ignored): {_some(in_the_way)}{also}. Move them away, "
            f"then run `plait apply {run_id}`; nothing was changed."
        )
    if conflicts:
        raise ApplyRefused(
            f"not applied: {branch} conflicts with the current branch in {_some(conflicts)}. "
            f"To resolve it by hand: `git merge {branch}`; nothing was changed."
        )


async def _in_the_way(git: Git, added: list[str]) -> list[str]:
    """The paths among `added` (new in the merge) that something on disk occupies.

    A file or symlink there is in the way; so is a folder holding anything git does
    not track (a folder of tracked files only is the merge's to replace), and a file
    or symlink that is not tracked where the path needs a folder.
    """
    top = git.toplevel
    found: list[str] = []
    for path in added:
        where = top / path
        if os.path.lexists(where):
            if not where.is_dir() or where.is_symlink() or await _untracked_under(git, path):
                found.append(path)
            continue
        for parent in reversed(Path(path).parents[:-1]):  # "a", then "a/b"
            spot = top / parent
            if not os.path.lexists(spot):
                break
            if spot.is_symlink() or not spot.is_dir():
                tracked = await git.run("ls-files", "-z", "--", parent.as_posix(), readonly=True)
                if not tracked.stdout:
                    found.append(parent.as_posix())
                break
    return sorted(set(found))


async def _untracked_under(git: Git, folder: str) -> bool:
    """True if the folder holds a file git does not track (ignored ones too)."""
    others = await git.run("ls-files", "-z", "--others", "--", folder, readonly=True)
    return bool(others.stdout)


def _some(paths: list[str] | tuple[str, ...], most: int = 10) -> str:
    """Up to `most` paths, comma-separated, and how many more."""
    shown = ", ".join(paths[:most])
    return shown + (f" and {len(paths) - most} more" if len(paths) > most else "")


def _ran_in_place(home: Path, run_id: str) -> bool:
    """True if the store knows the run and it made no result branch (isolation: none)."""
    if not Store.exists(home):
        return False
    with Store.open(home) as store:
        try:
            return store.run(run_id).branch is None
        except RunNotFound:
            return False


async def _unfinished_note(git: Git, home: Path, run_id: str, result: str) -> str:
    """What a run that did not succeed leaves out of its result, as lines to say first.

    Empty for a succeeded run and for one the store does not know (its branch is all
    there is to go by). Called only once no live plait holds the lock for the run, so
    a row still saying "running" belongs to a plait that died: interrupted.
    """
    if not Store.exists(home):
        return ""
    with Store.open(home) as store:
        try:
            row = store.run(run_id)
        except RunNotFound:
            return ""
        status = shown_status(row)
        tasks = store.tasks(run_id)
    if status == "succeeded":
        return ""
    interrupted = status in ("interrupted", "running")
    ended = "failed" if status == "failed" else f"ended {status}"
    head = f"run {run_id} " + ("was interrupted" if interrupted else ended)
    missing = await _missing_tasks(git, tasks, result)
    if missing:
        head += f": its result lacks {len(missing)} task(s): {', '.join(missing)}"
        if isinstance(row.verify, dict) and row.verify.get("status") == "not run":
            head += "; the plan's verify did not run on it"
    elif isinstance(row.verify, dict) and row.verify.get("ok") is False:
        head += ": every task is in its result, but the plan's verify failed on it"
    elif interrupted:
        head += " before it finished (the plan's verify has not run on its result)"
    elif row.error:
        head += f": {row.error}"
    lines = [head + "."]
    if interrupted:
        lines.append(f"`plait resume {run_id}` would finish it (then apply it again).")
    lines.append("Applying what it has.")
    return "\n".join(lines) + "\n"


async def _missing_tasks(git: Git, tasks: list[TaskRow], result: str) -> list[str]:
    """`id (why)` for each task whose work is not in the result, in the plan's order.

    Git has the last word, as resume's reconciliation gives it: a merge that landed
    just before plait died is in the result although its row still says "merging".
    """
    missing = []
    for task in sorted(tasks, key=lambda t: t.position):
        if task.status == "succeeded":
            continue
        if task.status == "merging" and task.commit and await git.is_ancestor(task.commit, result):
            continue
        missing.append(f"{task.id} ({_MISSING.get(task.status, 'not finished')})")
    return missing


async def clean_runs(cwd: Path, run_id: str | None, *, branches: bool = False) -> str:
    """Remove plait's worktrees and task branches (and result branches if asked)."""
    from plait.worktrees import WorktreeProvider

    git = await Git.discover(cwd)
    home = usable_home(state_home(git.toplevel))
    if run_id is not None and not await _known_run(git, home, run_id):
        # As `plait apply` does: a mistyped id is a usage error, not "removed 0".
        raise RunNotFound(f"no run {run_id!r} here; `plait runs` lists them")
    with RunLock(home) as lock:
        if home.is_dir():  # a run in progress keeps its worktrees (and the pool's)
            lock.acquire("")
        run_ids: list[str | None] = [run_id]
        if run_id is None and Store.exists(home):
            with Store.open(home) as store:
                run_ids = [row.run_id for row in store.runs()] or [None]
        # With the lock held no plait drives any of these runs: whatever still carries
        # one's marker was left by a plait that died (SIGKILL, a crash) and would go on
        # spending money after its worktree is gone. End it first (DESIGN §6).
        ended = end_runs(one for one in run_ids if one) if lock.held else 0
        # and put back git's own files that a killed run's agents changed
        put_back = guardkeep.recover(home, git.common_dir) if lock.held else []
        removed_worktrees = 0
        removed_branches = 0
        pooled = 0
        kept: list[str] = []
        # Worktrees made before they moved out of .git (`worktrees_home`) are cleaned too.
        # (Those first: they may hold task branches the second pass deletes.)
        folders = dict.fromkeys([home / "worktrees", worktrees_home(home)])
        for one in run_ids:
            for folder in folders:
                if folder != worktrees_home(home) and not folder.is_dir():
                    continue
                provider = WorktreeProvider(git, one or "", worktrees_dir=folder)
                report = await provider.clean(
                    one, result_branches=branches, verify_dir=home / "verify"
                )
                removed_worktrees += len(report.worktrees)
                removed_branches += len(report.branches)
                pooled += len(report.pooled)
                kept.extend(report.made)  # not those an earlier clean or resume made
    removed = f"removed {removed_worktrees} worktree(s) and {removed_branches} branch(es)"
    if pooled:
        removed += f", and the {pooled} worktree(s) parked in the pool for later runs"
    if kept:
        removed += (
            f"; {len(kept)} new ref(s) under refs/plait/snapshots/ keep work no branch held"
            " (`git for-each-ref refs/plait/snapshots/` lists them)"
        )
    if ended:
        removed = f"ended {ended} process(es) that killed runs left running; {removed}"
    return "".join(f"{line}\n" for line in put_back) + removed


async def _known_run(git: Git, home: Path, run_id: str) -> bool:
    """True if the store knows the run, or it left refs or worktrees to clean.

    The refs count too (for an id shaped like a run's): a store deleted by hand
    leaves branches `clean` should still be able to remove by the run's id.
    """
    if Store.exists(home):
        with Store.open(home) as store:
            try:
                store.run(run_id)
                return True
            except RunNotFound:
                pass
    if not RUN_ID.fullmatch(run_id):  # nor a path to wander off with ("..", "a/b")
        return False
    if (worktrees_home(home) / run_id).is_dir() or (home / "worktrees" / run_id).is_dir():
        return True
    for prefix in (f"refs/heads/{task_branch(run_id, '')}", snapshots_of(run_id)):
        if await git.list_refs(prefix):
            return True
    return await git.rev_parse(f"refs/heads/plait/{run_id}") is not None
