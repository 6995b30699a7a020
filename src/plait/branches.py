"""The names plait gives its branches and refs in the user's repository.

A run merges into `plait/<run>`, each task's attempts run on `plait/tasks/<run>/<task>`,
and work that would otherwise be lost (uncommitted files, an unmerged commit) is kept
under `refs/plait/snapshots/<run>/...`. Everything that creates, finds or deletes
these refs builds their names here.
"""

from __future__ import annotations

import re

__all__ = ["RUN_ID", "integration_branch", "snapshot_ref", "snapshots_of", "task_branch"]


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


def snapshots_of(run_id: str) -> str:
    """The prefix of every snapshot ref of a run (ends with `/`)."""
    return f"refs/plait/snapshots/{run_id}/"
