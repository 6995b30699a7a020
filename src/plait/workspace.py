"""Workspaces: a git worktree per attempt, and what the attempt left in it.

`WorktreeProvider.open` creates a worktree on the task's branch at the current tip
of the run's integration branch, outside the user's working tree (under the git
common dir, so test runners and file watchers never see it), then copies the
plan's `copy` files and runs its `setup`. `collect` commits what the agent left,
keeps the agent's own commits, and checks everything an agent could have done to
escape: moving HEAD, rewriting history below its start, replacing the worktree's
`.git` file, editing `.git/config` or hooks, symlinks out of the tree, writes
outside its scope. `close` removes the worktree of a task that is done, or keeps a
failed one for inspection; uncommitted work is snapshotted to a ref before
anything is deleted.

Only the steps that change the shared git dir hold `Git.write_lock`; checking
out files, staging and writing objects run in parallel.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from plait import proc
from plait.errors import Error, GitError
from plait.git import Git, GitResult, scrubbed_env, status_paths
from plait.model import Command, ScopePolicy
from plait.pool import POOL_DIR, WorktreePool
from plait.scope import GitGuard, check_scope, outside_symlinks, protected_violations

__all__ = [
    "Change",
    "CleanReport",
    "InPlaceProvider",
    "SetupFailed",
    "Workspace",
    "WorktreeProvider",
    "integration_branch",
    "snapshot_ref",
    "task_branch",
]


#: What plait's run ids look like (`20261127-195612-ab12`).
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]+")


def integration_branch(run_id: str) -> str:
    """The branch every task of a run is merged into."""
    return f"plait/{run_id}"


def task_branch(run_id: str, task_id: str) -> str:
    """The branch a task's attempts run on.

    Not `plait/<run>/<task>`: git cannot hold both `refs/heads/plait/<run>` and a
    ref below it (a file and a folder of the same name).
    """
    return f"plait/tasks/{run_id}/{task_id}"


def snapshot_ref(run_id: str, task_id: str, attempt: int | str) -> str:
    """Where uncommitted work of an attempt is kept before its worktree is removed."""
    return f"refs/plait/snapshots/{run_id}/{task_id}/{attempt}"


class SetupFailed(Error):
    """A `copy` or `setup` step failed while preparing a workspace."""

    def __init__(self, message: str, output: str = "") -> None:
        self.output = output
        super().__init__(message + (f"\n{output}" if output else ""))


@dataclass(frozen=True)
class Workspace:
    """Where one attempt runs."""

    task_id: str
    attempt: int
    path: Path
    branch: str  # "" for in-place workspaces
    start_commit: str
    git_dir: Path | None = None  # the worktree's own git dir (.git/worktrees/<name>)
    excluded: tuple[str, ...] = ()  # plait's copy/setup artefacts: never committed


@dataclass(frozen=True)
class Change:
    """What an attempt left, after commit and checks."""

    commit: str | None  # task branch head after committing (None if nothing changed)
    changed_files: tuple[str, ...] = ()
    scope_violations: tuple[str, ...] = ()  # outside `writes`: fail unless scope: warn
    protected_violations: tuple[str, ...] = ()  # always fail
    problems: tuple[str, ...] = ()  # human-readable reasons
    policy: ScopePolicy = ScopePolicy.ENFORCE

    @property
    def ok(self) -> bool:
        """True if the attempt's result may be merged under its scope policy."""
        if self.protected_violations:
            return False
        return not self.scope_violations or self.policy is ScopePolicy.WARN


