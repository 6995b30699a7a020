"""What the commands share: the consoles, leaving with an exit code, JSON on stdout,
running the engine's coroutines, and opening plans and the state.

Everything here imports what it needs when first used, so a command pays only for
what it prints and reads.
"""

import contextlib
import errno
import functools
import gc
import json
import os
import sys
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from plait import errors
from plait.model import Plan

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")


# Neither console reads markup nor emoji codes: what they print is agents' output, task
# ids, plan names and git's words, in which `[/x]` or `:warning:` are text (markup made
# `[/section]` in an agent's error a crash of `plait run`, `status` and `report`).


@functools.cache
def out() -> "Console":
    """rich's console on stdout, made when something is first printed with it."""
    from rich.console import Console  # lazily: `plait run --json` never prints with rich

    return Console(highlight=False, soft_wrap=True, markup=False, emoji=False)


@functools.cache
def err() -> "Console":
    """rich's console on stderr, made when something is first printed with it."""
    from rich.console import Console  # lazily: `plait run --json` never prints with rich

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


class Exit(Exception):
    """Leave a command with an exit code, after it printed what it wanted."""

    def __init__(self, code: int) -> None:
        self.code = code


#: JSON output longer than this (characters) is written compact, on one line: the
#: json module indents in pure Python, which took 0.7 s for the 8 MB that `plait plan
#: --json` prints for 10,000 tasks; its compact encoder is in C (0.08 s).
JSON_INDENT_LIMIT = 1_000_000


#: Said on stderr when Ctrl-C is pressed again while plait ends a run.
STOPPING_NOTE = (
    b"plait: stopping: ending the agents and recording the run so that"
    b" `plait resume` can continue it; Ctrl-C once more quits at once\n"
)


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one of the engine's coroutines to its end.

    Ctrl-C cancels it, as `asyncio.run` does, and the engine ends its agents and
    records the run as interrupted. A second Ctrl-C during that (people press it
    twice) only says so: asyncio would raise KeyboardInterrupt wherever the stop had
    got to, and the run's summary and `--json` object would be lost. A third quits.

    asyncio is imported here, not at the top: `plait plan` and `plait schema` never
    need it and start faster without it.
    """
    import asyncio
    import signal
    import threading

    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        return asyncio.run(coroutine)  # someone else decides what Ctrl-C does
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        main: asyncio.Task[T] | None = None
        interrupts = 0

        async def body() -> T:
            nonlocal main
            main = asyncio.current_task()
            return await coroutine

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal interrupts
            interrupts += 1
            if interrupts == 1 and main is not None and not main.done():
                main.cancel()
                loop.call_soon_threadsafe(lambda: None)  # wake a loop asleep in select()
            elif interrupts == 2 and main is not None:
                os.write(2, STOPPING_NOTE)
            else:
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)
        try:
            return runner.run(body())
        except asyncio.CancelledError:
            if not interrupts:
                raise
            # Cancelled by Ctrl-C where nothing turned it into an outcome (apply, clean,
            # a run before or after its tasks): the interrupt asyncio.run would raise.
            raise KeyboardInterrupt from None
        finally:
            # Once interrupted, the command still prints the run's end: a second Ctrl-C
            # meanwhile must not cut that short either.
            if not interrupts:
                signal.signal(signal.SIGINT, signal.default_int_handler)


def reader_gone(*, terminal: bool = False) -> None:
    """stdout's reader went away (`plait run | head`: EPIPE), or with `terminal` the
    terminal itself (closed: EIO on stdout and stderr alike): from now on what plait
    prints there goes nowhere, so that the command carries on (a run's events are in
    its events.jsonl) and ends with its own exit code, not a traceback."""
    streams = (sys.stdout, sys.stderr) if terminal else (sys.stdout,)
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for stream in streams:
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)


def output_lost(exc: OSError) -> bool:
    """Handle `exc` if it says the output is gone (a closed pipe or terminal): True."""
    if isinstance(exc, BrokenPipeError):
        reader_gone()
        return True
    if exc.errno == errno.EIO:  # the terminal hung up
        reader_gone(terminal=True)
        return True
    return False


def print_json(data: Any) -> None:
    text = json.dumps(data, separators=(",", ":"), default=str)
    if len(text) <= JSON_INDENT_LIMIT:  # small enough to be read: indented, as always
        text = json.dumps(data, indent=2, sort_keys=False, default=str)
    sys.stdout.write(text + "\n")


def error_json(exc: errors.Error) -> dict[str, Any]:
    """An error as `--json` gives it: still one object on stdout (DESIGN §7), so that a
    script reading it learns why instead of parsing nothing."""
    data: dict[str, Any] = {"exit_code": exc.exit_code, "message": exc.message}
    if isinstance(exc, errors.PlanError):
        data["file"] = exc.file
        data["problems"] = [
            {"path": p.path, "line": p.line, "column": p.column, "message": p.message}
            for p in exc.problems
        ]
    return {"error": data}


def output_file(path: Path, option: str) -> Path:
    """A file the user named for plait to write, checked before any work is done.

    Its folder must exist and it must not be a folder itself; otherwise a usage error
    (exit 2) says which, and nothing is written. Checked up front so that a long
    analysis or a report is not thrown away over a typo in the path.
    """
    if path.is_dir():
        raise errors.UsageError(f"{option} {path}: is a directory; name a file to write")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise errors.UsageError(f"{option} {path}: the folder {folder} {what}; nothing written")
    return path


def write_output(path: Path, text: str, option: str) -> None:
    """Write a file the user named; a usage error (exit 2) if the system refuses."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:  # permissions, a read-only file system, a full disk
        why = exc.strerror or str(exc)
        raise errors.UsageError(f"{option} {path}: cannot write it: {why}") from None


