"""One attempt of a task: workspace, prompt, agent, commit, checks.

`run_attempt()` records that the attempt started (durable before its agent starts,
so resume knows it was in flight), opens its workspace at the integration tip,
renders the prompt (notes from earlier attempts appended after rendering), runs the
backend, collects what changed, and judges it (`plait.attemptjudge`: scope,
protected paths, the task's own `verify`). It returns what happened; deciding what
comes next (retry, re-run, merge, give up) is `plait.taskrun`'s.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from plait import proc
from plait.agents.base import (
    OUTPUT_SUFFIX,
    PROMPT_SUFFIX,
    AgentRequest,
    AgentResult,
    AttemptStatus,
    Backend,
)
from plait.attemptjudge import (
    AttemptFailure,
    attribute_in_place,
    judge,
    missing_output,
    note,
    task_verify,
)
from plait.errors import GitError
from plait.model import Agent, Outcome, Task
from plait.scope import in_scope
from plait.templates import TemplateProblem, render
from plait.workspace import Change, SetupFailed, Workspace

if TYPE_CHECKING:
    from plait.taskrun import RunContext

PORTS_PER_SLOT = 10
TEMPLATE_MARKERS = ("{{", "{%", "{#")
#: Why a task's attempt was cut short, or never started, once the run stopped its tasks.
STOPPED_ERROR = "cancelled: another task failed and the run stops (--fail-fast)"


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
    for added in notes:
        text = f"{text.rstrip()}\n\n{added}\n"
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


async def run_attempt(
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
    attempt_stem = ctx.store.attempt_stem(ctx.run_id, task.id, attempt)
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
            error=None,  # (a rate-limit wait's note, say, is over)
            attempts=attempt,
            # (the first attempt's start, also after a resume: the task's span is whole)
            **({"started_at": started} if attempt == 1 else {}),
        )
    )
    ctx.emit("attempt_started", task.id, attempt=attempt, attempt_kind=kind)
    await ctx.journal.sync()

    try:
        ws = await ctx.provider.open(task.id, attempt, start_commit)
    except (SetupFailed, GitError, OSError) as exc:  # the attempt fails; plait goes on
        detail = exc.output if isinstance(exc, SetupFailed) and exc.output else str(exc)
        early = AttemptFailure(
            Outcome.FAILED, f"workspace: {exc}", note("Setting up the workspace failed", detail)
        )
        return None, await _end_early(ctx, task, attempt, early), None, None

    try:
        prompt = render_prompt(ctx, task, notes)
    except TemplateProblem as exc:
        early = AttemptFailure(Outcome.ERRORED, f"prompt template: {exc}", "")
        return None, await _end_early(ctx, task, attempt, early), None, ws
    request = _request(ctx, task, agent, backend, slot, attempt, ws, attempt_stem, prompt)
    if not getattr(backend, "WRITES_PROMPT_FILE", False):
        request.prompt_file.write_text(prompt, encoding="utf-8")
    result = await _run_agent(ctx, backend, request)
    stopped = result is None
    if result is None:
        # Ended like a timeout (the group terminated, then killed), recorded as cancelled;
        # what it left is committed on its branch below, as after a timeout.
        result = AgentResult(AttemptStatus.FAILED, error=STOPPED_ERROR)
    _account(ctx, task, result)
    if result.status is AttemptStatus.RATE_LIMITED:
        end_attempt(ctx, task, attempt, result.status.value, result.error, result)
        await ctx.journal.sync()
        return result, None, None, ws

    # PLAIT_OUTPUT_FILE is plait's channel for the task's output (§4.9), never work. The
    # plan's `output` file is work when the task may write it (`docs/api.md` of a
    # contract task): committed, or its content would be lost. Outside its `writes` it
    # is only the task's message to plait: read, neither committed nor a violation.
    outputs = tuple(o for o in (request.output_file, _channel_only(task)) if o)
    change = await ctx.provider.collect(
        ws, writes=task.writes, message=_commit_message(ctx, task, attempt), outputs=outputs
    )
    # In place a retry is judged from the task's first attempt on (`plait.inplace`).
    change = attribute_in_place(ctx, task, change, view.started or since)
    failure = judge(ctx, task, result, change) or missing_output(task, ws.path)
    if stopped:
        failure = AttemptFailure(Outcome.CANCELLED, STOPPED_ERROR, "")
    if failure is None and task.verify is not None:
        view.state = "verifying"
        ctx.emit("verify_started", task.id, attempt=attempt)
        failure = await task_verify(ctx, task, request, ws)
    status = "ok" if failure is None else (result.status.value if not result.ok else "rejected")
    status = "cancelled" if stopped else status
    # An attempt that passed may still carry a note from its backend (tool calls the
    # agent was refused): its row and event keep it, so `status` and the board show it.
    error = failure.error if failure else (result.error or "")
    end_attempt(ctx, task, attempt, status, error, result, change.commit)
    if failure is not None:
        # A failed attempt's record decides whether its worktree is kept for inspection.
        await ctx.journal.sync()
    # A success needs no commit of its own: what depends on it (the "merging" row
    # before a merge, or the dependants' attempt rows) is committed with or after it.
    return result, failure, change, ws


async def _run_agent(
    ctx: RunContext, backend: Backend, request: AgentRequest
) -> AgentResult | None:
    """The backend's run of the agent, or None if the run stopped its tasks meanwhile.

    Stopping cancels the backend's run, which ends the agent's process group as a
    timeout does (SIGTERM, a grace period, SIGKILL) before it returns. An interrupt of
    plait itself (Ctrl-C, SIGTERM) cancels this coroutine instead, and goes on up.
    """
    # No task of its own per agent (this runs once per attempt of every task): `stop`
    # cancels the task awaiting it, and this tells that cancel from any other one by
    # its count, as `asyncio.timeout` does.
    me = asyncio.current_task()
    assert me is not None
    if ctx.stopped.is_set():
        return None
    ctx.running_agents.add(me)
    try:
        result = await backend.run(request)  # a cancel ends the agent's group first
    except asyncio.CancelledError:
        if ctx.stopped.is_set() and me.uncancel() == 0:
            return None  # only the run's stop cancelled it: the attempt ends as cancelled
        raise
    finally:
        ctx.running_agents.discard(me)
    if ctx.stopped.is_set() and me.cancelling():  # the backend ended quietly on the cancel
        me.uncancel()
        return None
    return result


async def _end_early(
    ctx: RunContext, task: Task, attempt: int, failure: AttemptFailure
) -> AttemptFailure:
    end_attempt(ctx, task, attempt, "errored", failure.error)
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
    attempt_stem: Path,
    prompt: str,
) -> AgentRequest:
    view = ctx.views[task.id]

    def on_line(line: str) -> None:
        if line.strip():  # the board shows the agent's latest words, not a blank line
            view.last_line = line

    stem = os.fspath(attempt_stem)
    plait_vars = {
        "PLAIT_RUN_ID": ctx.run_id,
        "PLAIT_TASK_ID": task.id,
        "PLAIT_ATTEMPT": str(attempt),
        "PLAIT_WORKSPACE": os.fspath(ws.path),
        "PLAIT_PROMPT_FILE": stem + PROMPT_SUFFIX,
        "PLAIT_OUTPUT_FILE": stem + OUTPUT_SUFFIX,
        "PLAIT_PORT_BASE": str(ctx.port_base + slot * PORTS_PER_SLOT),
    }
    return AgentRequest(
        run_id=ctx.run_id,
        task_id=task.id,
        attempt=attempt,
        agent=agent,
        prompt=prompt,
        workspace=ws.path,
        attempt_stem=attempt_stem,
        env=agent_env(ctx, task, agent, backend, plait_vars),
        timeout_s=task.timeout_s,
        on_line=on_line,
        in_plait_worktree=ctx.merge is not None,  # isolation: worktree
    )


def _account(ctx: RunContext, task: Task, result: AgentResult) -> None:
    """Add what the agent reported spending; nothing is ever estimated. The task's row
    carries it from now on (status, report and the totals show it while the task goes
    on, and after a stop)."""
    view = ctx.views[task.id]
    cost = result.usage.cost_usd
    if cost is not None:
        ctx.spent_usd += cost
        view.cost_usd = (view.cost_usd or 0.0) + cost
        if ctx.over_budget():
            ctx.waits_over.set()  # no rate-limit wait is worth finishing now
    tokens = result.usage.tokens
    if tokens is not None:
        view.tokens = (view.tokens or 0) + tokens
    if cost is not None or tokens is not None:
        spent, used = view.cost_usd, view.tokens
        ctx.journal.write(
            lambda: ctx.store.update_task(ctx.run_id, task.id, cost_usd=spent, tokens=used)
        )


def end_attempt(
    ctx: RunContext,
    task: Task,
    attempt: int,
    status: str,
    error: str,
    result: AgentResult | None = None,
    commit: str | None = None,
    *,
    announce: bool = True,
    finished_at: float | None = None,
) -> None:
    """Record how the attempt ended (journalled with the next sync) and, if `announce`,
    say so in an event. `finished_at`: when its agent ended, if not now (a merge left
    pending by a stop and made on resume: the downtime is not the attempt's)."""
    usage = result.usage if result is not None else None
    finished = time.time() if finished_at is None else finished_at
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
    if announce:
        ctx.emit("attempt_finished", task.id, attempt=attempt, status=status, error=error)


def _channel_only(task: Task) -> str | None:
    """The plan's `output` file if the task's `writes` do not cover it (else None)."""
    if task.output_file is None:
        return None
    return None if in_scope(posixpath.normpath(task.output_file), task.writes) else task.output_file


def _commit_message(ctx: RunContext, task: Task, attempt: int) -> str:
    first_line = task.prompt.strip().splitlines()[0][:72] if task.prompt.strip() else task.id
    return f"plait: {task.id} (attempt {attempt})\n\n{first_line}\n\nRun: {ctx.run_id}\n"
