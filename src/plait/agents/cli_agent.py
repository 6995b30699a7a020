"""Shared machinery for the backends that drive a vendor's coding-agent CLI.

A backend module (claude.py, codex.py, ...) says four things: how to invoke its
program (argv, standard input, extra variables), how to read what it prints (a
parser fed one line at a time), which phrases mean "rate limited", and which
version it needs. This module does the rest the same way for all of them: the
`--version` check (once per program per process), finding the program on the
child's PATH, running it through `plait.proc`, and turning exit code + parsed
output into one `AgentResult`. The parsers themselves build on `plait.agents.cli_output`.

Prompts never go into argv: Linux refuses any single argv element over 128 KiB
(MAX_ARG_STRLEN), and a prompt is data, not an option. They go on standard
input, or in a file in the attempt directory whose path is passed instead.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait import proc
from plait.agents.base import AgentRequest, AgentResult, AttemptStatus
from plait.agents.cli_output import Parsed, Parser
from plait.agents.ratelimit import RateLimit, find_rate_limit
from plait.agents.versions import dotted, probe_version
from plait.model import Agent, Permission

log = logging.getLogger("plait.agents")

#: Instructions longer than this are not put in argv (Linux caps one element at
#: 128 KiB); backends that would pass them as a flag prepend them to the prompt.
MAX_ARG_BYTES = 64 * 1024

GRACE_S = 10.0  # SIGTERM → SIGKILL: agents flush their session files on SIGTERM
LOG_CAP_BYTES = 64 * 1024 * 1024
STDOUT_CAP_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Invocation:
    """How one attempt starts: argv[0] is the program name, resolved at run time."""

    argv: tuple[str, ...]
    stdin: bytes
    env: Mapping[str, str] = field(default_factory=dict)  # added to request.env


def with_instructions(agent: Agent, prompt: str) -> str:
    """The role's instructions prepended to the prompt (for CLIs with no system-prompt flag)."""
    if not agent.instructions:
        return prompt
    return f"{agent.instructions.rstrip()}\n\n---\n\n{prompt}"


# --- the backend -------------------------------------------------------------------


