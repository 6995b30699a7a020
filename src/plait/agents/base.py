"""The backend protocol: how any agent is run, and the one result it yields.

A backend turns an `AgentRequest` (who, what prompt, which workspace, which
environment) into an `AgentResult`. Backends run their program through
`plait.proc`; the runner never sees a backend's argv or output format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from plait.model import Agent


class AttemptStatus(StrEnum):
    """How one attempt of an agent ended, before scope checks, verify and merge."""

    OK = "ok"  # the agent reports success
    FAILED = "failed"  # non-zero exit, or an error result
    TIMEOUT = "timeout"  # killed after its timeout
    CRASHED = "crashed"  # ended by a signal it did not ask for
    RATE_LIMITED = "rate_limited"  # the vendor refused for rate/usage limits: wait, retry
    ERRORED = "errored"  # could not be started (program missing, bad workspace)


#: The files of one attempt: ``runs/<run>/<task>.<attempt>`` + suffix, flat in the run's
#: folder. Not in a folder per attempt: a run of quick tasks makes thousands of attempts,
#: and on the file systems measured a folder costs 50-300 us of kernel time to create,
#: several times a file.
PROMPT_SUFFIX = ".prompt.md"
OUTPUT_SUFFIX = ".output.txt"
LOG_SUFFIX = ".log"
VERIFY_LOG_SUFFIX = ".verify.log"


def attempt_file(attempt_stem: Path, suffix: str) -> Path:
    """One of the attempt's own files: `attempt_stem`'s name plus `suffix`, beside it."""
    return Path(f"{attempt_stem}{suffix}")


#: How much of a task's output plait keeps: what a dependant's prompt and the state get.
OUTPUT_CAP_BYTES = 1024 * 1024
#: Ends an output cut at OUTPUT_CAP_BYTES, so neither a reader nor a dependant's
#: prompt takes the first mebibyte for the whole.
CUT_NOTE = "\n[plait: the output was cut here, at its first 1 MiB]"


def read_output_file(path: str | Path) -> tuple[str, bool] | None:
    """An output file's text (as written: line endings kept), and whether it was longer
    than the cap; None if there is no such file."""
    try:
        with open(path, "rb") as f:
            data = f.read(OUTPUT_CAP_BYTES + 1)
    except FileNotFoundError:
        return None
    cut = len(data) > OUTPUT_CAP_BYTES
    return data[:OUTPUT_CAP_BYTES].decode("utf-8", "replace"), cut


@dataclass(frozen=True)
class AgentRequest:
    """Everything a backend needs to run one attempt."""

    run_id: str
    task_id: str
    attempt: int  # 1-based
    agent: Agent
    prompt: str  # the rendered prompt, retry/conflict notes already appended
    workspace: Path  # cwd of the agent
    #: runs/<run>/<task>.<attempt>: the attempt's prompt, log and output are the files
    #: named with this stem and a suffix (`prompt_file` …), flat in the run's folder.
    attempt_stem: Path
    env: Mapping[str, str]  # the child's whole environment (allowlist + plait vars + plan env)
    timeout_s: float | None = None
    #: Called with each complete line the agent prints (for the live board).
    on_line: Callable[[str], None] | None = field(default=None, compare=False)
    #: The workspace is a worktree plait made for this attempt, not the user's own
    #: checkout (`isolation: none`): only then may a backend tell its CLI to trust it.
    in_plait_worktree: bool = False

    @property
    def attempt_dir(self) -> Path:
        """The folder named like the attempt, for a backend that keeps files of its own
        (aider's history, amp's settings); the backend makes it when it needs it."""
        return self.attempt_stem

    @property
    def prompt_file(self) -> Path:
        return attempt_file(self.attempt_stem, PROMPT_SUFFIX)

    @property
    def output_file(self) -> Path:
        return attempt_file(self.attempt_stem, OUTPUT_SUFFIX)

    @property
    def log_file(self) -> Path:
        return attempt_file(self.attempt_stem, LOG_SUFFIX)

    @property
    def verify_log_file(self) -> Path:
        return attempt_file(self.attempt_stem, VERIFY_LOG_SUFFIX)


@dataclass(frozen=True)
class Usage:
    """What the agent reported about its own spending. None: not reported."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    turns: int | None = None

    @property
    def tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(frozen=True)
class AgentResult:
    """One attempt's result, whatever the agent printed."""

    status: AttemptStatus
    output: str = ""  # the final message: becomes `tasks.X.output`
    exit_code: int | None = None
    error: str = ""  # short reason for the person reading the run, when not OK
    usage: Usage = field(default_factory=Usage)
    session_id: str | None = None
    retry_after_s: float | None = None  # for RATE_LIMITED: when the vendor says to retry
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is AttemptStatus.OK


class Backend(Protocol):
    """How one kind of agent is run."""

    name: str

    def program(self, agent: Agent) -> str | None:
        """The executable this agent needs on PATH (None: nothing external)."""
        ...

    def check(self, agent: Agent) -> str | None:
        """Version check: None if usable, else a message saying what is wrong."""
        ...

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run one attempt to its end (success, failure, timeout) and report it."""
        ...
