"""The `command` backend: any program is an agent.

The agent's argv is ``agent.command + agent.args``. In each argv element these exact
tokens are replaced, in one pass (a value that itself contains a token is left alone):

    {task}  {run}  {attempt}  {workspace}  {prompt_file}  {output_file}

Nothing else is interpreted: no shell, no ``str.format``. The prompt never goes into
argv: it is written to ``PLAIT_PROMPT_FILE`` and also fed on standard input. The
program runs in the workspace with `request.env` (built by the runner with
`plait.proc.child_env`), in its own process group, with the marker
``<run>/<task>/<attempt>``.

Output: the content of ``PLAIT_OUTPUT_FILE`` if the program wrote it, else its standard
output (the first MiB), stripped. Status: exit 0 → OK; another exit code → FAILED;
ended by a signal → CRASHED; past its timeout → TIMEOUT; program missing or not
executable → ERRORED.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
from collections.abc import Mapping
from typing import Any

from plait import proc
from plait.agents.base import (
    CUT_NOTE,
    OUTPUT_CAP_BYTES,
    OUTPUT_SUFFIX,
    PROMPT_SUFFIX,
    AgentRequest,
    AgentResult,
    AttemptStatus,
    read_output_file,
)
from plait.model import Agent

GRACE_S = 5.0

_PLACEHOLDER = re.compile(r"\{(task|run|attempt|workspace|prompt_file|output_file)\}")


def substitute(arg: str, values: Mapping[str, str]) -> str:
    """Replace the placeholders in one argv element, in a single pass."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], arg)


@functools.lru_cache(maxsize=64)
def _templated(argv: tuple[str, ...]) -> bool:
    return any(_PLACEHOLDER.search(arg) for arg in argv)


def build_argv(request: AgentRequest) -> list[str]:
    """The argv of one attempt, placeholders filled in."""
    agent = request.agent
    argv = (*(agent.command or ()), *agent.args)
    if not _templated(argv):
        return list(argv)
    values = {
        "task": request.task_id,
        "run": request.run_id,
        "attempt": str(request.attempt),
        "workspace": str(request.workspace),
        "prompt_file": str(request.prompt_file),
        "output_file": str(request.output_file),
    }
    return [substitute(arg, values) for arg in argv]


def signal_name(number: int) -> str:
    """SIGSEGV for 11; "signal 99" for a number with no name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _write_prompt(path: str, prompt: bytes) -> None:
    """Write the prompt file, making the run's folder only if it is missing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(prompt)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class CommandBackend:
    """Runs ``agent.command`` as the agent. `grace_s`: SIGTERM → SIGKILL on timeout."""

    name = "command"
    REPORTS_COST = False
    PASSTHROUGH_ENV: tuple[str, ...] = ()
    #: The runner need not write PLAIT_PROMPT_FILE for this backend: `run` does.
    WRITES_PROMPT_FILE = True

    def __init__(self, grace_s: float = GRACE_S) -> None:
        self.grace_s = grace_s

    def program(self, agent: Agent) -> str | None:
        """argv[0] of the agent's command."""
        return agent.command[0] if agent.command else None

    def check(self, agent: Agent) -> str | None:
        """None if argv[0] can be found (or cannot be judged before the run)."""
        program = self.program(agent)
        if not program:
            return f"agent {agent.name!r} uses the command backend but has no `command`"
        if _PLACEHOLDER.search(program):
            return None  # e.g. {workspace}/agent.sh: only known at run time
        if "/" in program:
            if not os.path.isabs(program):
                return None  # relative to the workspace, which does not exist yet
            if os.path.isfile(program) and os.access(program, os.X_OK):
                return None
            return f"agent {agent.name!r}: {program} is not an executable file"
        if shutil.which(program) is None:
            return f"agent {agent.name!r}: program {program!r} not found on PATH"
        return None

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run the command once; see the module docstring for the mapping to a status."""
        if not request.agent.command:
            return AgentResult(
                AttemptStatus.ERRORED,
                error=f"agent {request.agent.name!r} has no `command` to run",
            )
        argv = build_argv(request)
        prompt = request.prompt.encode("utf-8")
        # Plain strings and os calls: this runs once per attempt of every quick task.
        stem = os.fspath(request.attempt_stem)
        output_file = stem + OUTPUT_SUFFIX
        try:
            _write_prompt(stem + PROMPT_SUFFIX, prompt)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(output_file)  # only what this attempt writes counts
        except OSError as exc:
            return AgentResult(AttemptStatus.ERRORED, error=f"cannot prepare the attempt: {exc}")
        try:
            done = await proc.run_process(
                argv,
                cwd=request.workspace,
                env=request.env,
                stdin=prompt,
                log_path=request.log_file,
                timeout_s=request.timeout_s,
                grace_s=self.grace_s,
                stdout_cap_bytes=OUTPUT_CAP_BYTES,
                on_line=request.on_line,
                on_stderr_line=request.on_line,  # the board's latest words, from either
                marker=f"{request.run_id}/{request.task_id}/{request.attempt}",
            )
        except OSError as exc:  # proc.ProgramNotFound / SpawnError, or the log unwritable
            return AgentResult(AttemptStatus.ERRORED, error=str(exc))
        written = read_output_file(output_file)
        text, cut = written if written is not None else (done.stdout, done.stdout_truncated)
        output = text.strip() + (CUT_NOTE if cut else "")
        common: dict[str, Any] = {
            "output": output,
            "exit_code": done.returncode,
            "duration_s": done.duration_s,
        }
        if done.timed_out:
            how = f" (killed by {signal_name(done.signal)})" if done.signal else ""
            return AgentResult(
                AttemptStatus.TIMEOUT,
                error=f"timed out after {request.timeout_s:g}s{how}",
                **common,
            )
        if done.signal is not None:
            error = f"killed by {signal_name(done.signal)}"
            return AgentResult(AttemptStatus.CRASHED, error=_with_detail(error, done), **common)
        if done.returncode != 0:
            error = f"exited with code {done.returncode}"
            return AgentResult(AttemptStatus.FAILED, error=_with_detail(error, done), **common)
        return AgentResult(AttemptStatus.OK, **common)


def _with_detail(error: str, done: proc.ProcResult) -> str:
    last = done.last_line()
    return f"{error}: {last[:300]}" if last else error


BACKEND = CommandBackend()
