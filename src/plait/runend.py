"""The end of `plait run` and `plait resume`: the result printed, then `--apply`.

The run's result is printed whatever apply does, so a refusal never costs the user
the run id and the summary.
"""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import Any

from plait import errors
from plait.cliio import (
    Exit,
    branch_tip,
    err,
    open_store,
    out,
    output_lost,
    print_json,
    run_coroutine,
)
from plait.textsafe import clean_text


def finish_run(
    run_id: str,
    root: Path,
    code: int,
    messages: list[str],
    as_json: bool,
    apply: bool,
    home: Path | None = None,
) -> None:
    """Print the run's result (JSON or the summary) and its messages, apply it if asked,
    and leave with the run's exit code (or `plait apply`'s, if apply was refused)."""
    from plait.status import run_json

    with open_store(root, home) as store:
        data = run_json(store, run_id)
    refused: errors.Error | None = None
    if apply:
        # The run's result is printed whatever apply does: a refusal (a dirty tree, a
        # merge that would conflict) must not cost the run id and the summary.
        data["applied"] = False
        if code != 0:
            data["apply_error"] = f"not applied: the run is {data['status']}"
            messages = [*messages, f"{data['apply_error']}; nothing was changed"]
        else:
            from plait.apply import apply_run

            try:
                messages = [*messages, run_coroutine(apply_run(root, run_id))]
                data["applied"] = True
            except errors.Error as exc:
                refused = exc
                data["apply_error"] = exc.message
    summary = "" if as_json else _summary(data, root, home)
    try:
        if as_json:
            print_json(data)
        else:
            out().print(summary)
    except OSError as exc:  # nobody reads stdout any more: the exit code still says
        if not output_lost(exc):
            raise
    # An interrupted run's summary already says how to resume it.
    resume = f"plait resume {run_id}"
    messages = [m for m in messages if resume not in m or resume not in summary]
    with contextlib.suppress(OSError):  # (a terminal that hung up: the code still says)
        for message in messages:
            err().print(clean_text(message))
        if refused is not None:
            err().print(clean_text(refused.message))
    if refused is not None:
        # The exit code `plait apply` gives for the same refusal (1): every task
        # succeeded, but what was asked for (the result on this branch) did not happen.
        raise Exit(refused.exit_code)
    raise Exit(code)


def _summary(data: dict[str, Any], root: Path, home: Path | None = None) -> str:
    """What `plait run` prints at its end: the run's state, then what to do next.

    `plait apply` is suggested only when the result branch holds something beyond the
    base: after a run where nothing merged, applying would merge nothing.
    """
    from plait.status import status_text

    text = status_text(data)
    # An interrupted run is not finished: status_text already says to resume it, and
    # applying half a run is not a next step worth suggesting.
    if not data.get("branch") or data["status"] in ("interrupted", "running"):
        return text
    # From another repository (`plait run ../other/plait.yaml`) the commands need its
    # folder: run from here they would find no such run.
    there = "" if _same_state(root, home) else f"cd {shlex.quote(str(root))} && "
    text += f"\nnext: `{there}plait report {data['run']}` for the timeline"
    if data.get("applied"):
        return text
    if _has_result(data, root):
        merge = f"`{there}plait apply {data['run']}` to merge {data['branch']}"
        return text + f"; {merge} into {'your' if not there else 'its'} branch"
    return text + f"; nothing was merged, so {data['branch']} has nothing to apply"


def _same_state(root: Path, home: Path | None) -> bool:
    """Whether plait run here finds the same runs as at `root` (`home`, if known: the
    run's state; True when it cannot be told)."""
    from plait.errors import Error
    from plait.statehome import state_home

    try:
        return state_home(Path.cwd()) == (home or state_home(root))
    except (Error, OSError):
        return True


def _has_result(data: dict[str, Any], root: Path) -> bool:
    """Whether the run's result branch is ahead of its base (True when unknown)."""
    head, base = data.get("head"), data.get("base")
    if head is None:
        # Not recorded (an older run): the branch itself says, if git can tell.
        with contextlib.suppress(errors.Error):
            head = branch_tip(data["branch"], root)
    if head is None or base is None:
        return True
    return bool(head != base)
