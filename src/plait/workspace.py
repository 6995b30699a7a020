"""Workspaces: where one attempt runs, and what the attempt left there.

A provider opens a `Workspace` per attempt, collects what the agent left as a
`Change` (after committing and checking it), and closes it. There are two:

- `plait.worktrees.WorktreeProvider`: a git worktree per attempt, outside the
  user's working tree, its work committed to the task's branch (`plait.collect`,
  `plait.worktreegit`), cleaned up by `plait.clean`;
- `plait.inplace.InPlaceProvider` (`isolation: none`): the checkout itself.

The names of the branches and refs they use are in `plait.branches`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plait.errors import Error
from plait.model import ScopePolicy

__all__ = [
    "Change",
    "SetupFailed",
    "Workspace",
]


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
    excluded: tuple[str, ...] = ()  # plait's copy/setup artefacts: not committed...
    #: ...except these tracked files `setup` changed, once they differ from what it left
    #: (path, `worktreegit.content_digest`): the agent's own edits to them are its work
    setup_left: tuple[tuple[str, str], ...] = ()


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
