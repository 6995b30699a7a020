"""Finding things the way git finds `.git`: the repository's top level, and the
folders agent profiles are read from.

No git process is started and nothing heavy is imported: reading a plan asks this,
and a walk up the folders answers in microseconds.
"""

from __future__ import annotations

from pathlib import Path

from plait.model import PROFILE_DIRS

__all__ = ["profile_folders", "repo_top"]


def repo_top(start: Path) -> Path | None:
    """The top level of the git repository `start` is in (the nearest folder holding a
    `.git` folder, or the `.git` file of a linked worktree or submodule); None when
    `start` is in none."""
    here = Path(start).absolute()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def profile_folders(root: Path) -> list[Path]:
    """The profile folders (`.claude/agents`, `.plait/agents`) for a plan whose folder
    is `root`, lowest precedence first: the repository's top level (where `plait init`
    and Claude Code keep them), then the plan's own folder, whose profile wins when
    both have one. Within a folder, `.plait/agents` wins over `.claude/agents`."""
    root = Path(root)
    bases = [root]
    top = repo_top(root)
    if top is not None and top.resolve() != root.resolve():
        bases.insert(0, top)
    return [base / folder for base in bases for folder in PROFILE_DIRS]
