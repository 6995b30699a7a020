"""What an attempt left in its worktree: committed, and checked for every way out.

`collect_worktree` commits what the agent left, keeps the agent's own commits, and
checks everything an agent could have done to escape: moving HEAD, rewriting
history below its start, replacing the worktree's `.git` file, editing
`.git/config` or hooks (`GitGuard`), writing next to its worktree (`StrayWatch`),
symlinks out of the tree, writes outside its scope. The result is a `Change`;
whether it may be merged is the `Change`'s to say.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from plait.branches import integration_branch, snapshots_of, task_branch
from plait.errors import GitError
from plait.git import ZERO_OID, Git
from plait.gitguard import WORKSPACE_GONE, GitGuard
from plait.model import ScopePolicy
from plait.scope import check_scope, outside_symlinks, protected_violations
from plait.workspace import Change, Workspace
from plait.worktreegit import commit, run_git

__all__ = ["RefGuard", "StrayWatch", "collect_worktree", "guarded_refs"]


def guarded_refs(run_id: str) -> tuple[str, ...]:
    """The refs no attempt of run `run_id` may move besides its own task branch: the
    run's integration branch, its other tasks' branches and its snapshots.

    Not the user's branches and tags: the user may commit or tag while a run goes
    on, and plait never writes them (an agent that moves them runs as the user).
    """
    return (
        f"refs/heads/{integration_branch(run_id)}",
        f"refs/heads/{task_branch(run_id, '')}",
        snapshots_of(run_id),
    )


class RefGuard:
    """Puts back the run's refs an attempt moved, and fails it for doing so.

    The refs (`guarded_refs`) are listed (one `git for-each-ref`) when an attempt's workspace is
    ready and again when it is collected. A ref that changed to a value plait did
    not write itself (`Git.ledger`) was moved by an agent: it is restored (to what
    plait last wrote, else to what it was before) and reported. As with the shared
    git dir, a move cannot be pinned on one of the attempts running at once, so
    every attempt open when it is found reports it; so does every attempt open when
    the merge queue finds its branch moved (`RefLedger.foreign`).
    """

    def __init__(self, git: Git, run_id: str) -> None:
        self.git = git
        self.patterns = guarded_refs(run_id)
        self._before: dict[Path, tuple[str, dict[str, str]]] = {}
        self._found: dict[Path, list[tuple[str, str]]] = {}
        self._git_dirs: dict[Path, Path] = {}
        git.ledger.on_foreign.append(self._report_all)

    async def watch(self, path: Path, own_ref: str, git_dir: Path | None = None) -> None:
        """Note the refs before the agent of the workspace at `path` starts."""
        self._before[path] = (own_ref, await self._read())
        self._found[path] = []
        if git_dir is not None:
            self._git_dirs[path] = git_dir

    def forget(self, path: Path) -> None:
        """Stop watching the workspace at `path`."""
        self._before.pop(path, None)
        self._found.pop(path, None)
        self._git_dirs.pop(path, None)

    async def check(self, path: Path) -> list[tuple[str, str]]:
        """Restore the refs moved since `watch`; (violation, reason) for each."""
        watched = self._before.get(path)
        if watched is None:
            return []
        own, before = watched
        # Under the lock every ref write of plait's takes: a merge landing between the
        # read and the judging would make the value just read look foreign.
        async with self.git.write_lock:
            return await self._check_locked(path, own, before)

    async def _check_locked(
        self, path: Path, own: str, before: dict[str, str]
    ) -> list[tuple[str, str]]:
        now = await self._read()
        ledger = self.git.ledger
        for ref in sorted(set(before) | set(now)):
            old, new = before.get(ref), now.get(ref)
            if (
                ref == own
                or old == new
                or ledger.vouches(ref, new)
                or self._moved_by_owner(ref, new)
            ):
                continue
            target = ledger.expected(ref) if ledger.knows(ref) else old
            if target is None:
                await self.git.delete_ref_locked(ref, new)
            else:
                note = "plait: put back a ref an agent moved"
                await self.git.update_ref_locked(ref, target, new or ZERO_OID, message=note)
            detail = f"{_short(new)}, restored to {_short(target)}"
            # A branch an agent made and checked out (`git checkout -b`) is pinned on
            # the attempt whose HEAD names it; any other move on everyone open.
            owners = [
                p
                for p, d in self._git_dirs.items()
                if self._before[p][0] != ref and _head_names(d, ref)
            ]
            for owner in owners:
                self._found[owner].append((ref, f"moved {ref} to {detail}"))
            if not owners:
                self._report_all(ref, detail)
        found = self._found.get(path, [])
        reported = list(dict.fromkeys(found))
        found.clear()
        return reported

    def _moved_by_owner(self, ref: str, new: str | None) -> bool:
        """True if `ref` is the task branch of another open attempt whose own HEAD moved
        it there (a commit or `git reset` in its worktree logs its HEAD; an `update-ref`
        from elsewhere does not): that attempt's own checks judge it."""
        return new is not None and any(
            self._before[p][0] == ref and _head_logged(d, new) for p, d in self._git_dirs.items()
        )

    def _report_all(self, ref: str, detail: str) -> None:
        for found in self._found.values():
            found.append((ref, f"moved {ref} to {detail}"))

    async def _read(self) -> dict[str, str]:
        return await self.git.list_refs(*self.patterns)


