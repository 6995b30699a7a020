"""Where plait keeps its state, and the names it gives the things in it.

State lives in ``<git-common-dir>/plait/`` (shared by every worktree of the
repository), or ``.plait/`` outside git, or ``$PLAIT_HOME``: the database
``state.db`` and a folder per run under ``runs/``. The agents' worktrees live
beside it, unless that is inside a ``.git`` folder (`worktrees_home`).

Kept apart from the store, with no sqlite import, so that a command which only
asks whether there is any state (``plait plan`` looking for the history of earlier
runs) need not load the database layer to find out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from plait.errors import GIT_MISSING, EnvironmentProblem

__all__ = [
    "DB_FILE",
    "WORKTREES_RECORD",
    "component",
    "new_run_id",
    "state_home",
    "worktrees_home",
]

DB_FILE = "state.db"


def state_home(start: Path, env: Mapping[str, str] | None = None) -> Path:
    """Where plait keeps its state for the repository (or folder) at `start`.

    ``$PLAIT_HOME`` if set; else ``<git-common-dir>/plait`` when `start` is in a
    git repository (the common dir, so every linked worktree shares one state);
    else ``<start>/.plait``.
    """
    env = os.environ if env is None else env
    override = env.get("PLAIT_HOME")
    if override:
        return Path(override).expanduser().absolute()
    start = Path(start).absolute()
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--git-common-dir"],
            cwd=start,
            capture_output=True,
            text=True,
            check=False,
        )
    except (FileNotFoundError, NotADirectoryError):
        if start.is_dir() and not (start / ".plait").is_dir():
            # git itself is missing: whether this is a repository (state in .git)
            # cannot be told, and "no runs here" would be a guess.
            raise EnvironmentProblem(GIT_MISSING) from None
        return start / ".plait"
    out = proc.stdout.strip()
    if proc.returncode != 0 or not out:
        return start / ".plait"
    return (start / out).resolve() / "plait"


def usable_home(home: Path) -> Path:
    """`home`, unless something other than a folder is there (a `PLAIT_HOME` naming a
    file): then `EnvironmentProblem`, before anything says there are no runs in it."""
    if home.exists() and not home.is_dir():
        raise EnvironmentProblem(
            f"plait cannot keep its state in {home} (it is not a folder): "
            "set PLAIT_HOME to a folder it can write"
        )
    return home


#: In the state folder: where this repository's worktrees went, once chosen (see below).
WORKTREES_RECORD = "worktrees.location"


def worktrees_home(home: Path, env: Mapping[str, str] | None = None) -> Path:
    """Where the agents' worktrees go for the state at `home`.

    ``<home>/worktrees``, unless `home` is inside a ``.git`` folder (the default,
    ``<git-common-dir>/plait``): coding agents guard every path under a ``.git``
    folder, so Claude Code asks before each edit there (and, run headless, nobody
    answers) and its project settings do not load. Those worktrees go to
    ``$XDG_DATA_HOME/plait/worktrees/<repository>-<hash>/`` instead
    (``~/.local/share`` by default), one folder per repository, as other agent tools
    keep theirs under the user's home.

    That folder is chosen once and recorded in the state (`WORKTREES_RECORD`), so a
    repository moved or renamed, or a later command run with another `HOME` or
    `XDG_DATA_HOME` (sudo, cron, an IDE), still finds the worktrees its runs made. A
    data folder that cannot be made is not chosen: the worktrees then stay beside the
    state, where they work but Claude Code asks before editing.
    """
    home = Path(home).absolute()
    if ".git" not in home.parts:
        return home / "worktrees"
    record = home / WORKTREES_RECORD
    found = _recorded(record, home)
    if found is not None:
        folder, state = found
        if state != home:  # moved: the record follows
            _record(record, home, folder)
        return folder
    chosen = _data_folder(home, os.environ if env is None else env)
    if chosen is None:
        return home / "worktrees"
    _record(record, home, chosen)
    return chosen


def _record(record: Path, home: Path, folder: Path) -> None:
    """Write the record atomically, through a file no one else could have placed (an
    exclusive create: a link planted at a fixed name would be followed); a command that
    made no state yet records nothing."""
    if not home.is_dir():
        return
    entry = {"state": os.fsdecode(home), "worktrees": os.fsdecode(folder)}
    with contextlib.suppress(OSError):
        fd, temporary = tempfile.mkstemp(dir=home, prefix=f".{record.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            os.replace(temporary, record)
        except OSError:
            os.unlink(temporary)
            raise


def _recorded(record: Path, home: Path) -> tuple[Path, Path] | None:
    """The folder the record names, and the state folder it was recorded for, if plait
    chose that folder for that state and it is this repository's.

    The record is a file an agent could write, and plait creates and deletes in the
    folder it names, so the folder must be exactly the one `_data_folder` names for
    the recorded state (its name holds the state's hash), reached through no link.
    Recorded for another state folder that still exists, it belongs to the repository
    this one was copied from (`cp -a`): sharing it would let one delete the other's
    worktrees. A recorded state folder that is gone was this one, moved or renamed.
    """
    try:
        fd = os.open(record, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as handle:
            entry = json.loads(handle.read())
        state, folder = Path(entry["state"]), Path(entry["worktrees"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not state.is_absolute() or folder.name != _folder_for(state):
        return None
    if folder.parent.name != "worktrees" or folder.parent.parent.name != "plait":
        return None
    if os.path.realpath(folder) != os.fspath(folder):  # a link anywhere on the way
        return None
    if state != home and state.exists():
        return None
    return folder, state


def _folder_for(home: Path) -> str:
    """`<repository>-<hash of home>`: the name of the worktree folder for `home`."""
    parts = home.parts
    if ".git" not in parts:
        return ""
    at = len(parts) - 1 - parts[::-1].index(".git")  # the .git holding the state
    repository = parts[at - 1] if at > 0 else "repo"
    key = hashlib.sha256(os.fsencode(home)).hexdigest()[:12]
    return f"{_folder_name(repository)}-{key}"


def _data_folder(home: Path, env: Mapping[str, str]) -> Path | None:
    """``<data>/plait/worktrees/<repository>-<hash of home>``, if it can be made."""
    data = env.get("XDG_DATA_HOME") or ""
    if not os.path.isabs(data):  # the XDG rule: a relative value is ignored
        try:
            data = str(Path.home() / ".local" / "share")
        except RuntimeError:  # no home to be found
            return None
    folder = Path(data) / "plait" / "worktrees" / _folder_for(home)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # HOME a file, read-only: better beside the state than no run at all
        return None
    if folder.is_symlink():  # plait made none: someone else's link is not followed
        return None
    # Recorded as the real path (a data folder reached through a link, ~/.local on
    # another disk, is fine), so that the record's check finds no link on the way.
    return Path(os.path.realpath(folder))


def _folder_name(name: str) -> str:
    """`name` with anything but letters, digits, '.', '_' and '-' replaced by '_'."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip(".")
    return cleaned or "repo"


def new_run_id(now: float | None = None) -> str:
    """A run id like ``20261127-195612-ab12``: local time plus 4 random hex digits."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(2)}"


def component(name: str) -> str:
    """`name` itself; ValueError for ids that would escape the runs directory.

    Run and task ids become folder and file names under ``runs/``.
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"not usable as a path component: {name!r}")
    return name
