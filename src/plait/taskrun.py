"""One task, through its attempts: workspace, agent, commit, checks, merge.

The runner starts `run_task()` when the scheduler says the task may start, and
turns the `Outcome` it returns into the scheduler's next step. Everything a task
decides on its own lives here: retries with the failure appended to the prompt,
conflict re-runs from the new integration tip, rate-limit waits that do not count
as failures, and the budget that stops new attempts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jinja2

from plait import proc
from plait.agents import get_backend
from plait.agents.base import AgentRequest, AgentResult, AttemptStatus, Backend
from plait.errors import GitError
from plait.journal import Journal
from plait.merge import MergeQueue
from plait.model import Agent, Outcome, Plan, ScopePolicy, Task
from plait.scope import check_scope
from plait.store import AttemptRow, Store
from plait.templates import render
from plait.workspace import Change, SetupFailed, Workspace

PORTS_PER_SLOT = 10
NOTE_TAIL_LINES = 60  # how much of a failure's output goes into the next prompt
RATE_LIMIT_BACKOFF_S = (5.0, 15.0, 45.0, 120.0, 300.0)
#: Attempt statuses of an attempt that failed and so used one of the task's retries.
FAILED_ATTEMPT_STATUSES = frozenset({"failed", "timeout", "crashed", "rejected"})
TEMPLATE_MARKERS = ("{{", "{%", "{#")


class WorkspaceProvider(Protocol):
    """Where attempts run: a git worktree each, or the checkout itself."""

    async def open(self, task_id: str, attempt: int, start_commit: str) -> Workspace: ...

    async def collect(self, ws: Workspace, *, writes: tuple[str, ...], message: str) -> Change: ...

    async def close(self, ws: Workspace, *, keep: bool) -> None: ...


@dataclass
class TaskView:
    """What the live board shows of one task; mutated in place by the run."""

    task_id: str
    agent: str
    state: str = "waiting"
    attempt: int = 0
    started: float | None = None  # monotonic
    ended: float | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    last_line: str = ""


@dataclass
class RunContext:
    """What every task of one run shares."""

    plan: Plan
    run_id: str
    store: Store
    journal: Journal
    provider: WorkspaceProvider
    merge: MergeQueue | None  # None: isolation none, nothing to merge
    base_commit: str
    emit: Callable[..., None]  # emit(kind, task=None, **data): event to store + display
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # template values
    views: dict[str, TaskView] = field(default_factory=dict)
    port_base: int = 41000
    spent_usd: float = 0.0
    budget_hit: bool = False
    #: On resume: (retries, conflict re-runs) each task used before the interruption.
    tries_used: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: child_env() without the attempt's own variables, per (agent, backend, task env).
    env_bases: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, str]] = field(
        default_factory=dict
    )
    #: Told the task's id when one of its attempts was rate limited, and when it succeeded.
    on_rate_limit: Callable[[str], None] = lambda task_id: None
    on_success: Callable[[str], None] = lambda task_id: None

    def agent(self, name: str) -> Agent:
        return self.plan.agents[name]

    def over_budget(self) -> bool:
        budget = self.plan.budget_usd
        return budget is not None and self.spent_usd >= budget


@dataclass
class AttemptFailure:
    """Why an attempt did not produce a mergeable result."""

    outcome: Outcome
    error: str
    note: str  # appended to the next attempt's prompt


def render_prompt(ctx: RunContext, task: Task, notes: list[str]) -> str:
    """The task's prompt with its template references filled in, plus notes."""
    context = {
        "tasks": ctx.results,
        "run": {"id": ctx.run_id},
        "plan": {"name": ctx.plan.name},
    }
    # Only Jinja's own markers make a prompt a template; any other text reaches the
    # agent byte for byte (rendering would also turn every CR and CRLF into LF).
    templated = any(marker in task.prompt for marker in TEMPLATE_MARKERS)
    text = render(task.prompt, context) if templated else task.prompt
    for note in notes:
        text = f"{text.rstrip()}\n\n{note}\n"
    return text