def _head_names(git_dir: Path, ref: str) -> bool:
    """True if the worktree whose git dir is `git_dir` has `ref` checked out."""
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return head.strip() == f"ref: {ref}"


async def _judged_tip(git: Git, ws: Workspace) -> str:
    """The task branch's tip (its start commit if it is gone), now that its attempt is
    judged on it: the ledger takes it as plait's, so that a commit the agent made there
    is not taken for tampering by the attempts open beside it once this one closes."""
    ref = f"refs/heads/{ws.branch}"
    tip = await git.rev_parse(ref)
    if tip is not None:
        git.ledger.wrote(ref, tip)
    return tip or ws.start_commit


def _head_logged(git_dir: Path, oid: str) -> bool:
    """True if the last entry of the worktree's HEAD reflog moved it to `oid`."""
    try:
        with open(git_dir / "logs" / "HEAD", "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 4096))
            lines = log.read().splitlines()
    except OSError:
        return False
    fields = lines[-1].split(b" ", 2) if lines else []
    return len(fields) > 1 and fields[1].decode("ascii", "replace") == oid


def _short(oid: str | None) -> str:
    return oid[:12] if oid else "(deleted)"


class StrayWatch:
    """Writes beside the workspaces (an agent's `../x`), in the run's worktree folder.

    Like a change to the shared git dir, a file written next to the workspaces
    cannot be pinned on one of the attempts running at once: each new one is
    reported by every attempt open when it is found.
    """

    def __init__(self) -> None:
        # What the run's folder held before the first attempt, the worktrees opened
        # since, and for each open workspace the strays it has yet to report.
        self._seen: set[str] | None = None
        self._opened: set[str] = set()
        self._open: dict[Path, set[str]] = {}

    def expect(self, path: Path) -> None:
        """A worktree is about to be made at `path` (before it exists: a parallel
        check must not flag it)."""
        self._opened.add(path.name)

    def watch(self, path: Path) -> None:
        """Start collecting strays for the workspace at `path` (it exists now)."""
        if self._seen is None:  # leftovers of earlier processes are not this run's
            self._seen = {e.name for e in path.parent.iterdir()} - self._opened
        self._open[path] = set()

    def forget(self, path: Path) -> None:
        """Stop collecting strays for `path` (it is closed)."""
        self._open.pop(path, None)

    def strays(self, path: Path) -> list[str]:
        """Entries of the run's folder that plait did not make, for `path` to report."""
        seen = self._seen
        try:
            names = {entry.name for entry in path.parent.iterdir()}
        except OSError:
            return []
        if seen is not None:
            strays = {name for name in names - seen if not self._made_by_plait(name)}
            seen |= strays
            for pending in self._open.values():
                pending |= strays
        found = self._open.get(path, set())
        reported = sorted(found)
        found.clear()
        return reported

    def _made_by_plait(self, name: str) -> bool:
        """A worktree of this run, or a file plait keeps beside one (logs, moved-out git)."""
        stem, dot, rest = name.partition(".")
        return stem in self._opened and (
            not dot or re.fullmatch(r"setup-\d+\.log|agent-git-\d+|stale-\d+", rest) is not None
        )


async def collect_worktree(
    git: Git,
    ws: Workspace,
    *,
    guard: GitGuard,
    beside: StrayWatch,
    refs: RefGuard | None = None,
    writes: Sequence[str],
    message: str,
    policy: ScopePolicy,
    outputs: Sequence[str] = (),
) -> Change:
    """Commit what the agent left and check everything it changed.

    `outputs` (repository-relative) are the task's output files: left out of the
    commit by the caller (`Workspace.excluded`), and never held against `writes`.
    """
    problems: list[str] = []
    protected: list[str] = []
    for violation, reason in guard.check(ws.path):
        protected.append(violation)
        problems.append(reason)
    for violation, reason in await refs.check(ws.path) if refs is not None else []:
        protected.append(violation)
        problems.append(reason)
    for name in beside.strays(ws.path):
        protected.append(f"../{name}")
        problems.append(
            f"../{name} was written beside the workspaces while this attempt ran, by its"
            " agent or one running beside it: plait cannot tell which (left there for"
            " inspection)"
        )
    if WORKSPACE_GONE in protected:
        # Nothing there to commit or look at (and git must not follow a link the agent
        # put in its place): the attempt fails with what its branch holds.
        tip = await _judged_tip(git, ws)
        files = await git.changed_paths(ws.start_commit, tip) if tip != ws.start_commit else []
        return Change(
            commit=tip if tip != ws.start_commit else None,
            changed_files=tuple(files),
            protected_violations=tuple(dict.fromkeys(protected)),
            problems=tuple(problems),
            policy=policy,
        )
    head_ref = await run_git(git, ws, "symbolic-ref", "-q", "HEAD", check=False, readonly=True)
    on_branch = head_ref.ok and head_ref.stdout.strip() == f"refs/heads/{ws.branch}"
    if not on_branch:
        where = head_ref.stdout.strip() or "a detached commit"
        protected.append("HEAD")
        problems.append(f"HEAD was moved from {ws.branch} to {where}")
    else:
        try:
            await commit(git, ws, message)
        except GitError as exc:  # the agent left something git cannot commit
            protected.append("(commit failed)")
            problems.append(f"plait could not commit the workspace: {exc.stderr.strip()}")
    tip = await _judged_tip(git, ws)
    changed = set(await git.changed_paths(ws.start_commit, tip))
    if not on_branch:  # report what the agent did wherever it went
        moved = await git.rev_parse("HEAD", cwd=ws.path)
        if moved is not None:
            changed |= set(await git.changed_paths(ws.start_commit, moved))
    if not await git.is_ancestor(ws.start_commit, tip):
        protected.append("history")
        problems.append(f"{ws.branch} no longer contains its start commit {ws.start_commit[:12]}")
    files = sorted(changed)
    forbidden = protected_violations(files)
    if forbidden:
        problems.append(f"changed protected paths: {', '.join(forbidden)}")
    links = outside_symlinks(ws.path, files)
    if links:
        problems.append(f"symlinks pointing outside the workspace: {', '.join(links)}")
    outside = check_scope([f for f in files if f not in outputs], writes)
    if outside:
        problems.append(f"changed files outside its writes: {', '.join(outside)}")
    return Change(
        commit=tip if tip != ws.start_commit else None,
        changed_files=tuple(files),
        scope_violations=tuple(outside),
        protected_violations=tuple(dict.fromkeys([*protected, *forbidden, *links])),
        problems=tuple(problems),
        policy=policy,
    )
