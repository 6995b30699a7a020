"""A finished attempt's way into the integration branch, through the merge queue.

The task's row says "merging" (with its commit, output and files) before the merge
starts, so that a kill at any moment leaves resume what it needs; a conflict becomes
the failure a conflict re-run starts from, and a merge the plan's `verify_each_merge`
refuses becomes a failed attempt with the verify's log kept beside the agent's.
"""

from __future__ import annotations

import contextlib
import shutil
from typing import TYPE_CHECKING

from plait.agents.base import VERIFY_LOG_SUFFIX, AgentResult, attempt_file
from plait.attempt import end_attempt
from plait.attemptjudge import AttemptFailure, note
from plait.carryover import PendingMerge
from plait.merge import MergeResult
from plait.model import Outcome, Task
from plait.workspace import Change

if TYPE_CHECKING:
    from plait.taskrun import RunContext

__all__ = ["merge_attempt", "still_pending"]


async def merge_attempt(
    ctx: RunContext,
    task: Task,
    attempt: int,
    change: Change,
    output: str,
    agent: AgentResult | None,
    ended_at: float | None = None,
) -> str | AttemptFailure | None:
    """Merge the attempt's commit; its new integration commit, None if nothing to merge.

    The row says "merging", with the task's commit, output and files, before the
    merge starts: if plait is killed after the branch moved, resume finds the merge
    in git and has everything dependants' templates need from this row.
    """
    if ctx.merge is None or change.commit is None:
        return None
    view = ctx.views[task.id]
    view.state = "merging"
    changed = list(change.changed_files)
    ctx.journal.write(
        lambda: ctx.store.update_task(
            ctx.run_id,
            task.id,
            status="merging",
            commit=change.commit,
            output=output,
            changed_files=changed,
            # (and what scope let through: a merge resumed from this row reports it)
            scope_violations=list(change.scope_violations),
        )
    )
    await ctx.journal.sync()
    result = await ctx.merge.merge(
        change.commit, message=f"plait: merge {task.id} (run {ctx.run_id})"
    )
    if result.status == "merged" or result.status == "empty":
        ctx.emit(
            "merged",
            task.id,
            attempt=attempt,
            commit=result.commit,
            files=list(change.changed_files),
        )
        return result.commit
    if result.status == "conflict":
        files = ", ".join(result.conflicts)
        # The row's end is rewritten whole, the agent's usage with it; the "conflict"
        # event below says what happened.
        end_attempt(ctx, task, attempt, "conflict", f"merge conflict in {files}", agent,
                    change.commit, announce=False, finished_at=ended_at)  # fmt: skip
        ctx.emit("conflict", task.id, attempt=attempt, files=list(result.conflicts))
        return AttemptFailure(
            Outcome.CONFLICTED,
            f"conflicted with the merged work in: {files}",
            "Your previous attempt conflicted with work merged meanwhile in these files: "
            f"{files}. Start again from the current code, which already holds that work, "
            "and keep both changes.",
            tuple(result.conflicts),
        )
    # Refused: the attempt failed (it used one of the task's retries), and its row says
    # so, as a conflict's does; resume counts the retries used from these rows.
    last = next((ln.strip() for ln in reversed(result.output.splitlines()) if ln.strip()), "")
    error = "the plan's verify failed on the merge result" + (f": {last[:300]}" if last else "")
    _keep_verify_log(ctx, task, attempt, result)
    end_attempt(ctx, task, attempt, "rejected", error, agent, change.commit, finished_at=ended_at)
    await ctx.journal.sync()  # a failed attempt's record decides whether its worktree is kept
    return AttemptFailure(
        Outcome.FAILED, error, note("The plan's checks failed on your merged change", result.output)
    )


async def still_pending(ctx: RunContext, task_id: str) -> PendingMerge | None:
    """The task's merge left pending by the stop, if its commit is still there to merge
    (else its agent runs again, as it would have before)."""
    pending = ctx.pending_merges.pop(task_id, None)
    if pending is None or ctx.merge is None or pending.change.commit is None:
        return None
    found = await ctx.merge.git.rev_parse(f"{pending.change.commit}^{{commit}}")
    return pending if found is not None else None


def _keep_verify_log(ctx: RunContext, task: Task, attempt: int, result: MergeResult) -> None:
    """Append the plan's failed verify to the attempt's verify log, where `plait logs`
    shows it after the agent's own (it ran in a worktree of its own, now removed)."""
    path = attempt_file(ctx.store.attempt_stem(ctx.run_id, task.id, attempt), VERIFY_LOG_SUFFIX)
    header = "--- the plan's verify, on this attempt merged with the integration branch"
    with contextlib.suppress(OSError), open(path, "ab") as log:
        if result.log_file is not None and result.log_file.is_file():
            log.write(f"{header} ({result.log_file}) ---\n".encode())
            with open(result.log_file, "rb") as source:
                shutil.copyfileobj(source, log)
        else:
            log.write(f"{header} ---\n{result.output}\n".encode())