def agent_env(
    ctx: RunContext, task: Task, agent: Agent, backend: Backend, request_vars: Mapping[str, str]
) -> dict[str, str]:
    """The child's environment: `proc.child_env`, its part that is the same for every task
    of an agent (allowlist, passthrough, plan env) built once per run."""
    key = (agent.name, backend.name, tuple(task.env.items()) if task.env else ())
    base = ctx.env_bases.get(key)
    if base is None:
        passthrough: tuple[str, ...] = getattr(backend, "PASSTHROUGH_ENV", ())
        extra = {**agent.env, **task.env}
        base = ctx.env_bases[key] = proc.child_env({}, extra, passthrough=passthrough)
    env = dict(base)
    for name, value in request_vars.items():  # as child_env: nothing overrides these
        if not proc.scrubbed(name):
            env[name] = value
    return env


def tries_used(attempts: Sequence[AttemptRow]) -> tuple[int, int]:
    """The retries and conflict re-runs that one task's recorded attempts used.

    An attempt of kind "retry" or "conflict" exists because the one before it failed
    or conflicted; a process killed after recording a failure or a conflict, before
    starting the next attempt, used one more.
    """
    retries = sum(1 for a in attempts if a.kind == "retry")
    reruns = sum(1 for a in attempts if a.kind == "conflict")
    last = max(attempts, key=lambda a: a.attempt, default=None)
    if last is not None and last.status in FAILED_ATTEMPT_STATUSES:
        retries += 1
    if last is not None and last.status == "conflict":
        reruns += 1
    return retries, reruns


async def run_task(
    ctx: RunContext, task: Task, slot: int, first_attempt: int, notes: list[str] | None = None
) -> Outcome:
    """Run `task` until it succeeds (merged) or runs out of retries and re-runs.

    `notes` are appended to the first attempt's prompt after rendering.
    """
    view = ctx.views[task.id]
    agent = ctx.agent(task.agent)
    backend = get_backend(agent.backend)
    notes = list(notes or [])
    # Retries and re-runs spent before an interruption stay spent: resuming must not
    # hand a task that kept failing a fresh set of attempts each time.
    used_retries, used_reruns = ctx.tries_used.get(task.id, (0, 0))
    retries_left = max(0, task.retries - used_retries)
    reruns_left = max(0, ctx.plan.max_conflict_reruns - used_reruns)
    rate_limit_waits = 0
    attempt = first_attempt - 1
    kind = "first" if first_attempt == 1 else "resume"
    while True:
        if ctx.over_budget():
            ctx.budget_hit = True
            _finish_task(ctx, task, Outcome.CANCELLED, error="budget spent before this attempt")
            return Outcome.CANCELLED
        attempt += 1
        view.attempt = attempt
        result, failure, change, ws = await _attempt(
            ctx, task, agent, backend, slot, attempt, kind, notes
        )
        if result is not None and result.status is AttemptStatus.RATE_LIMITED:
            # Not a failure: wait, with fewer agents at once, and run it again.
            ctx.on_rate_limit(task.id)
            wait = (
                result.retry_after_s
                or RATE_LIMIT_BACKOFF_S[min(rate_limit_waits, len(RATE_LIMIT_BACKOFF_S) - 1)]
            )
            rate_limit_waits += 1
            view.state = "rate-limited"
            ctx.emit("rate_limited", task.id, attempt=attempt, wait_s=wait)
            if ws is not None:
                await ctx.provider.close(ws, keep=False)
            await asyncio.sleep(wait)
            kind = "rate_limit"
            continue
        if failure is None and change is not None:
            # Read before the workspace is closed: closing removes the `output` file.
            output = _task_output(ctx, task, attempt, result, ws)
            merged = await _merge(ctx, task, attempt, change, output)
            if isinstance(merged, AttemptFailure):
                failure = merged
            else:
                if ws is not None:
                    await ctx.provider.close(ws, keep=False)
                ctx.results[task.id] = {
                    "output": output,
                    "commit": merged or "",
                    "branch": ctx.merge.branch if ctx.merge is not None else "",
                    "changed_files": list(change.changed_files),
                }
                ctx.on_success(task.id)
                _finish_task(
                    ctx,
                    task,
                    Outcome.SUCCEEDED,
                    output=output,
                    commit=merged,
                    changed_files=list(change.changed_files),
                    merged=merged is not None,
                    scope_violations=list(change.scope_violations),
                )
                return Outcome.SUCCEEDED
        assert failure is not None
        if ws is not None:
            await ctx.provider.close(ws, keep=failure.outcome is not Outcome.CONFLICTED)
        if failure.outcome is Outcome.CONFLICTED and reruns_left > 0:
            reruns_left -= 1
            notes = [failure.note]
            kind = "conflict"
            ctx.emit("conflict_rerun", task.id, attempt=attempt, error=failure.error)
            continue
        if failure.outcome is Outcome.FAILED and retries_left > 0:
            retries_left -= 1
            notes = [failure.note]
            kind = "retry"
            ctx.emit("retry", task.id, attempt=attempt, error=failure.error)
            continue
        refused: dict[str, Any] = {}
        if change is not None:  # what the last attempt did, so status shows what was refused
            refused = {
                "changed_files": list(change.changed_files),
                "scope_violations": list(change.scope_violations),
            }
        _finish_task(ctx, task, failure.outcome, error=failure.error, **refused)
        return failure.outcome