@dataclass(frozen=True)
class CleanReport:
    """What `clean` removed, and what it kept as refs."""

    worktrees: tuple[Path, ...] = ()
    branches: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()  # refs holding work that would otherwise be lost


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
        # Writes beside the workspaces (an agent's `../x`): what the run's folder held
        # before the first attempt, the worktrees opened since, and for each open
        # workspace the strays it has yet to report.
        self._beside_seen: set[str] | None = None
        self._opened: set[str] = set()
        self._beside_open: dict[Path, set[str]] = {}

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
        self._opened.add(path.name)  # before it exists: a parallel check must not flag it
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
        dotgit = (path / ".git").read_text(encoding="utf-8")
        git_dir = Path(dotgit.removeprefix("gitdir:").strip())
        ws = Workspace(task_id, attempt, path, branch, start_commit, git_dir)
        self.guard.watch(path, git_dir)
        if self._beside_seen is None:  # leftovers of earlier processes are not this run's
            self._beside_seen = {e.name for e in path.parent.iterdir()} - self._opened
        self._beside_open[path] = set()
        try:
            if not reused:  # a pooled worktree was reset to its start commit already
                await self._git(ws, "read-tree", "--reset", "-u", "HEAD")
            if self.pool is not None:
                await self.pool.remember(git_dir)
            if not (self.copy or self.setup):
                return ws
            copied = self._copy_files(path)
            for number, command in enumerate(self.setup, 1):
                await self._run_setup(ws, number, command)
            status = await self._git(ws, "status", "--porcelain=v1", "-z", readonly=True)
        except Exception:
            # kept for inspection (its setup logs sit beside it), the branch freed
            await self.close(ws, keep=True)
            raise
        excluded = sorted({*copied, *status_paths(status.stdout)})
        return Workspace(task_id, attempt, path, branch, start_commit, git_dir, tuple(excluded))

    async def collect(self, ws: Workspace, *, writes: Sequence[str], message: str) -> Change:
        """Commit what the agent left and check everything it changed."""
        problems: list[str] = []
        protected: list[str] = []
        for violation, reason in self.guard.check(ws.path):
            protected.append(violation)
            problems.append(reason)
        for name in self._escapes(ws.path):
            protected.append(f"../{name}")
            problems.append(f"wrote outside its workspace: ../{name}, left there for inspection")
        head_ref = await self._git(ws, "symbolic-ref", "-q", "HEAD", check=False, readonly=True)
        on_branch = head_ref.ok and head_ref.stdout.strip() == f"refs/heads/{ws.branch}"
        if not on_branch:
            where = head_ref.stdout.strip() or "a detached commit"
            protected.append("HEAD")
            problems.append(f"HEAD was moved from {ws.branch} to {where}")
        else:
            try:
                await self._commit(ws, message)
            except GitError as exc:  # the agent left something git cannot commit
                protected.append("(commit failed)")
                problems.append(f"plait could not commit the workspace: {exc.stderr.strip()}")
        tip = await self.git.rev_parse(f"refs/heads/{ws.branch}") or ws.start_commit
        changed = set(await self.git.changed_paths(ws.start_commit, tip))
        if not on_branch:  # report what the agent did wherever it went
            moved = await self.git.rev_parse("HEAD", cwd=ws.path)
            if moved is not None:
                changed |= set(await self.git.changed_paths(ws.start_commit, moved))
        if not await self.git.is_ancestor(ws.start_commit, tip):
            protected.append("history")
            problems.append(
                f"{ws.branch} no longer contains its start commit {ws.start_commit[:12]}"
            )
        files = sorted(changed)
        forbidden = protected_violations(files)
        if forbidden:
            problems.append(f"changed protected paths: {', '.join(forbidden)}")
        links = outside_symlinks(ws.path, files)
        if links:
            problems.append(f"symlinks pointing outside the workspace: {', '.join(links)}")
        outside = check_scope(files, writes)
        if outside:
            problems.append(f"changed files outside its writes: {', '.join(outside)}")
        return Change(
            commit=tip if tip != ws.start_commit else None,
            changed_files=tuple(files),
            scope_violations=tuple(outside),
            protected_violations=tuple(dict.fromkeys([*protected, *forbidden, *links])),
            problems=tuple(problems),
            policy=self.scope,
        )

    async def close(self, ws: Workspace, *, keep: bool) -> None:
        """Keep the worktree for inspection, or remove (or pool) it, its work saved first."""
        self.guard.forget(ws.path)
        self._beside_open.pop(ws.path, None)
        if keep and self.pool is not None and ws.git_dir is not None:
            self.pool.forget(ws.git_dir)
        if keep:
            # Detach so the branch is free for the task's next attempt.
            async with self.git.write_lock:
                await self._git(ws, "update-ref", "--no-deref", "-m", "plait: keep for inspection",
                                "HEAD", "HEAD", check=False)  # fmt: skip
            return
        if await self.snapshot(ws) is False:
            return  # could not save its work: leave it where it is
        for log in ws.path.parent.glob(f"{ws.path.name}.setup-*.log"):
            log.unlink(missing_ok=True)
        async with self.git.write_lock:
            # pooled only now that its work is committed or snapshotted
            pool, git_dir = self.pool, ws.git_dir
            if pool is None or git_dir is None or not await pool.put(ws.path, git_dir):
                await self._remove_worktree(ws.path)
            with contextlib.suppress(OSError):
                ws.path.parent.rmdir()  # the run's folder, once empty
            await self._delete_branch_if_done(ws)

    async def snapshot(
        self, ws: Workspace, *, run_id: str | None = None, locked: bool = False
    ) -> str | bool:
        """Save uncommitted work in `ws` to its snapshot ref.

        Returns the snapshot ref, True if there was nothing to save, False if
        saving failed (the worktree must then be kept). `locked`: the caller
        holds `Git.write_lock`.
        """
        git_dir = ws.git_dir or _git_dir_of(ws.path, self.git.common_dir)
        if not ws.path.is_dir() or git_dir is None:
            return True
        ws = Workspace(ws.task_id, ws.attempt, ws.path, ws.branch, ws.start_commit, git_dir,
                       ws.excluded)  # fmt: skip
        try:
            status = await self._git(ws, "status", "--porcelain=v1", "-z", readonly=True)
            skip = {p.rstrip("/") for p in ws.excluded}
            if not {p.rstrip("/") for p in status_paths(status.stdout)} - skip:
                return True
            # Stage into a copy of the index (its stat data saves rehashing every file).
            index = git_dir / "plait-snapshot-index"
            if (git_dir / "index").exists():
                shutil.copyfile(git_dir / "index", index)
            env = {"GIT_INDEX_FILE": str(index)}
            await self._stage(ws, env=env)
            tree = (await self._git(ws, "write-tree", env=env)).stdout.strip()
            index.unlink(missing_ok=True)
            head = (await self._git(ws, "rev-parse", "HEAD", readonly=True)).stdout.strip()
            if await self.git.rev_parse(f"{head}^{{tree}}") == tree:
                return True
            note = f"plait: uncommitted work of {ws.task_id} attempt {ws.attempt}\n"
            commit = await self.git.commit_tree(tree, [head], note)
            ref = snapshot_ref(run_id or self.run_id, ws.task_id, ws.attempt)
            if locked:
                await self.git.update_ref_locked(ref, commit, message="plait: snapshot")
            else:
                await self.git.update_ref(ref, commit, message="plait: snapshot")
            return ref
        except GitError:
            return False

    async def clean(
        self, run_id: str | None = None, *, result_branches: bool = False
    ) -> CleanReport:
        """Remove the worktrees and task branches of one run (or all runs).

        A task branch that is not merged into its run's integration branch is
        kept as a snapshot ref first. With `result_branches`, the integration
        branch `plait/<run>` and the snapshot refs go too. Refs checked out
        somewhere are never deleted. The pool of finished worktrees is emptied too.
        """
        root = self.worktrees_dir / run_id if run_id else self.worktrees_dir
        pool = self.pool or WorktreePool(self.git, self.worktrees_dir / POOL_DIR, 0)
        removed: list[Path] = await pool.drain()
        saved: list[str] = []
        checked_out: set[str] = set()
        for info in await self.git.worktree_list():
            inside = info.path == root or root in info.path.parents
            if not inside:
                if info.branch:
                    checked_out.add(info.branch)
                continue
            run = info.path.relative_to(self.worktrees_dir).parts[0]
            ws = self._found(info.path, info.head)
            ref = await self.snapshot(ws, run_id=run) if info.head else True
            if isinstance(ref, str):
                saved.append(ref)
            async with self.git.write_lock:
                await self._remove_worktree(info.path)
            removed.append(info.path)
        if root.exists():
            shutil.rmtree(root)
        await self.git.worktree_prune()
        tasks_prefix = (
            f"refs/heads/{task_branch(run_id, '')}" if run_id else "refs/heads/plait/tasks/"
        )
        doomed: list[str] = []
        for ref, oid in (await self.git.list_refs(tasks_prefix)).items():
            if ref in checked_out:
                continue
            run, _, task = ref.removeprefix("refs/heads/plait/tasks/").partition("/")
            tip = await self.git.rev_parse(f"refs/heads/{integration_branch(run)}")
            merged = tip is not None and await self.git.is_ancestor(oid, tip)
            if not merged and not result_branches:
                backup = snapshot_ref(run, task, "branch")
                await self.git.update_ref(backup, oid, message="plait clean: unmerged task branch")
                saved.append(backup)
            doomed.append(ref)
        if result_branches:
            runs = [run_id] if run_id else sorted(await self._run_ids())
            for run in runs:
                ref = f"refs/heads/{integration_branch(run)}"
                if ref not in checked_out and await self.git.rev_parse(ref) is not None:
                    doomed.append(ref)
                doomed.extend(await self.git.list_refs(f"refs/plait/snapshots/{run}/"))
            saved = [ref for ref in saved if ref not in doomed]
        await self.git.delete_refs(doomed)
        branches = tuple(
            r.removeprefix("refs/heads/") for r in doomed if r.startswith("refs/heads/")
        )
        return CleanReport(tuple(removed), branches, tuple(saved))

    # -- helpers ----------------------------------------------------------------

    def _escapes(self, path: Path) -> list[str]:
        """Entries of the run's folder that plait did not make, for `path` to report.

        Like a change to the shared git dir, a file written next to the workspaces
        cannot be pinned on one of the attempts running at once: each new one is
        reported by every attempt open when it is found.
        """
        seen = self._beside_seen
        try:
            names = {entry.name for entry in path.parent.iterdir()}
        except OSError:
            return []
        if seen is not None:
            strays = {name for name in names - seen if not self._made_by_plait(name)}
            seen |= strays
            for pending in self._beside_open.values():
                pending |= strays
        found = self._beside_open.get(path, set())
        reported = sorted(found)
        found.clear()
        return reported

    def _made_by_plait(self, name: str) -> bool:
        """A worktree of this run, or a file plait keeps beside one (logs, moved-out git)."""
        stem, dot, rest = name.partition(".")
        return stem in self._opened and (
            not dot or re.fullmatch(r"setup-\d+\.log|agent-git-\d+|stale-\d+", rest) is not None
        )

    async def _git(
        self, ws: Workspace, *args: str, check: bool = True, readonly: bool = False,
        env: Mapping[str, str] | None = None, input: bytes | None = None,
    ) -> GitResult:  # fmt: skip
        """git in the workspace, naming its git dir so a replaced `.git` cannot redirect it."""
        git_dir = ws.git_dir or _git_dir_of(ws.path, self.git.common_dir)
        where = [f"--git-dir={git_dir}", f"--work-tree={ws.path}"] if git_dir else []
        return await self.git.run(
            *where, *args,
            cwd=ws.path, check=check, readonly=readonly, env=env, input=input,
        )  # fmt: skip

    async def _stage(self, ws: Workspace, env: Mapping[str, str] | None = None) -> None:
        """`git add -A`, except the paths plait itself put there."""
        if not ws.excluded:
            await self._git(ws, "add", "-A", env=env)
            return
        specs = [".", *(f":(exclude,literal){p}" for p in ws.excluded)]
        await self._git(
            ws, "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul", env=env,
            input="\0".join(specs).encode("utf-8", errors="surrogateescape"),
        )  # fmt: skip

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

    async def _commit(self, ws: Workspace, message: str) -> None:
        """Commit the worktree onto the task branch, with plumbing: no hooks, no editor."""
        if ws.git_dir is not None:
            # the agent's git may have been killed mid-command; its lock is stale now
            (ws.git_dir / "index.lock").unlink(missing_ok=True)
        await self._stage(ws)
        staged = await self._git(ws, "diff", "--cached", "--quiet", "HEAD", check=False)
        if staged.returncode == 0:
            return
        if staged.returncode != 1:
            raise GitError(
                ["diff", "--cached", "--quiet", "HEAD"], staged.returncode, staged.stderr
            )
        tree = (await self._git(ws, "write-tree")).stdout.strip()
        parent = (await self._git(ws, "rev-parse", "HEAD", readonly=True)).stdout.strip()
        commit = await self.git.commit_tree(tree, [parent], message)
        if not await self.git.update_ref(f"refs/heads/{ws.branch}", commit, parent,
                                         message=f"plait: {message.splitlines()[0]}"):  # fmt: skip
            raise GitError(["update-ref", ws.branch], 1, "the task branch moved during commit")

    def _found(self, path: Path, head: str | None) -> Workspace:
        """A Workspace for a worktree found on disk (after a crash, or by `clean`)."""
        task, _, attempt = path.name.rpartition("-")
        number = int(attempt) if attempt.isdigit() else 0
        git_dir = _git_dir_of(path, self.git.common_dir)
        return Workspace(task or path.name, number, path, "", head or "", git_dir)

    async def _make_room(self, path: Path, branch: str) -> None:
        """Under the lock: clear a stale worktree at `path`, and free `branch` for reuse."""
        for info in await self.git.worktree_list():
            if self.worktrees_dir not in info.path.parents:
                continue  # never touch a worktree plait did not make
            if info.path == path:
                if await self.snapshot(self._found(path, info.head), locked=True) is False:
                    path.rename(path.with_name(f"{path.name}.stale-{time.time_ns()}"))
                await self._remove_worktree(path)
            elif info.branch == f"refs/heads/{branch}" and info.head:
                # an earlier attempt kept for inspection: detach it from the branch
                git_dir = _git_dir_of(info.path, self.git.common_dir)
                if git_dir is not None:
                    await self.git.run(f"--git-dir={git_dir}", "update-ref", "--no-deref",
                                       "HEAD", info.head)  # fmt: skip
        if path.exists():
            shutil.rmtree(path)

    async def _remove_worktree(self, path: Path) -> None:
        """Under the lock: unregister and delete a worktree, even a damaged one."""
        result = await self.git.run("worktree", "remove", "--force", "--force", str(path),
                                    check=False)  # fmt: skip
        if not result.ok:
            if path.exists():
                shutil.rmtree(path)
            await self.git.run("worktree", "prune")

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
            await self.git.run("branch", "-D", ws.branch, check=False)

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

    async def _run_ids(self) -> set[str]:
        """Runs that have task branches, or an integration branch named like a run id.

        A branch `plait/<name>` that does not look like a run id is the user's own.
        """
        runs = {r.split("/")[4] for r in await self.git.list_refs("refs/heads/plait/tasks/")}
        for ref in await self.git.list_refs("refs/heads/plait/"):
            name = ref.removeprefix("refs/heads/plait/")
            if RUN_ID.fullmatch(name):
                runs.add(name)
        return runs


