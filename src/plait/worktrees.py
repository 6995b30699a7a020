"""Workspaces as git worktrees: one per attempt, opened, collected and closed.

`WorktreeProvider.open` creates a worktree on the task's branch at the current tip
of the run's integration branch, outside the user's working tree (under the git
common dir, so test runners and file watchers never see it), or takes a finished
one from the pool (`plait.pool`); then copies the plan's `copy` files and runs its
`setup`. `collect` commits what the agent left and checks it (`plait.collect`).
`close` removes the worktree of a task that is done, or keeps a failed one for
inspection; uncommitted work is snapshotted to a ref before anything is deleted
(`plait.worktreegit`). `clean` is `plait clean` (`plait.clean`).

Only the steps that change the shared git dir hold `Git.write_lock`; checking
out files, staging and writing objects run in parallel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from plait import proc
from plait.branches import integration_branch, snapshot_ref, task_branch
from plait.clean import CleanReport, clean_runs
from plait.collect import RefGuard, StrayWatch, collect_worktree
from plait.git import Git, status_entries
from plait.gitguard import GitGuard
from plait.gitrun import scrubbed_env
from plait.model import Command, ScopePolicy
from plait.pool import WorktreePool
from plait.scope import output_paths
from plait.workspace import Change, SetupFailed, Workspace
from plait.worktreegit import (
    content_digest,
    found_workspace,
    git_dir_of,
    remove_worktree,
    run_git,
    snapshot,
)

__all__ = ["WorktreeProvider"]


class WorktreeProvider:
    """Workspaces as git worktrees, one per attempt, outside the user's working tree."""

    def __init__(
        self,
        git: Git,
        run_id: str,
        *,
        worktrees_dir: Path,
        copy: Sequence[str] = (),
        setup: Sequence[Command] = (),
        setup_env: Mapping[str, str] | None = None,
        scope: ScopePolicy = ScopePolicy.ENFORCE,
        setup_timeout_s: float | None = None,
        pool: WorktreePool | None = None,
    ) -> None:
        self.git = git
        self.run_id = run_id
        self.worktrees_dir = worktrees_dir.resolve()  # git reports real paths
        self.copy = tuple(copy)
        self.setup = tuple(setup)
        self.setup_env = dict(setup_env) if setup_env is not None else scrubbed_env()
        self.scope = scope
        self.setup_timeout_s = setup_timeout_s
        # finished worktrees reset for the next attempt (None: each one is removed)
        self.pool = pool
        self.guard = GitGuard(git.common_dir)
        self.beside = StrayWatch()
        self.refs = RefGuard(git, run_id)
        self._outputs: dict[Path, tuple[str, ...]] = {}  # each workspace's output files

    def path_for(self, task_id: str, attempt: int) -> Path:
        """Where the worktree of this attempt lives."""
        return self.worktrees_dir / self.run_id / f"{task_id}-{attempt}"

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace:
        """A fresh worktree on the task's branch at `start_commit`, with copy and setup done."""
        path = self.path_for(task_id, attempt)
        branch = task_branch(self.run_id, task_id)
        add = (
            "worktree",
            "add",
            "--no-checkout",
            "--no-track",
            "-B",
            branch,
            str(path),
            start_commit,
        )
        await self._keep_previous_commit(branch, start_commit, attempt)
        self.beside.expect(path)
        ref = f"refs/heads/{branch}"
        start_oid = start_commit
        if len(start_oid) != 40:  # the ledger holds what for-each-ref prints
            start_oid = await self.git.rev_parse_commit(start_commit)
        # The task branch moves to the start commit here (-B, or the pool's branch -f):
        # plait's own write, which no attempt's ref check may take for tampering.
        with self.git.ledger.writing(ref, start_oid):
            reused = self.pool is not None and (
                await self.pool.take(path, branch, start_commit, self._make_room) is not None
            )
            if not reused:
                async with self.git.write_lock:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    # --no-checkout: only the registration needs the lock; the files are
                    # written below, in parallel with other workspaces.
                    if path.exists() or not (await self.git.run(*add, check=False)).ok:
                        # a leftover of an interrupted run, or the branch is still checked
                        # out by an earlier attempt kept for inspection
                        await self._make_room(path, branch)
                        await self.git.run(*add)
            self.git.ledger.wrote(ref, start_oid)
        dotgit = (path / ".git").read_text(encoding="utf-8")
        git_dir = Path(dotgit.removeprefix("gitdir:").strip())
        ws = Workspace(task_id, attempt, path, branch, start_commit, git_dir)
        self.guard.watch(path, git_dir)
        self.beside.watch(path)
        try:
            await self.refs.watch(path, ref, git_dir)
            if not reused:  # a pooled worktree was reset to its start commit already
                await run_git(self.git, ws, "read-tree", "--reset", "-u", "HEAD")
            if self.pool is not None:
                await self.pool.remember(git_dir)
            if not (self.copy or self.setup):
                return ws
            copied = self._copy_files(path)
            for number, command in enumerate(self.setup, 1):
                await self._run_setup(ws, number, command)
            status = await run_git(self.git, ws, "status", "--porcelain=v1", "-z", readonly=True)
        except Exception:
            # kept for inspection (its setup logs sit beside it), the branch freed
            await self.close(ws, keep=True)
            raise
        entries = status_entries(status.stdout)
        excluded = sorted({*copied, *(rel for _, rel in entries)})
        # What setup did to tracked files, as it left them: the agent's later edits to
        # them are committed (copied files, plain copies of the user's, never are).
        tracked = sorted({rel for code, rel in entries if code != "??"} - set(copied))
        left = tuple((rel, content_digest(path / rel)) for rel in tracked)
        return Workspace(task_id, attempt, path, branch, start_commit, git_dir, tuple(excluded),
                         left)  # fmt: skip

    async def collect(
        self,
        ws: Workspace,
        *,
        writes: Sequence[str],
        message: str,
        outputs: Sequence[str | Path] = (),
    ) -> Change:
        """Commit what the agent left and check everything it changed.

        `outputs`: the task's `output` file and `PLAIT_OUTPUT_FILE` (relative to the
        workspace, or absolute): plait's channel for the task's output, read by the
        caller, never committed nor held against `writes` (DESIGN §4.9).
        """
        channel = output_paths(ws.path, outputs)
        if channel:
            ws = dataclasses.replace(ws, excluded=(*ws.excluded, *channel))
            self._outputs[ws.path] = channel
        return await collect_worktree(
            self.git, ws, guard=self.guard, beside=self.beside, refs=self.refs,
            writes=writes, message=message, policy=self.scope, outputs=channel,
        )  # fmt: skip

    async def close(self, ws: Workspace, *, keep: bool) -> None:
        """Keep the worktree for inspection, or remove (or pool) it, its work saved first."""
        intact = self.guard.intact(ws.path)
        self.guard.forget(ws.path)
        self.beside.forget(ws.path)
        self.refs.forget(ws.path)
        channel = self._outputs.pop(ws.path, ())
        if channel:  # the output file is not work to snapshot
            ws = dataclasses.replace(ws, excluded=(*ws.excluded, *channel))
        if (keep or not intact) and self.pool is not None and ws.git_dir is not None:
            self.pool.forget(ws.git_dir)
        if not intact:
            await self._drop_broken(ws)
            return
        if keep:
            # Detach so the branch is free for the task's next attempt.
            async with self.git.write_lock:
                await run_git(self.git, ws, "update-ref", "--no-deref",
                              "-m", "plait: keep for inspection", "HEAD", "HEAD",
                              check=False)  # fmt: skip
            return
        if await snapshot(self.git, ws, self.run_id) is False:
            return  # could not save its work: leave it where it is
        for log in ws.path.parent.glob(f"{ws.path.name}.setup-*.log"):
            log.unlink(missing_ok=True)
        async with self.git.write_lock:
            # pooled only now that its work is committed or snapshotted
            pool, git_dir = self.pool, ws.git_dir
            if pool is None or git_dir is None or not await pool.put(ws.path, git_dir):
                await remove_worktree(self.git, ws.path)
            with contextlib.suppress(OSError):
                ws.path.parent.rmdir()  # the run's folder, once empty
            await self._delete_branch_if_done(ws)

    async def clean(
        self,
        run_id: str | None = None,
        *,
        result_branches: bool = False,
        verify_dir: Path | None = None,
    ) -> CleanReport:
        """Remove the worktrees and task branches of one run (or all runs): `plait.clean`."""
        return await clean_runs(
            self.git, self.worktrees_dir, self.pool, run_id,
            result_branches=result_branches, verify_dir=verify_dir,
        )  # fmt: skip

    # -- helpers ----------------------------------------------------------------

    async def _keep_previous_commit(self, branch: str, start: str, attempt: int) -> None:
        """Before `-B` moves the task branch, save an earlier attempt's unmerged commit."""
        previous = await self.git.rev_parse(f"refs/heads/{branch}")
        if previous is None or previous == start or await self.git.is_ancestor(previous, start):
            return
        task = branch.rpartition("/")[2]
        ref = snapshot_ref(self.run_id, task, f"before-{attempt}")
        await self.git.update_ref(ref, previous, message="plait: earlier attempt's commit")

    async def _run_setup(self, ws: Workspace, number: int, command: Command) -> None:
        """Run one setup command in the workspace; SetupFailed with its output if it fails."""
        log = ws.path.parent / f"{ws.path.name}.setup-{number}.log"
        shown = " ".join(command)
        try:
            result = await proc.run_process(
                list(command), cwd=ws.path, env=self.setup_env, stdin=None, log_path=log,
                timeout_s=self.setup_timeout_s,
                marker=f"{self.run_id}/{ws.task_id}/{ws.attempt}/setup-{number}",
            )  # fmt: skip
        except proc.SpawnError as exc:
            raise SetupFailed(f"setup {shown} could not start: {exc}") from exc
        if result.timed_out:
            raise SetupFailed(f"setup {shown} timed out", result.tail())
        if result.returncode != 0:
            how = f"exited {result.returncode}" if result.signal is None else "was killed"
            raise SetupFailed(f"setup {shown} {how}", result.tail())

    async def _make_room(self, path: Path, branch: str) -> None:
        """Under the lock: clear a stale worktree at `path`, and free `branch` for reuse."""
        for info in await self.git.worktree_list():
            if info.path == path and self.worktrees_dir in info.path.parents:
                found = found_workspace(self.git, path, info.head)
                if await snapshot(self.git, found, self.run_id, locked=True) is False:
                    path.rename(path.with_name(f"{path.name}.stale-{time.time_ns()}"))
                await remove_worktree(self.git, path)
            elif info.branch == f"refs/heads/{branch}" and info.head:
                # An earlier attempt kept for inspection: detach it from the branch (it
                # keeps its files). Wherever it is: the branch is this run's own, and an
                # earlier plait may have put its worktrees elsewhere (inside .git).
                git_dir = git_dir_of(info.path, self.git.common_dir)
                if git_dir is not None:
                    await self.git.run(f"--git-dir={git_dir}", "update-ref", "--no-deref",
                                       "HEAD", info.head)  # fmt: skip
        if path.exists():
            shutil.rmtree(path)

    async def _drop_broken(self, ws: Workspace) -> None:
        """Unregister a worktree whose folder the agent deleted or replaced.

        What stands in its place is not plait's: a link or file is removed (never what
        it points to), another folder is moved aside for inspection. The task branch,
        which may hold the attempt's commits, is freed and kept unless it is empty.
        """
        path = ws.path
        async with self.git.write_lock:
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                path.rename(path.with_name(f"{path.name}.stale-{time.time_ns()}"))
            await remove_worktree(self.git, path)
            await self._delete_branch_if_done(ws)

    async def release_branch(self, task_id: str) -> None:
        """Delete the task's branch if it holds nothing unmerged, as `close` does."""
        branch = task_branch(self.run_id, task_id)
        async with self.git.write_lock:
            await self._delete_branch_if_done(Workspace(task_id, 0, self.worktrees_dir, branch, ""))

    async def _delete_branch_if_done(self, ws: Workspace) -> None:
        """Under the lock: delete the task branch if it holds nothing unmerged."""
        ref = f"refs/heads/{ws.branch}"
        tip = await self.git.rev_parse(ref)
        if tip is None:
            return
        target = await self.git.rev_parse(f"refs/heads/{integration_branch(self.run_id)}")
        if tip == ws.start_commit or (target and await self.git.is_ancestor(tip, target)):
            # `branch -D`, not update-ref: it refuses while a newer attempt has the
            # branch checked out, and that refusal is the answer we want.
            with self.git.ledger.writing(ref, None):
                if (await self.git.run("branch", "-D", ws.branch, check=False)).ok:
                    self.git.ledger.wrote(ref, None)

    def _copy_files(self, dest_root: Path) -> list[str]:
        """Copy the plan's `copy` globs from the main checkout; the copied paths."""
        source = self.git.toplevel
        copied: list[str] = []
        for pattern in self.copy:
            if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
                raise SetupFailed(
                    f"copy: {pattern!r} must be a relative path inside the repository"
                )
            for match in sorted(source.glob(pattern)):
                rel = match.relative_to(source)
                if ".git" in rel.parts:
                    continue
                target = dest_root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if match.is_dir() and not match.is_symlink():
                    shutil.copytree(match, target, symlinks=True, dirs_exist_ok=True)
                else:
                    shutil.copy2(match, target, follow_symlinks=False)
                copied.append(rel.as_posix())
        return copied