async def _attempt(
    ctx: RunContext,
    task: Task,
    agent: Agent,
    backend: Backend,
    slot: int,
    attempt: int,
    kind: str,
    notes: list[str],
) -> tuple[AgentResult | None, AttemptFailure | None, Change | None, Workspace | None]:
    """One try: open a workspace, run the agent, commit, check scope, run verify."""
    view = ctx.views[task.id]
    attempt_dir = ctx.store.attempt_dir(ctx.run_id, task.id, attempt)
    start_commit = await ctx.merge.tip() if ctx.merge is not None else ctx.base_commit
    started = time.time()
    since = time.monotonic()
    view.state = "running"
    view.started = view.started or time.monotonic()
    ctx.journal.write(
        lambda: ctx.store.start_attempt(
            ctx.run_id, task.id, attempt, kind=kind, started_at=started, start_commit=start_commit
        )
    )
    ctx.journal.write(
        lambda: ctx.store.update_task(
            ctx.run_id,
            task.id,
            status="running",
            attempts=attempt,
            **({"started_at": started} if attempt == 1 or kind == "resume" else {}),
        )
    )
    ctx.emit("attempt_started", task.id, attempt=attempt, attempt_kind=kind)
    await ctx.journal.sync()

    try:
        ws = await ctx.provider.open(task.id, attempt, start_commit)
    except (SetupFailed, GitError, OSError) as exc:  # the attempt fails; plait goes on
        detail = exc.output if isinstance(exc, SetupFailed) and exc.output else str(exc)
        early = AttemptFailure(
            Outcome.FAILED, f"workspace: {exc}", _note("Setting up the workspace failed", detail)
        )
        return None, await _end_early(ctx, task, attempt, early), None, None

    try:
        prompt = render_prompt(ctx, task, notes)
    except jinja2.TemplateError as exc:
        early = AttemptFailure(Outcome.ERRORED, f"prompt template: {exc}", "")
        return None, await _end_early(ctx, task, attempt, early), None, ws
    request = _request(ctx, task, agent, backend, slot, attempt, ws, attempt_dir, prompt)
    if not getattr(backend, "WRITES_PROMPT_FILE", False):
        request.prompt_file.write_text(prompt, encoding="utf-8")
    result = await backend.run(request)
    _account(ctx, task, result)
    if result.status is AttemptStatus.RATE_LIMITED:
        _finish_attempt(ctx, task, attempt, result.status.value, result.error, result)
        await ctx.journal.sync()
        return result, None, None, ws

    change = await ctx.provider.collect(
        ws, writes=task.writes, message=_commit_message(ctx, task, attempt)
    )
    change = _attribute_in_place(ctx, task, change, since)
    failure: AttemptFailure | None = _judge(ctx, task, result, change)
    if failure is None and task.verify is not None:
        view.state = "verifying"
        ctx.emit("verify_started", task.id, attempt=attempt)
        failure = await _task_verify(ctx, task, request, ws)
    status = "ok" if failure is None else (result.status.value if not result.ok else "rejected")
    _finish_attempt(
        ctx, task, attempt, status, failure.error if failure else "", result, change.commit
    )
    if failure is not None:
        # A failed attempt's record decides whether its worktree is kept for inspection.
        await ctx.journal.sync()
    # A success needs no commit of its own: what depends on it (the "merging" row
    # before a merge, or the dependants' attempt rows) is committed with or after it.
    return result, failure, change, ws


