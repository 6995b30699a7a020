"""The names plait gives its branches and refs in the user's repository.

A run merges into `plait/<run>`, each task's attempts run on `plait/tasks/<run>/<task>`,
and work that would otherwise be lost (uncommitted files, an unmerged commit) is kept
under `refs/plait/snapshots/<run>/...`. Everything that creates, finds or deletes
these refs builds their names here.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "RUN_ID",
    "clear_stale_ref_locks",
    "integration_branch",
    "snapshot_ref",
    "snapshots_of",
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


def snapshots_of(run_id: str) -> str:
    """The prefix of every snapshot ref of a run (ends with `/`)."""
    return f"refs/plait/snapshots/{run_id}/"


def clear_stale_ref_locks(common_dir: Path, run_id: str) -> list[Path]:
    """Remove the `.lock` files a killed plait's git left on the run's own refs.

    git takes `<ref>.lock` for the moment it writes a ref; a git process killed in that
    moment (with plait, as Ctrl-C or a kill of the process group does) leaves it, and
    every later write of that ref fails with "File exists". Only for a run no live
    plait drives (call with the run lock held and its leftovers ended): nobody else
    writes these refs. Loose refs only (a packed or reftable store takes no such file).
    """
    folders = [
        common_dir / f"refs/heads/{task_branch(run_id, '')}",
        common_dir / snapshots_of(run_id),
    ]
    locks = [common_dir / f"refs/heads/{integration_branch(run_id)}.lock"]
    for folder in folders:
        if folder.is_dir():
            locks.extend(folder.rglob("*.lock"))
    removed = []
    for lock in locks:
        if lock.is_file() and not lock.is_symlink():
            lock.unlink(missing_ok=True)
            removed.append(lock)
    return removed
