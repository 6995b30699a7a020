"""The validated plan: frozen dataclasses and enums, no I/O.

`planfile.py` turns YAML into these; the library API builds them directly in
Python. Everything downstream (analysis, scheduler, runner) reads only these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.agents.base import AgentRequest, AgentResult

#: A command to run: an argv list. A plan's plain string becomes
#: ("/bin/sh", "-c", string): the user's own command line, never a prompt.
Command = tuple[str, ...]

BACKENDS = ("command", "claude", "codex", "gemini", "aider", "cursor", "opencode", "amp", "python")
#: In-process backends for tests of the library API; never valid in a plan file.
INTERNAL_BACKENDS = ("fake",)

#: What a prompt may read of another task: `{{ tasks.X.<attribute> }}`.
TASK_ATTRIBUTES = ("output", "commit", "branch", "changed_files")
#: Where agent profiles live, under the plan's root; the later folder wins a name.
PROFILE_DIRS = (Path(".claude", "agents"), Path(".plait", "agents"))

DEFAULT_JOBS = 4
DEFAULT_MAX_CONFLICT_RERUNS = 2
DEFAULT_ESTIMATE_S = 60.0  # "one unit" when a task has no estimate and no history


class Outcome(StrEnum):
    """How a task ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ERRORED = "errored"
    CONFLICTED = "conflicted"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def ok(self) -> bool:
        return self is Outcome.SUCCEEDED


class Isolation(StrEnum):
    WORKTREE = "worktree"
    NONE = "none"


class ScopePolicy(StrEnum):
    ENFORCE = "enforce"
    WARN = "warn"


class Permission(StrEnum):
    """One portable setting, mapped by each backend onto its own flags."""

    READ = "read"
    EDIT = "edit"
    FULL = "full"


@dataclass(frozen=True)
class Agent:
    """A role: instructions plus the backend that runs it."""

    name: str
    backend: str = "command"
    command: Command | None = None  # argv for the `command` backend; {task} etc. placeholders
    model: str | None = None
    instructions: str | None = None
    permission: Permission = Permission.EDIT
    args: Command = ()  # extra argv appended to a backend's own invocation
    env: Mapping[str, str] = field(default_factory=dict)
    tools: tuple[str, ...] = ()  # Claude Code subagent `tools`, where a profile names them
    description: str | None = None
    source: str = "plan"  # "plan", or the profile file it came from
    #: The `python` backend's callable: (AgentRequest) -> AgentResult | str | None.
    function: Callable[[AgentRequest], AgentResult | str | None] | None = field(
        default=None, compare=False
    )

    def __post_init__(self) -> None:
        permission: Any = self.permission
        if isinstance(permission, str) and permission in set(Permission):
            object.__setattr__(self, "permission", Permission(permission))
        for name in ("command", "args"):  # (a string stays, for `validate_plan` to refuse)
            value: Any = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True)
class Fixer:
    """`on_verify_failure`: the task started when the plan's verify fails.

    It runs like any task, so it has a task's time limit, retries and environment; a
    plan file gives it those of its `defaults:`.
    """

    agent: str
    prompt: str
    timeout_s: float | None = None
    retries: int = 0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One unit of agent work."""

    id: str
    prompt: str
    agent: str = "default"
    needs: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    verify: Command | None = None
    timeout_s: float | None = None
    retries: int = 0
    estimate_s: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    output_file: str | None = None  # the plan's `output`: a workspace path
    continue_on_error: bool = False
    prompt_file: str | None = None  # where `prompt` was read from, if it came from a file
    line: int | None = None  # where the task is defined in the plan file

    def __post_init__(self) -> None:
        # A plan built in Python may say `needs="api"` (as a plan file may) or give
        # globs as a list: one id or glob is not a sequence of its characters.
        for name in ("needs", "writes", "reads"):
            value: Any = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, (value,))
            elif not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "verify", as_command(self.verify))

    def ref(self, attribute: str) -> str:
        """A template reference to this task's result, e.g. ``{{ tasks.api.commit }}``."""
        return "{{ tasks.%s.%s }}" % (self.id, attribute)  # noqa: UP031 - braces

    @property
    def output(self) -> str:
        """Use in another task's prompt; it becomes a template edge to this task."""
        return self.ref("output")


@dataclass(frozen=True)
class Plan:
    """A whole plan. `tasks` may be given as a list; it is kept as an id → Task map."""

    tasks: Mapping[str, Task]
    name: str = "plan"
    version: int = 1
    base: str | None = None  # None: HEAD
    jobs: int = DEFAULT_JOBS
    setup: tuple[Command, ...] = ()
    copy: tuple[str, ...] = ()
    verify: Command | None = None
    #: How long the plan's verify may take (a plan file's `defaults.timeout`); None: plait's
    #: default for a step that is not an agent.
    verify_timeout_s: float | None = None
    verify_each_merge: bool = False
    on_verify_failure: Fixer | None = None
    max_conflict_reruns: int = DEFAULT_MAX_CONFLICT_RERUNS
    scope: ScopePolicy = ScopePolicy.ENFORCE
    isolation: Isolation | None = None  # None: worktree inside git, else none
    budget_usd: float | None = None
    agents: Mapping[str, Agent] = field(default_factory=dict)
    path: Path | None = None  # the plan file, when there is one
    root: Path | None = None  # the directory plan-relative paths resolve against

    def __post_init__(self) -> None:
        tasks: Any = self.tasks
        if not isinstance(tasks, Mapping):
            object.__setattr__(self, "tasks", _by_key(_as_tasks(tasks), "tasks", "id"))
        agents: Any = self.agents
        if not isinstance(agents, Mapping):
            object.__setattr__(self, "agents", _by_key(list(agents), "agents", "name"))
        # Plain strings (as a plan file gives them) for the enumerated fields; one that
        # names no value stays as it is, for `validate_plan` to report.
        for name, kind in (("isolation", Isolation), ("scope", ScopePolicy)):
            value: Any = getattr(self, name)
            if isinstance(value, str) and not isinstance(value, kind) and value in set(kind):
                object.__setattr__(self, name, kind(value))
        copy: Any = self.copy
        if isinstance(copy, str):
            object.__setattr__(self, "copy", (copy,))
        object.__setattr__(self, "verify", as_command(self.verify))
        setup: Any = (self.setup,) if isinstance(self.setup, str) else self.setup
        object.__setattr__(self, "setup", tuple(as_command(step) for step in setup))

    def task(self, task_id: str) -> Task:
        return self.tasks[task_id]


def as_command(value: Any) -> Any:
    """A check or setup step as a plan file gives it: a string is a command line run by
    the shell, a list its argv (an agent's command is never a string: `validate_plan`)."""
    if isinstance(value, str) and value.strip():  # (a blank one stays: refused as empty)
        return ("/bin/sh", "-c", value)
    return tuple(value) if isinstance(value, list) else value


def _by_key(items: list[Any], field_name: str, key: str) -> dict[str, Any]:
    """Items keyed by `key`; the same key twice is a plan error, as in a plan file (the
    later one silently replaced the earlier)."""
    from plait.errors import PlanError, Problem

    out: dict[str, Any] = {}
    for item in items:
        name = getattr(item, key)
        if name in out:
            problem = Problem(f"{field_name}.{name}", f"{name!r} is given twice")
            raise PlanError([problem], None)
        out[name] = item
    return out


def _as_tasks(items: Iterable[Task]) -> list[Task]:
    out = list(items)
    for item in out:
        if not isinstance(item, Task):
            raise TypeError(f"Plan.tasks must hold Task objects, got {type(item).__name__}")
    return out