async def _end_early(
    ctx: RunContext, task: Task, attempt: int, failure: AttemptFailure
) -> AttemptFailure:
    _finish_attempt(ctx, task, attempt, "errored", failure.error)
    await ctx.journal.sync()
    return failure


def _request(
    ctx: RunContext,
    task: Task,
    agent: Agent,
    backend: Backend,
    slot: int,
    attempt: int,
    ws: Workspace,
    attempt_dir: Path,
    prompt: str,
) -> AgentRequest:
    view = ctx.views[task.id]

    def on_line(line: str) -> None:
        if line.strip():  # the board shows the agent's latest words, not a blank line
            view.last_line = line

    folder = os.fspath(attempt_dir)
    plait_vars = {
        "PLAIT_RUN_ID": ctx.run_id,
        "PLAIT_TASK_ID": task.id,
        "PLAIT_ATTEMPT": str(attempt),
        "PLAIT_WORKSPACE": os.fspath(ws.path),
        "PLAIT_PROMPT_FILE": os.path.join(folder, "prompt.md"),
        "PLAIT_OUTPUT_FILE": os.path.join(folder, "output.txt"),
        "PLAIT_PORT_BASE": str(ctx.port_base + slot * PORTS_PER_SLOT),
    }
    return AgentRequest(
        run_id=ctx.run_id,
        task_id=task.id,
        attempt=attempt,
        agent=agent,
        prompt=prompt,
        workspace=ws.path,
        attempt_dir=attempt_dir,
        env=agent_env(ctx, task, agent, backend, plait_vars),
        timeout_s=task.timeout_s,
        on_line=on_line,
    )


def _attribute_in_place(ctx: RunContext, task: Task, change: Change, since: float) -> Change:
    """isolation none: a path another task running meanwhile may write is not this task's.

    In place, every attempt sees the whole checkout change, including what tasks running
    beside it wrote. Those paths are dropped from its scope violations; if one of those
    tasks has no `writes` (it may write anywhere), what is left cannot be pinned on this
    task either and becomes a warning.
    """
    if ctx.merge is not None or not change.scope_violations:
        return change
    others = [
        ctx.plan.tasks[view.task_id]
        for view in ctx.views.values()
        if view.task_id != task.id
        and view.task_id in ctx.plan.tasks
        and view.started is not None
        and (view.ended is None or view.ended >= since)
    ]
    if not others:
        return change
    scoped = [o for o in others if o.writes]
    kept = [p for p in change.scope_violations if all(check_scope([p], o.writes) for o in scoped)]
    if kept and len(scoped) < len(others):
        ctx.emit("scope_warning", task.id, files=kept)
        kept = []
    return dataclasses.replace(change, scope_violations=tuple(kept))


def _judge(
    ctx: RunContext, task: Task, result: AgentResult, change: Change
) -> AttemptFailure | None:
    if not result.ok:
        outcome = Outcome.ERRORED if result.status is AttemptStatus.ERRORED else Outcome.FAILED
        return AttemptFailure(
            outcome,
            result.error or result.status.value,
            _note(f"The previous attempt failed: {result.error}", result.output),
        )
    if change.protected_violations:
        paths = ", ".join(change.protected_violations)
        why = "; ".join(change.problems)  # "history" alone does not say what happened
        return AttemptFailure(
            Outcome.FAILED,
            f"forbidden changes: {paths}" + (f" — {why}" if why else ""),
            _note("The previous attempt changed files it must never touch", paths),
        )
    if change.scope_violations and ctx.plan.scope is ScopePolicy.ENFORCE:
        paths = ", ".join(change.scope_violations)
        allowed = ", ".join(task.writes)
        return AttemptFailure(
            Outcome.FAILED,
            f"wrote outside its scope: {paths}",
            _note(
                f"The previous attempt wrote outside the files you may change ({allowed})", paths
            ),
        )
    if change.scope_violations:
        ctx.emit("scope_warning", task.id, files=list(change.scope_violations))
    return None


