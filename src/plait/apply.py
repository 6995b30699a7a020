"""`plait apply` and `plait clean`: the only commands that touch the user's checkout.

A run never touches the user's branch, index or working tree. `apply` merges a
run's result branch into the current branch, and only when the working tree is
clean: otherwise it says why and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from plait.branches import RUN_ID
from plait.errors import ApplyRefused, RunNotFound
from plait.git import Git
from plait.runlock import RunLock
from plait.statehome import state_home
from plait.store import Store


async def apply_run(cwd: Path, run_id: str) -> str:
    """Merge `plait/<run>` into the current branch; a message saying what happened."""
    git = await Git.discover(cwd)
    branch = f"plait/{run_id}"
    result = await git.rev_parse(f"refs/heads/{branch}")
    if result is None:
        raise RunNotFound(f"run {run_id} has no result branch {branch} (was it cleaned?)")
    dirty = await git.run("status", "--porcelain", "--untracked-files=no", readonly=True)
    if dirty.stdout.strip():
        files = ", ".join(line[3:] for line in dirty.stdout.splitlines()[:10])
        raise ApplyRefused(
            f"not applied: the working tree has uncommitted changes ({files}). "
            f"Commit or stash them, then run `plait apply {run_id}`; nothing was changed."
        )
    head = await git.rev_parse("HEAD")
    if head is not None and await git.is_ancestor(result, head):
        return f"{branch} is already part of the current branch; nothing to do"
    merged = await git.run(
        "merge", "--no-edit", "-m", f"Merge plait run {run_id}", branch,
        env=await git.identity_env(), check=False,
    )  # fmt: skip
    if merged.returncode != 0:
        await git.run("merge", "--abort", check=False)
        # git explains on stderr when it refuses to start (untracked files in the
        # way), on stdout when the merge conflicts
        why = merged.stderr.strip() or merged.stdout.strip()
        raise ApplyRefused(
            f"not applied: {branch} cannot be merged into the current branch:\n{why}\n"
            f"Nothing was changed; merge it yourself with `git merge {branch}`."
        )
    now = await git.rev_parse("HEAD")
    return f"applied {branch} to the current branch (now at {str(now)[:12]})"


async def clean_runs(cwd: Path, run_id: str | None, *, branches: bool = False) -> str:
    """Remove plait's worktrees and task branches (and result branches if asked)."""
    from plait.worktrees import WorktreeProvider

    git = await Git.discover(cwd)
    home = state_home(git.toplevel)
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
        removed_worktrees = 0
        removed_branches = 0
        for one in run_ids:
            provider = WorktreeProvider(git, one or "", worktrees_dir=home / "worktrees")
            report = await provider.clean(one, result_branches=branches)
            removed_worktrees += len(report.worktrees)
            removed_branches += len(report.branches)
    return f"removed {removed_worktrees} worktree(s) and {removed_branches} branch(es)"


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
    if (home / "worktrees" / run_id).is_dir():
        return True
    for prefix in (f"refs/heads/plait/tasks/{run_id}/", f"refs/plait/snapshots/{run_id}/"):
        if await git.list_refs(prefix):
            return True
    return await git.rev_parse(f"refs/heads/plait/{run_id}") is not None
