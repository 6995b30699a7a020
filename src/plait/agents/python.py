"""The `python` backend: a Python callable is the agent (for the library API).

``agent.function(request)`` is called once per attempt. A plain function runs in a
thread of its own (not the default executor, whose few workers would cap how many
agents run at once); a coroutine function is awaited on plait's loop. It runs inside
plait's process, so it must not `os.chdir` (that would move every other task): it
works on the paths in `request` instead — `request.workspace` is its checkout,
`request.env` the variables a subprocess of it should get, `request.output_file`
where it may leave its output.

What it returns: an `AgentResult` is taken as is; a `str` is the output of a
successful attempt; `None` is success with the content of `request.output_file` (or
"" if it wrote none). An exception fails the attempt with the exception's text; the
traceback goes to the attempt's log. Past `request.timeout_s` the attempt is
TIMEOUT: a coroutine is cancelled, a thread cannot be stopped and is abandoned (its
result ignored), so functions with long loops should watch their own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import inspect
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from plait.agents.base import (
    CUT_NOTE,
    AgentRequest,
    AgentResult,
    AttemptStatus,
    read_output_file,
)
from plait.model import Agent


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled by a timeout: nobody waits for it any more
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _call_in_thread(
    fn: Callable[[AgentRequest], Any], request: AgentRequest
) -> asyncio.Future[Any]:
    """Run `fn(request)` in a new daemon thread; a future on the running loop for its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def body() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context.run(fn, request)
        except BaseException as exc:  # reported as the attempt's failure, not lost
            error = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            error.__traceback__ = exc.__traceback__
        with contextlib.suppress(RuntimeError):  # the loop is closed: plait has gone
            loop.call_soon_threadsafe(_settle, future, value, error)

    name = f"plait-{request.task_id}-{request.attempt}"
    threading.Thread(target=body, name=name, daemon=True).start()
    return future


async def _call(fn: Callable[[AgentRequest], Any], request: AgentRequest) -> Any:
    if inspect.iscoroutinefunction(fn):
        value = await fn(request)
    else:
        value = await _call_in_thread(fn, request)
    if inspect.isawaitable(value):  # e.g. a lambda returning a coroutine
        value = await value
    return value


def _read_output(request: AgentRequest) -> str:
    written = read_output_file(request.output_file)
    if written is None:
        return ""
    return written[0].strip() + (CUT_NOTE if written[1] else "")


class PythonBackend:
    """Calls ``agent.function``; see the module docstring."""

    name = "python"
    REPORTS_COST = True  # (its callable's result may carry a usage)
    PASSTHROUGH_ENV: tuple[str, ...] = ()

    def program(self, agent: Agent) -> str | None:
        """Nothing external."""
        return None

    def check(self, agent: Agent) -> str | None:
        """None if the agent has a callable `function`."""
        if not callable(agent.function):
            return f"agent {agent.name!r} uses the python backend but has no callable `function`"
        return None

    async def run(self, request: AgentRequest) -> AgentResult:
        """Call the function once and turn what it returned (or raised) into a result."""
        fn = request.agent.function
        if not callable(fn):
            return AgentResult(AttemptStatus.ERRORED, error=self.check(request.agent) or "")
        try:
            request.attempt_stem.parent.mkdir(parents=True, exist_ok=True)  # the run's folder
            request.prompt_file.write_text(request.prompt, encoding="utf-8")
        except OSError as exc:
            return AgentResult(AttemptStatus.ERRORED, error=f"cannot prepare the attempt: {exc}")
        started = time.monotonic()
        try:
            value = await asyncio.wait_for(_call(fn, request), request.timeout_s)
        except TimeoutError:
            return AgentResult(
                AttemptStatus.TIMEOUT,
                error=f"timed out after {request.timeout_s:g}s",
                duration_s=time.monotonic() - started,
            )
        except Exception as exc:
            request.log_file.write_text("".join(traceback.format_exception(exc)), "utf-8")
            return AgentResult(
                AttemptStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:2000],
                duration_s=time.monotonic() - started,
            )
        duration = time.monotonic() - started
        if isinstance(value, AgentResult):
            if value.duration_s == 0.0:
                value = dataclasses.replace(value, duration_s=duration)
            return value
        if isinstance(value, str):
            return AgentResult(AttemptStatus.OK, output=value, duration_s=duration)
        if value is None:
            return AgentResult(AttemptStatus.OK, output=_read_output(request), duration_s=duration)
        return AgentResult(
            AttemptStatus.FAILED,
            error=f"the function returned {type(value).__name__}; "
            "expected an AgentResult, a str or None",
            duration_s=duration,
        )


BACKEND = PythonBackend()