async def _task_verify(
    ctx: RunContext, task: Task, request: AgentRequest, ws: Workspace
) -> AttemptFailure | None:
    assert task.verify is not None
    started = time.monotonic()
    res = await proc.run_process(
        list(task.verify),
        cwd=ws.path,
        env=request.env,
        stdin=None,
        log_path=request.attempt_dir / "verify.log",
        timeout_s=task.timeout_s,
        marker=f"{ctx.run_id}/{task.id}/{request.attempt}/verify",
    )
    ok = res.returncode == 0
    ctx.emit(
        "verify_finished",
        task.id,
        attempt=request.attempt,
        ok=ok,
        duration_s=round(time.monotonic() - started, 3),
    )
    if ok:
        return None
    tail = res.tail(NOTE_TAIL_LINES)
    return AttemptFailure(
        Outcome.FAILED,
        f"verify {' '.join(task.verify)} failed",
        _note(f"The check `{' '.join(task.verify)}` failed after your last attempt", tail),
    )


async def _merge(
    ctx: RunContext, task: Task, attempt: int, change: Change, output: str
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
        ended = time.time()
        ctx.journal.write(
            lambda: ctx.store.finish_attempt(
                ctx.run_id,
                task.id,
                attempt,
                status="conflict",
                finished_at=ended,
                error=f"merge conflict in {files}",
                commit=change.commit,
            )
        )
        ctx.emit("conflict", task.id, attempt=attempt, files=list(result.conflicts))
        return AttemptFailure(
            Outcome.CONFLICTED,
            f"conflicted with the merged work in: {files}",
            "Your previous attempt conflicted with work merged meanwhile in these files: "
            f"{files}. Start again from the current code, which already holds that work, "
            "and keep both changes.",
        )
    return AttemptFailure(
        Outcome.FAILED,
        "the plan's verify failed on the merge result",
        _note("The plan's checks failed on your merged change", result.output),
    )


def _task_output(
    ctx: RunContext, task: Task, attempt: int, result: AgentResult | None, ws: Workspace | None
) -> str:
    if task.output_file and ws is not None:
        path = ws.path / task.output_file
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace")
    return result.output if result is not None else ""


def _account(ctx: RunContext, task: Task, result: AgentResult) -> None:
    """Add what the agent reported spending; nothing is ever estimated."""
    view = ctx.views[task.id]
    cost = result.usage.cost_usd
    if cost is not None:
        ctx.spent_usd += cost
        view.cost_usd = (view.cost_usd or 0.0) + cost
    tokens = result.usage.tokens
    if tokens is not None:
        view.tokens = (view.tokens or 0) + tokens


def _finish_attempt(
    ctx: RunContext,
    task: Task,
    attempt: int,
    status: str,
    error: str,
    result: AgentResult | None = None,
    commit: str | None = None,
) -> None:
    usage = result.usage if result is not None else None
    finished = time.time()
    ctx.journal.write(
        lambda: ctx.store.finish_attempt(
            ctx.run_id,
            task.id,
            attempt,
            status=status,
            finished_at=finished,
            exit_code=result.exit_code if result is not None else None,
            error=error,
            cost_usd=usage.cost_usd if usage else None,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            session_id=result.session_id if result is not None else None,
            commit=commit,
        )
    )
    ctx.emit("attempt_finished", task.id, attempt=attempt, status=status, error=error)


def _finish_task(ctx: RunContext, task: Task, outcome: Outcome, **fields: Any) -> None:
    view = ctx.views[task.id]
    view.state = (
        outcome.value
        if outcome is not Outcome.SUCCEEDED
        else ("merged" if fields.get("merged") else "succeeded")
    )
    view.ended = time.monotonic()
    cost, tokens = view.cost_usd, view.tokens
    finished = time.time()
    ctx.journal.write(
        lambda: ctx.store.update_task(
            ctx.run_id,
            task.id,
            status=outcome.value,
            finished_at=finished,
            cost_usd=cost,
            tokens=tokens,
            **fields,
        )
    )


def _commit_message(ctx: RunContext, task: Task, attempt: int) -> str:
    first_line = task.prompt.strip().splitlines()[0][:72] if task.prompt.strip() else task.id
    return f"plait: {task.id} (attempt {attempt})\n\n{first_line}\n\nRun: {ctx.run_id}\n"


def _note(headline: str, detail: str) -> str:
    lines = detail.strip().splitlines()[-NOTE_TAIL_LINES:]
    body = "\n".join(lines)
    return (
        f"## Note from plait\n\n{headline}.\n\n```\n{body}\n```"
        if body
        else f"## Note from plait\n\n{headline}."
    )