class CliBackend(ABC):
    """A backend whose agent is a vendor CLI. Subclasses fill in the class attributes."""

    name: str
    executable: str
    install_hint: str  # the install command shown when it is missing or old
    min_version: tuple[int, ...]
    min_version_reason: str  # which flag or output shape needs it
    #: Environment variable names the agent needs from the parent (``X_*``: a prefix).
    PASSTHROUGH_ENV: tuple[str, ...] = ()
    #: permission → the flags that grant it. One table per backend.
    PERMISSIONS: Mapping[Permission, tuple[str, ...]]
    rate_limit_patterns: tuple[re.Pattern[str], ...] = ()
    #: What a successful run must print, for the "no result" message.
    result_hint: str = "a final result"
    #: Whether the CLI says what an attempt cost (`budget_usd` counts only that).
    REPORTS_COST = False

    def program(self, agent: Agent) -> str | None:
        """The executable this agent needs on PATH."""
        return self.executable

    def check(self, agent: Agent) -> str | None:
        """None when the program is installed and new enough, else what to do about it."""
        path = shutil.which(self.executable)
        if path is None:
            return self.missing_message()
        probe = probe_version(path)
        if probe.failure is not None:
            return (
                f"`{self.executable} --version` failed ({probe.failure}); "
                f"reinstall: {self.install_hint}"
            )
        if probe.version is None:
            # An unknown format is not proof of an old version: let the run show it.
            return None
        if probe.version < self.min_version:
            return (
                f"{self.executable} {dotted(probe.version)} is too old: plait needs "
                f"{dotted(self.min_version)} or newer ({self.min_version_reason}). "
                f"Upgrade: {self.install_hint}"
            )
        return None

    def missing_message(self) -> str:
        return f"{self.executable} is not installed: {self.install_hint}"

    def permission_flags(self, agent: Agent) -> tuple[str, ...]:
        return self.PERMISSIONS[agent.permission]

    def piped_invocation(
        self, request: AgentRequest, base: Sequence[str], *, model_flag: str = "--model"
    ) -> Invocation:
        """The common shape: `base`, the permission flags, the model, the plan's
        `args`; the role's instructions and the prompt on standard input."""
        agent = request.agent
        argv = [*base, *self.permission_flags(agent)]
        if agent.model:
            argv += [model_flag, agent.model]
        argv += agent.args
        return Invocation(tuple(argv), with_instructions(agent, request.prompt).encode("utf-8"))

    @abstractmethod
    def invocation(self, request: AgentRequest) -> Invocation:
        """argv (prompt never in it), standard input and extra variables for one attempt."""

    @abstractmethod
    def parser(self, request: AgentRequest) -> Parser:
        """A fresh parser for one attempt's output."""

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run one attempt and judge it from the exit status and the parsed output."""
        path = shutil.which(self.executable, path=request.env.get("PATH"))
        if path is None:
            return AgentResult(AttemptStatus.ERRORED, error=self.missing_message())
        try:
            request.attempt_stem.parent.mkdir(parents=True, exist_ok=True)  # the run's folder
            invocation = self.invocation(request)
        except OSError as exc:
            return AgentResult(AttemptStatus.ERRORED, error=f"cannot prepare {self.name}: {exc}")
        parser = self.parser(request)
        forward = request.on_line

        def on_line(line: str) -> None:
            parser.feed(line)
            if forward is not None:
                forward(line)

        env = dict(request.env)
        env.update(invocation.env)
        try:
            done = await proc.run_process(
                [path, *invocation.argv[1:]],
                cwd=request.workspace,
                env=env,
                stdin=invocation.stdin,
                log_path=request.log_file,
                timeout_s=request.timeout_s,
                grace_s=GRACE_S,
                log_cap_bytes=LOG_CAP_BYTES,
                stdout_cap_bytes=STDOUT_CAP_BYTES,
                on_line=on_line,
                marker=f"{request.run_id}/{request.task_id}/{request.attempt}",
                on_stderr_line=forward,  # shown on the board, never parsed
            )
        except proc.SpawnError as exc:
            return AgentResult(AttemptStatus.ERRORED, error=f"cannot start {self.name}: {exc}")
        if not done.stdout_truncated:
            # The whole stdout was kept: parse it again from the exact bytes, where no
            # line was cut at 64 KiB nor a multi-byte character split between pieces.
            parser = self.parser(request)
            for line in done.stdout.split("\n"):
                parser.feed(line.rstrip("\r"))
        parsed = parser.finish(done)
        if parsed.skipped_lines:
            log.warning(
                "%s: skipped %d malformed JSON line(s); see %s",
                self.name,
                parsed.skipped_lines,
                request.log_file,
            )
        if parsed.notes:
            _append_notes(request.log_file, parsed.notes)
        return self.judge(done, parsed, request)

    def judge(self, done: proc.ProcResult, parsed: Parsed, request: AgentRequest) -> AgentResult:
        """One verdict from the exit status and what the agent reported."""
        tail = done.tail(40)
        # The CLI's structured output was parsed already; searching it again would find
        # "429" in a tool's output or the model's answer about rate limiting.
        notes = parsed.unparsed
        if notes is None:  # JSONL: every event is one line (and a pretty-printed document)
            notes = "\n".join(x for x in tail.splitlines() if not _is_json(x))
        common: dict[str, Any] = {
            "output": parsed.output,
            "exit_code": done.returncode,
            "usage": parsed.usage(),
            "session_id": parsed.session_id,
            "duration_s": done.duration_s,
        }
        if done.timed_out:
            return AgentResult(
                AttemptStatus.TIMEOUT,
                error=f"{self.name} timed out after {request.timeout_s:g}s",
                **common,
            )
        if done.signal is not None:
            error = f"{self.name} was killed by signal {done.signal}"
            return AgentResult(AttemptStatus.CRASHED, error=error, **common)
        noted = "; ".join(parsed.notes)
        if parsed.found and not parsed.is_error and done.returncode == 0:
            # A success keeps what is worth knowing of it where a reader of the result looks.
            return AgentResult(AttemptStatus.OK, error=noted[:2000], **common)
        limit = parsed.rate_limit or find_rate_limit(
            [parsed.error, *parsed.errors, notes], self.rate_limit_patterns
        )
        if limit is not None:
            return AgentResult(
                AttemptStatus.RATE_LIMITED,
                error=rate_limit_error(self.name, limit),
                retry_after_s=limit.retry_after_s,
                **common,
            )
        reason = parsed.error or (parsed.errors[-1] if parsed.errors else "")
        if done.returncode != 0:
            # Never a JSON event as the reason: the result line of a run that did its
            # work and then exited non-zero says nothing about why. None: the code alone.
            detail = reason or _last_line(notes)
            error = f"{self.name} exited with code {done.returncode}"
            error += f": {detail}" if detail else ""
        elif parsed.is_error:
            error = f"{self.name} reported an error: {reason or 'no detail given'}"
        else:
            error = f"{self.name} exited 0 but printed no result (expected {self.result_hint})"
            error += f"; see {request.log_file}" if done.log_tail else " and nothing else"
        error += f" ({noted})" if noted else ""
        return AgentResult(AttemptStatus.FAILED, error=error[:2000], **common)


def rate_limit_error(name: str, limit: RateLimit) -> str:
    """The attempt's error for a refusal, with when it resets where a reader sees it.

    The event line shows about the first 160 characters of an error, and vendors put
    the reset last, after links ("... visit https://... or try again at Nov 30th, 2026
    8:05 PM."): a reset not near the start of the message is named before it.
    """
    error = f"{name} hit a rate or usage limit"
    if limit.reset and limit.reset.lower() not in limit.message[:100].lower():
        error += f" ({limit.reset})"
    return f"{error}: {limit.message}"


def _append_notes(log_file: Path, notes: list[str]) -> None:
    """Add plait's notes on the attempt at the end of its log, marked as plait's."""
    try:
        with log_file.open("a", encoding="utf-8") as f:
            f.writelines(f"[plait] {note}\n" for note in notes)
    except OSError as exc:  # the notes are also in the result; the log is a convenience
        log.warning("cannot add notes to %s: %s", log_file, exc)


#: A line of JSON: an object, its end, or one member of a pretty-printed one. (A line
#: opening with `[` is often words: "[API Error: ...]", "[2026-11-28T09:00] ERROR".)
_JSON_LINE = re.compile(r'^\s*(?:[{}]|"(?:[^"\\]|\\.)*"\s*:)')
#: Only brackets and commas: where a pretty-printed array opens or closes.
_BRACKETS = re.compile(r"^[\s\[\],{}]*$")


def _is_json(line: str) -> bool:
    """True for a line of JSON, or of a pretty-printed document (`  1,`, `"a": {`)."""
    if _JSON_LINE.match(line) or _BRACKETS.match(line):
        return True
    try:
        json.loads(line.strip().rstrip(","))
    except ValueError:
        return False
    return True


def _last_line(text: str) -> str:
    """The last line of `text` that is words, not JSON ("" if none)."""
    for line in reversed(text.splitlines()):
        if line.strip() and not _is_json(line):
            return line.strip()[:500]
    return ""
