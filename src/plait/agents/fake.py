"""A scripted, in-process fake backend for tests.

No subprocess: each attempt follows a `FakeStep` — print some lines, sleep, write
real files in the workspace, end with a chosen status. A script maps task ids to
the steps of their attempts (attempt N takes step N; the last step repeats)::

    from plait.agents import fake

    script = {
        "a": [fake.fail("boom"), fake.ok("done", files={"x.txt": "y"}, sleep_s=0.2)],
        "b": fake.ok("b's output"),
    }
    with fake.scripted(script) as backend:
        result = plait.run_plan(plan)  # agents with backend="fake" follow the script
    assert backend.attempts("a") == 2

`get_backend("fake")` returns `BACKEND`, which runs the `FakeBackend` installed by
`scripted()` / `installed()` (tests run one at a time; the installed backend is
process-wide so it also reaches a runner started in another thread), else a default
one on which every attempt succeeds with empty output. A `FakeBackend` can also be
called directly. "fake" is not in `BACKEND_NAMES`: a plan file cannot name it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from plait.agents.base import AgentRequest, AgentResult, AttemptStatus, Usage
from plait.model import Agent


@dataclass(frozen=True)
class FakeStep:
    """What one attempt does, in this order: lines, sleep, files, action, result."""

    status: AttemptStatus = AttemptStatus.OK
    output: str = ""
    #: Workspace-relative path → content (str or bytes) to write; None deletes the file.
    files: Mapping[str, str | bytes | None] = field(default_factory=dict)
    sleep_s: float = 0.0  # longer than the request's timeout: TIMEOUT at the timeout
    lines: tuple[str, ...] = ()  # printed: written to the log and passed to on_line
    error: str = ""  # default for a non-OK status: "fake <status>"
    exit_code: int | None = None  # default: 0 for OK, 1 for FAILED, else None
    usage: Usage = field(default_factory=Usage)
    retry_after_s: float | None = None
    session_id: str | None = None
    #: Any other side effect, called with the request after the files are written.
    action: Callable[[AgentRequest], None] | None = None
    raises: Exception | None = None  # the backend itself raises this (a broken backend)

    def __post_init__(self) -> None:
        for path in self.files:
            parts = PurePosixPath(path).parts
            if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
                raise ValueError(f"FakeStep.files: {path!r} is not a workspace-relative path")


def ok(output: str = "", **kwargs: Any) -> FakeStep:
    """A step that succeeds with `output` (other FakeStep fields as keywords)."""
    return FakeStep(AttemptStatus.OK, output, **kwargs)


def fail(error: str = "fake failure", **kwargs: Any) -> FakeStep:
    """A step that fails (exit code 1) with `error`."""
    return FakeStep(AttemptStatus.FAILED, error=error, **kwargs)


def hang(**kwargs: Any) -> FakeStep:
    """A step that never finishes on its own: it ends at the request's timeout."""
    return FakeStep(sleep_s=float("inf"), **kwargs)


@dataclass(frozen=True)
class FakeCall:
    """One attempt the fake ran."""

    request: AgentRequest
    step: FakeStep
    started: float  # time.monotonic()
    finished: float
    result: AgentResult


Script = Mapping[str, Sequence[FakeStep] | FakeStep]


class FakeBackend:
    """Follows `script` (task id → steps of attempts 1, 2, …); `default` for other tasks."""

    name = "fake"
    PASSTHROUGH_ENV: tuple[str, ...] = ()

    def __init__(self, script: Script | None = None, default: FakeStep | None = None) -> None:
        self.script: dict[str, tuple[FakeStep, ...]] = {
            task: (steps,) if isinstance(steps, FakeStep) else tuple(steps)
            for task, steps in (script or {}).items()
        }
        self.default = default or FakeStep()
        self.calls: list[FakeCall] = []
        self.running = 0
        self.max_running = 0  # the most attempts in flight at once

    def program(self, agent: Agent) -> str | None:
        """Nothing external."""
        return None

    def check(self, agent: Agent) -> str | None:
        """Always usable."""
        return None

    def step_for(self, task_id: str, attempt: int) -> FakeStep:
        """The step attempt `attempt` (1-based) of `task_id` follows."""
        steps = self.script.get(task_id)
        if not steps:
            return self.default
        return steps[min(max(attempt, 1), len(steps)) - 1]

    def attempts(self, task_id: str) -> int:
        """How many attempts of `task_id` have finished."""
        return sum(1 for call in self.calls if call.request.task_id == task_id)

    async def run(self, request: AgentRequest) -> AgentResult:
        """Play the step for this attempt."""
        step = self.step_for(request.task_id, request.attempt)
        started = time.monotonic()
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            result = await self._play(step, request, started)
        finally:
            self.running -= 1
        self.calls.append(FakeCall(request, step, started, time.monotonic(), result))
        return result

    async def _play(self, step: FakeStep, request: AgentRequest, started: float) -> AgentResult:
        request.attempt_stem.parent.mkdir(parents=True, exist_ok=True)  # the run's folder
        request.prompt_file.write_text(request.prompt, encoding="utf-8")
        with open(request.log_file, "w", encoding="utf-8") as log:
            for line in step.lines:
                log.write(line + "\n")
                if request.on_line is not None:
                    request.on_line(line)
        timeout = request.timeout_s
        if timeout is not None and step.sleep_s > timeout:
            await asyncio.sleep(timeout)
            return AgentResult(
                AttemptStatus.TIMEOUT,
                error=f"timed out after {timeout:g}s",
                duration_s=time.monotonic() - started,
            )
        if step.sleep_s > 0:
            await asyncio.sleep(step.sleep_s)
        if step.raises is not None:
            raise step.raises
        for name, content in step.files.items():
            path = request.workspace / name
            if content is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode("utf-8") if isinstance(content, str) else content
            path.write_bytes(data)
        if step.action is not None:
            step.action(request)
        exit_code = step.exit_code
        if exit_code is None:
            exit_code = {AttemptStatus.OK: 0, AttemptStatus.FAILED: 1}.get(step.status)
        error = step.error or ("" if step.status is AttemptStatus.OK else f"fake {step.status}")
        return AgentResult(
            step.status,
            output=step.output,
            exit_code=exit_code,
            error=error,
            usage=step.usage,
            session_id=step.session_id,
            retry_after_s=step.retry_after_s,
            duration_s=time.monotonic() - started,
        )


_DEFAULT = FakeBackend()
_installed: list[FakeBackend] = []  # a stack: innermost `installed()` wins


@contextmanager
def installed(backend: FakeBackend) -> Iterator[FakeBackend]:
    """Make `get_backend("fake")` run `backend` inside the `with` block."""
    _installed.append(backend)
    try:
        yield backend
    finally:
        _installed.remove(backend)


def scripted(
    script: Script | None = None, default: FakeStep | None = None
) -> AbstractContextManager[FakeBackend]:
    """`installed(FakeBackend(script, default))`: a context manager yielding the backend."""
    return installed(FakeBackend(script, default))


def active() -> FakeBackend:
    """The FakeBackend that `BACKEND` currently runs."""
    return _installed[-1] if _installed else _DEFAULT


class _Dispatch:
    """The registry's `fake` backend: delegates to the installed FakeBackend."""

    name = "fake"
    PASSTHROUGH_ENV: tuple[str, ...] = ()

    def program(self, agent: Agent) -> str | None:
        """Nothing external."""
        return None

    def check(self, agent: Agent) -> str | None:
        """Always usable."""
        return None

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run the attempt on the installed FakeBackend."""
        return await active().run(request)


BACKEND = _Dispatch()