def _git_dir_of(path: Path, common_dir: Path) -> Path | None:
    """A linked worktree's own git dir, found from git's side (its `.git` may be gone)."""
    wanted = str(path / ".git")
    for gitdir_file in (common_dir / "worktrees").glob("*/gitdir"):
        with contextlib.suppress(OSError):
            if gitdir_file.read_text(encoding="utf-8").strip() == wanted:
                return gitdir_file.parent
    return None


class InPlaceProvider:
    """isolation: none. Every attempt runs in the checkout itself; nothing is committed.

    `collect` reports the paths whose `git status` entry or content changed since
    `open` (all attempts running at once see each other's changes: that is what
    running in place means), and checks them against scope like worktrees do.
    """

    def __init__(
        self, root: Path, git: Git | None = None, *, scope: ScopePolicy = ScopePolicy.ENFORCE
    ) -> None:
        self.root = root
        self.git = git
        self.scope = scope
        self._before: dict[tuple[str, int], dict[str, str]] = {}

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace:
        """The checkout itself, with its current state noted."""
        self._before[(task_id, attempt)] = await self._state()
        return Workspace(task_id, attempt, self.root, "", start_commit)

    async def collect(self, ws: Workspace, *, writes: Sequence[str], message: str) -> Change:
        """What changed in the checkout since `open` (nothing is committed; `message` unused)."""
        before = self._before.pop((ws.task_id, ws.attempt), {})
        after = await self._state()
        files = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        outside = check_scope(files, writes)
        forbidden = [*protected_violations(files), *outside_symlinks(self.root, files)]
        problems = []
        if forbidden:
            problems.append(f"changed protected paths: {', '.join(forbidden)}")
        if outside:
            problems.append(f"changed files outside its writes: {', '.join(outside)}")
        return Change(None, tuple(files), tuple(outside), tuple(dict.fromkeys(forbidden)),
                      tuple(problems), self.scope)  # fmt: skip

    async def close(self, ws: Workspace, *, keep: bool) -> None:
        """Nothing to remove: the checkout is the user's."""
        self._before.pop((ws.task_id, ws.attempt), None)

    async def _state(self) -> dict[str, str]:
        """Each dirty path's status and content hash (empty outside a repository)."""
        if self.git is None:
            return {}
        status = await self.git.run(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=self.root, readonly=True
        )
        state: dict[str, str] = {}
        for rel in status_paths(status.stdout):
            path = self.root / rel
            digest = ""
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    digest = hashlib.sha1(path.read_bytes(), usedforsecurity=False).hexdigest()
            state[rel] = digest
        return state
