"""Finding things the way git finds `.git`: the repository's top level, the plan a
command uses when none is named, and the folders agent profiles are read from.

No git process is started and nothing heavy is imported: `plait plan` asks this on
every start, and a walk up the folders answers in microseconds.
"""

from __future__ import annotations

from pathlib import Path

from plait.model import PROFILE_DIRS

__all__ = ["DEFAULT_PLAN", "find_plan", "looked_in", "profile_folders", "repo_top"]

#: The plan a command reads when it is not given one.
DEFAULT_PLAN = "plait.yaml"


def repo_top(start: Path) -> Path | None:
    """The top level of the git repository `start` is in (the nearest folder holding a
    `.git` folder, or the `.git` file of a linked worktree or submodule); None when
    `start` is in none."""
    here = Path(start).absolute()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _upward(start: Path) -> list[Path]:
    """`start` and its parents up to the repository's top level (only `start` outside
    a repository, where a plan above would belong to something else)."""
    here = Path(start).absolute()
    top = repo_top(here)
    if top is None:
        return [here]
    folders = []
    for folder in (here, *here.parents):
        folders.append(folder)
        if folder == top:
            break
    return folders


def find_plan(start: Path) -> Path | None:
    """The plan a command uses when given none: `plait.yaml` in `start`, else in the
    nearest folder above it up to the repository's top level; None if there is none."""
    for folder in _upward(start):
        candidate = folder / DEFAULT_PLAN
        if candidate.is_file():
            return candidate
    return None


def looked_in(start: Path) -> str:
    """Where `find_plan` looked, in words, for the message that it found nothing."""
    here = Path(start).absolute()
    top = repo_top(here)
    if top is None or top == here:
        return f"in {here}"
    return f"in {here} or the folders above it up to the repository's top level {top}"


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
