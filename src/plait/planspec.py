"""The plan's shape as pydantic models: types, defaults, descriptions, the JSON Schema.

`plait.planfile` judges every plan with these models; they also report its
problems and give the schema. Each field's description is given to `Field`, not
written as an attribute docstring: pydantic would read those from this file's
source on every start-up (~15 ms, more than half of building the models).

Pydantic checks shapes only (is `needs` a list of text?). Bounds and references
live in `plait.planrules`, so Python-built plans get them too; the bounds also
appear here, in the schema, for editors. Pydantic's errors never reach the user
raw: `spec_problems` turns them into located sentences with a did-you-mean.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from plait.errors import Problem
from plait.model import BACKENDS
from plait.planrules import (
    JOBS_RANGE,
    RERUNS_MAX,
    RETRIES_MAX,
    TASK_ID_RE,
    TIMEOUT_RANGE,
    did_you_mean,
)
from plait.planvalues import (
    agent_from_spec,
    describe,
    parse_duration,
    to_argv,
    to_command,
    to_duration,
    to_env_value,
    to_list,
    to_tools,
)
from plait.planyaml import Located, join

Duration = Annotated[float, BeforeValidator(to_duration, json_schema_input_type=str | float)]
CommandSpec = Annotated[
    list[str], BeforeValidator(to_command, json_schema_input_type=str | list[str])
]
Argv = Annotated[list[str], BeforeValidator(to_argv, json_schema_input_type=list[str])]
OneOrMany = Annotated[list[str], BeforeValidator(to_list, json_schema_input_type=str | list[str])]
Tools = Annotated[list[str], BeforeValidator(to_tools, json_schema_input_type=str | list[str])]
EnvValue = Annotated[
    str, BeforeValidator(to_env_value, json_schema_input_type=str | int | float | bool)
]


def _bounds(low: float, high: float | None = None, *, description: str) -> Any:
    extra: dict[str, float] = {"minimum": low}
    if high is not None:
        extra["maximum"] = high
    return Field(default=None, json_schema_extra=extra, description=description)  # type: ignore[arg-type]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


#: The backends a plan file may name (`python` takes a callable: Python plans only).
FILE_BACKENDS = tuple(b for b in BACKENDS if b != "python")


class AgentSpec(_Spec):
    """An agent role: instructions plus the backend that runs it."""

    backend: str | None = Field(
        default=None,
        description=(
            "How the agent runs: command, claude, codex, gemini, aider, cursor, opencode or amp.\n"
            "Default: `command` when `command` is given, else `claude`."
        ),
        # (for editors: a misspelt backend is flagged as it is typed, not at `plait plan`)
        json_schema_extra={"enum": [*FILE_BACKENDS, None]},
    )
    command: Argv | None = Field(
        default=None,
        description=(
            "For the command backend: the argv to start (the prompt arrives on standard input)."
        ),
    )
    model: str | None = Field(
        default=None,
        description="The model the backend should use, in its own naming (e.g. opus, gpt-5).",
    )
    instructions: str | None = Field(
        default=None,
        description=(
            "The role's standing instructions, given to the agent before the task's prompt."
        ),
    )
    description: str | None = Field(
        default=None, description="One line saying what this role is for."
    )
    permission: Literal["read", "edit", "full"] | None = Field(
        default=None,
        description="What the agent may do: read, edit (files only; the default) or full.",
    )
    tools: Tools | None = Field(
        default=None,
        description=(
            "Claude Code tool names the agent may use (a list, or one comma-separated string)."
        ),
    )
    args: list[str] | None = Field(
        default=None, description="Extra arguments appended to the backend's own command line."
    )
    env: dict[str, EnvValue] | None = Field(
        default=None, description="Extra environment variables for this agent."
    )


class TaskSpec(_Spec):
    """One unit of agent work."""

    agent: str | None = Field(
        default=None,
        description="The agent role that does the task: a name under `agents:` or a profile file.",
    )
    prompt: str | None = Field(
        default=None,
        description=(
            "What to do. May use {{ tasks.<id>.output }} (also .commit, .branch, .changed_files)."
        ),
    )
    prompt_file: str | None = Field(
        default=None,
        description="A file holding the prompt, relative to the plan file (instead of `prompt`).",
    )
    needs: OneOrMany | None = Field(
        default=None,
        description="Task ids that must succeed and be merged before this task starts.",
    )
    writes: list[str] | None = Field(
        default=None,
        description="Globs, from the repository root, of the files this task may change.",
    )
    reads: list[str] | None = Field(
        default=None,
        description="Globs of files this task reads: it runs after any task that writes them.",
    )
    verify: CommandSpec | None = Field(
        default=None,
        description=(
            "A check run in the task's workspace before its merge (argv list, or a shell line)."
        ),
    )
    timeout: Duration | None = _bounds(
        *TIMEOUT_RANGE,
        description="How long the agent may run: 90s, 30m, 2h, 1h30m or seconds (1s to 7d).",
    )
    retries: int | None = _bounds(
        0, RETRIES_MAX, description="Extra attempts after a failure (0 to 10)."
    )
    estimate: Duration | None = _bounds(
        0, description="Expected duration, for planning before any run history exists."
    )
    env: dict[str, EnvValue] | None = Field(
        default=None, description="Extra environment variables for the agent."
    )
    output: str | None = Field(
        default=None, description="A path in the workspace whose content becomes the task's output."
    )
    continue_on_error: bool | None = Field(
        default=None,
        description="A failure does not fail the run (tasks that need this one are still skipped).",
    )


#: What `defaults` does, for the schema.
DEFAULTS_HELP = "Any task field, for every task that does not set it (`env` adds to a task's)."


class DefaultsSpec(TaskSpec):
    """Any task field, applied to every task that does not set it (`env` adds to a
    task's own)."""


class FixerSpec(_Spec):
    """The task started when the plan's verify fails; it gets the failure output."""

    agent: str | None = Field(
        default=None, description="The agent that fixes the failure (default: defaults.agent)."
    )
    prompt: str = Field(description="What the fixer should do.")


class PlanSpec(_Spec):
    """A plait plan: tasks for coding agents, run in parallel on one git repository."""

    model_config = ConfigDict(title="plait plan")

    version: int = Field(
        default=1, json_schema_extra={"const": 1}, description="The plan format version: 1."
    )
    name: str | None = Field(
        default=None,
        description="The plan's name, used to find earlier runs of it (default: the file name).",
    )
    base: str | None = Field(
        default=None, description="The git ref every run starts from (default: HEAD)."
    )
    jobs: int | None = _bounds(
        *JOBS_RANGE,
        description="How many agents run at once (default 4; `plait run -j` overrides).",
    )
    defaults: DefaultsSpec | None = Field(
        default=None,
        description=DEFAULTS_HELP,
    )
    setup: list[CommandSpec] | None = Field(
        default=None, description="Commands run in every new workspace before its agent."
    )
    copy_: list[str] | None = Field(
        default=None,
        alias="copy",
        description="Untracked files copied from the main checkout into each workspace (globs).",
    )
    verify: CommandSpec | None = Field(
        default=None, description="A check run on the integration branch after the last merge."
    )
    verify_each_merge: bool | None = Field(
        default=None,
        description="Also run `verify` on every merge result, and refuse merges that fail it.",
    )
    on_verify_failure: FixerSpec | None = Field(
        default=None,
        description="A fixer task ({agent, prompt}) started with the output of a failing `verify`.",
    )
    max_conflict_reruns: int | None = _bounds(
        0,
        RERUNS_MAX,
        description=(
            "How often a task is re-run on top of the new tip after a merge conflict (default 2)."
        ),
    )
    scope: Literal["enforce", "warn"] | None = Field(
        default=None,
        description=(
            "What a change outside a task's `writes` does: fail the task (enforce) or warn."
        ),
    )
    isolation: Literal["worktree", "none"] | None = Field(
        default=None,
        description=(
            "worktree: each task in its own git worktree; none: all in the checkout itself."
        ),
    )
    budget_usd: float | None = Field(
        default=None,
        json_schema_extra={"exclusiveMinimum": 0},
        description="Stop starting tasks once the agents report spending this much.",
    )
    agents: dict[str, AgentSpec] | None = Field(
        default=None,
        description=(
            "Agent roles by name (profiles in .plait/agents/ and .claude/agents/ also count)."
        ),
    )
    tasks: dict[str, TaskSpec] = Field(
        json_schema_extra={"propertyNames": {"pattern": f"^{TASK_ID_RE.pattern}$"}},
        description="The tasks, by id (lowercase letters, digits, '-' and '_').",
    )


__all__ = [
    "AgentSpec",
    "DefaultsSpec",
    "FixerSpec",
    "PlanSpec",
    "TaskSpec",
    "agent_from_spec",
    "judge",
    "parse_duration",
    "prune",
    "spec_problems",
]

_FIELDS_AT: dict[int, dict[str, type[_Spec]]] = {
    1: {"": PlanSpec},
    2: {"defaults": DefaultsSpec, "on_verify_failure": FixerSpec},
    3: {"tasks": TaskSpec, "agents": AgentSpec},
}
_EXPECTED = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def judge(data: dict[str, Any], located: Located) -> tuple[PlanSpec | None, list[Problem]]:
    """The PlanSpec of `data` (None if still malformed) and its shape problems.

    Each round drops the fields pydantic rejected, so one problem does not hide
    the next; one round usually suffices.
    """
    problems: list[Problem] = []
    work = data
    for _ in range(5):
        try:
            return PlanSpec.model_validate(work), problems
        except ValidationError as exc:
            problems = problems or spec_problems(exc, located)
            work = copy.deepcopy(data) if work is data else work  # `located` keeps the original
            for err in exc.errors():
                if err["loc"]:
                    prune(work, err["loc"], err["type"])
    return None, problems


def spec_problems(
    exc: ValidationError, located: Located, model: type[_Spec] = PlanSpec, prefix: str = ""
) -> list[Problem]:
    """Pydantic's errors as readable, located Problems (never pydantic's own dump)."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path = prefix
        for part in loc:
            path = join(path, part if isinstance(part, int) else str(part))
        kind, got = err["type"], err.get("input")
        if kind == "extra_forbidden":
            owner = model if model is not PlanSpec else _owner(loc)
            valid = sorted(f.alias or n for n, f in owner.model_fields.items())
            message = f"unknown key '{loc[-1]}'{did_you_mean(str(loc[-1]), valid, '.')}"
            message += f" Valid keys here: {', '.join(valid)}."
        elif kind == "missing":
            message = f"'{loc[-1]}' is required"
        elif kind == "literal_error":
            message = f"expected {err.get('ctx', {}).get('expected')}, got {describe(got)}"
        elif kind == "value_error":
            message = str(err.get("ctx", {}).get("error", err["msg"]))
        elif kind in _EXPECTED:
            message = f"expected {_EXPECTED[kind]}, got {describe(got)}"
        else:
            message = str(err["msg"])
        problems.append(Problem(path, message, *located.where(path)))
    return problems


def _owner(loc: tuple[int | str, ...]) -> type[_Spec]:
    head = str(loc[0]) if len(loc) > 1 else ""
    return _FIELDS_AT.get(len(loc), {}).get(head, PlanSpec)


def prune(data: dict[str, Any], loc: tuple[int | str, ...], kind: str) -> None:
    """Drop the field an error is about, so the rest of the plan can still be checked."""
    depth = 3 if loc[0] in ("tasks", "agents") else 2 if loc[0] in _FIELDS_AT[2] else 1
    target = list(loc[:depth])
    if kind == "missing":
        target = target[:-1]
    if not target:
        data["tasks"] = {}
        return
    parent: Any = data
    for step in target[:-1]:
        parent = parent.get(step) if isinstance(parent, dict) else None
    if isinstance(parent, dict):
        if target[0] in ("tasks", "agents") and len(target) <= 2:
            parent[target[-1]] = {}  # keep the id: other tasks may name it
        else:
            parent.pop(target[-1], None)
