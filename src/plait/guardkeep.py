"""Git's own files as a run found them, kept on disk until the run has put them back.

A run puts back the guarded git files (hooks, config, ...) its agents changed when it
ends, Ctrl-C included (`session`). A plait killed with SIGKILL cannot: a hook one of
its agents wrote would run on the user's next commit, and the next run would read it
as its own baseline and keep it. So the first reading of those files is written down
before any agent starts (`save`), removed once the run has put them back (`discard`),
and a run or resume that finds one left over puts the files back first (`recover`),
keeping the changed copies aside: an edit the user made since the kill is not lost.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from pathlib import Path

from plait.gitguard import Entry, put_back

#: The saved reading, in the run state's home (one run at a time holds that home).
BASELINE_FILE = "guarded-baseline.json"
#: Where `recover` keeps the copies it replaced, one folder per recovery.
ASIDE_DIR = "git-files-put-aside"


def save(home: Path, run_id: str, common_dir: Path, entries: Mapping[str, Entry]) -> None:
    """Write `entries` (a `read_guarded` reading of `common_dir`) durably: on disk
    before the first agent starts, since a kill may come at any moment after."""
    record = {
        "run": run_id,
        "common_dir": os.fspath(common_dir),
        "entries": {rel: _encode(entry) for rel, entry in entries.items()},
    }
    home.mkdir(parents=True, exist_ok=True)
    target = home / BASELINE_FILE
    partial = target.with_suffix(".partial")
    with open(partial, "w", encoding="utf-8") as file:
        json.dump(record, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, target)
    folder = os.open(home, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def discard(home: Path) -> None:
    """The run has put the files back (or never read them): nothing is left to recover."""
    (home / BASELINE_FILE).unlink(missing_ok=True)


def recover(home: Path, common_dir: Path) -> list[str]:
    """Put back the guarded files of a run that was killed before it could; what to
    tell the user (nothing when there was nothing to put back).

    Call with the run lock held and the dead run's agents ended, so that nothing
    changes the files meanwhile.
    """
    path = home / BASELINE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        run_id = str(record["run"])
        same_repository = record["common_dir"] == os.fspath(common_dir)
        saved = {rel: _decode(raw) for rel, raw in record["entries"].items()}
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        # Half written when the kill came (`save` replaces atomically, so only a disk
        # fault gets here): there is no reading to go back to.
        path.unlink(missing_ok=True)
        return [f"could not read {path}, left by a killed run: check .git/hooks and .git/config"]
    if not same_repository:  # a home moved with PLAIT_HOME: not this repository's reading
        path.unlink(missing_ok=True)
        return []
    aside = aside_folder(home, run_id)
    changed = put_back(common_dir, saved, aside)
    path.unlink()
    if not changed:
        return []
    paths = ", ".join(f".git/{rel}" for rel in changed)
    return [
        f"run {run_id} was killed before it could put back git's own files: put back "
        f"{paths} as they were before it ran (the changed copies are in {aside})"
    ]


def aside_folder(home: Path, run_id: str) -> Path:
    """Where the git files a run puts back are kept (a folder per putting back)."""
    return home / ASIDE_DIR / run_id


def _encode(entry: Entry) -> list[object]:
    if entry[0] == "file":
        content = entry[1]
        assert isinstance(content, bytes)
        return ["file", base64.b64encode(content).decode("ascii"), bool(entry[2])]
    return list(entry)


def _decode(raw: list[object]) -> Entry:
    kind = raw[0]
    if kind == "file":
        return ("file", base64.b64decode(str(raw[1]), validate=True), bool(raw[2]))
    if kind == "link":
        return ("link", str(raw[1]))
    if kind == "dir":
        return ("dir",)
    raise ValueError(f"unknown entry kind {kind!r}")