def output_folder(path: Path, option: str) -> Path:
    """A folder the user named for plait to create things in (made if missing)."""
    if path.exists() and not path.is_dir():
        raise errors.UsageError(f"{option} {path}: is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a folder should be, permissions
        why = exc.strerror or str(exc)
        raise errors.UsageError(f"{option} {path}: cannot create it: {why}") from None
    return path


def load_plan_file(path: Path | None) -> Plan:
    """Read and validate a plan; its graph is checked by the command's own analysis.

    With no `path`, the default plan: `plait.yaml` here, else in the nearest folder
    above up to the repository's top level (as git finds `.git`), so that commands
    work from a subfolder; one found above is named on stderr.
    """
    from plait.planfile import load_plan

    if path is None:
        path = default_plan()
    if not path.exists():
        raise errors.UsageError(
            f"{path}: no such plan file. Create one with `plait init`, or name the file."
        )
    with collector_paused():
        return load_plan(path)


def default_plan() -> Path:
    """The plan a command uses when it is given none (see `plait.planfind.find_plan`);
    a usage error that says where it looked if there is none."""
    from plait.planfind import DEFAULT_PLAN, find_plan, looked_in

    here = Path.cwd()
    found = find_plan(here)
    if found is None:
        raise errors.UsageError(
            f"no {DEFAULT_PLAN} {looked_in(here)}. Create one with `plait init`, "
            "or name the plan file."
        )
    # Named as the user would write it from here, in this note and in any error.
    shown = Path(os.path.relpath(found, here))
    if shown.parent != Path():
        err().print(f"using {shown}")
    return shown


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Load and analyse without the cyclic garbage collector, then freeze the result.

    A large plan allocates hundreds of thousands of long-lived objects and nothing
    cyclic worth collecting; the collector's repeated passes over them were half of
    the time of `plait plan` on 10,000 tasks. Freezing afterwards keeps later
    collections (during a run) from walking the plan again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def open_store(root: Path, home: Path | None = None) -> Any:
    from plait.statehome import DB_FILE, state_home, usable_home
    from plait.store import Store

    home = usable_home(home or state_home(root.resolve()))
    if not (home / DB_FILE).exists():
        raise errors.RunNotFound(
            f"no plait runs in {root.resolve()} yet; start one with `plait run`"
        )
    return Store.open(home)


def pick_run(store: Any, run_id: str | None) -> str:
    if run_id is not None:
        return run_id
    latest: str | None = store.latest_run_id()
    if latest is None:
        raise errors.RunNotFound("no runs yet; start one with `plait run`")
    return latest


def branch_tip(branch: str, where: Path) -> str | None:
    """The commit `branch` (a run's result branch) points at in the repository at
    `where`; None if it has no such branch. Raises `errors.Error` if git cannot say."""
    from plait.git import Git

    async def tip() -> str | None:
        git = await Git.discover(where)
        return await git.rev_parse(f"refs/heads/{branch}^{{commit}}")

    return run_coroutine(tip())


def plan_history(loaded: Plan) -> dict[str, list[float]]:
    """Durations of earlier runs of this plan, when a store exists (read-only)."""
    from plait.statehome import DB_FILE, state_home

    home = state_home((loaded.root or Path.cwd()).resolve())
    if not (home / DB_FILE).exists():
        return {}
    from plait.store import Store

    try:
        with Store.open(home) as store:
            return store.durations(loaded.name)
    except errors.EnvironmentProblem:  # a state it cannot read: estimate without history
        return {}
