"""The rules about a plan's meaning (DESIGN §2), checked on the frozen dataclasses.

Both a plan read from YAML and one built in Python go through `check_plan`, so
the two can never disagree. Problems come back with a field path only; the caller
adds the location it knows. Cycles are left to `plait.analysis`, which can print
them with the reason for each edge.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from plait.errors import Problem
from plait.globsyntax import literal_prefix
from plait.model import (
    BACKENDS,
    INTERNAL_BACKENDS,
    TASK_ATTRIBUTES,
    Agent,
    Command,
    Plan,
    Task,
)
from plait.planvalues import describe
from plait.planyaml import join

if TYPE_CHECKING:
    from plait.templates import TemplateProblem

TASK_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
TASK_ID_MAX = 100
AGENT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TIMEOUT_RANGE = (1.0, 7 * 86400.0)
RETRIES_MAX = 10
JOBS_RANGE = (1, 256)
RERUNS_MAX = 10
#: The id the run gives the `on_verify_failure` fixer's task (`plait.runner` imports
#: it from here: importing the runner would load the whole engine to read a plan).
FIXER_TASK_ID = "fix-verify"


# `{{ tasks.<id>.<attribute> }}` exactly as Jinja reads it: ASCII names, plain spaces.
_TASK_REF = re.compile(
    r"\{\{[ \t\r\n]*tasks\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)[ \t\r\n]*\}\}"
)
_TEMPLATE_START = re.compile(r"\{[{%#]")  # where Jinja's lexer leaves plain text
_ATTRIBUTES = frozenset(TASK_ATTRIBUTES)


def prompt_refs(prompt: str) -> dict[str, set[str]]:
    """`plait.templates.template_refs` of a prompt, without Jinja for the usual shape.

    A prompt whose only template syntax is ``{{ tasks.<id>.<attribute> }}`` (the
    references plans use) is read here; anything else goes to Jinja, as before.
    Importing Jinja and parsing with it cost a 10,000-task plan 0.2 s.
    Raises TemplateProblem for a syntax error or an unknown attribute.
    """
    refs: dict[str, set[str]] = {}
    if "{" not in prompt:
        return refs
    pos = 0
    while (start := _TEMPLATE_START.search(prompt, pos)) is not None:
        ref = _TASK_REF.match(prompt, start.start())
        if ref is None or ref.group(2) not in _ATTRIBUTES:
            from plait.templates import template_refs

            return template_refs(prompt)
        refs.setdefault(ref.group(1), set()).add(ref.group(2))
        pos = ref.end()
    return refs


def template_problem() -> type[TemplateProblem]:
    """The exception `prompt_refs` raises, for an ``except`` clause: Python evaluates
    it only when an exception arrives, so Jinja is imported only when needed."""
    from plait.templates import TemplateProblem

    return TemplateProblem


def did_you_mean(word: str, choices: Iterable[str], otherwise: str = "") -> str:
    """'; did you mean 'x'?' for the closest choice, else `otherwise`."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else otherwise


# ---------------------------------------------------------------- rules about meaning

Add = Callable[[str, str], None]


def check_plan(plan: Plan, profiles: Iterable[str] = ()) -> list[Problem]:
    """Every rule of DESIGN §2 about meaning, as Problems without locations.

    `profiles` are agent names found in profile files. Cycles are left to
    `plait.analysis`, which can print them with their reasons.
    """
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(path, message))

    if plan.version != 1:
        add("version", f"version {plan.version} is not supported; this plait reads version 1")
    _int_in("jobs", plan.jobs, *JOBS_RANGE, add)
    _int_in("max_conflict_reruns", plan.max_conflict_reruns, 0, RERUNS_MAX, add)
    if plan.budget_usd is not None and not plan.budget_usd > 0:
        add("budget_usd", f"must be more than 0, got {plan.budget_usd}")
    for i, command in enumerate(plan.setup):
        _check_command(join("setup", i), command, add)
    if plan.verify is not None:
        _check_command("verify", plan.verify, add)
    _check_globs("copy", plan.copy, add, negatable=False)
    known = set(profiles) | set(plan.agents)
    for name, agent in plan.agents.items():
        # A plan built in Python (no file) may use plait's in-process test backends.
        check_agent(join("agents", name), name, agent, add, internal_ok=plan.path is None)
    ids = set(plan.tasks)
    if plan.on_verify_failure is not None:
        fixer = plan.on_verify_failure
        _check_agent_ref("on_verify_failure.agent", fixer.agent, known, add)
        _check_prompt("on_verify_failure.prompt", fixer.prompt, ids, None, add)
    if not plan.tasks:
        add("tasks", "a plan needs at least one task")
    if plan.on_verify_failure is not None and FIXER_TASK_ID in plan.tasks:
        add(
            join("tasks", FIXER_TASK_ID),
            f"'{FIXER_TASK_ID}' is the id the run gives the `on_verify_failure` fixer's task; "
            "give this task another id",
        )
    for key, task in plan.tasks.items():
        _check_task(key, task, ids, known, add)
    return problems


def _check_task(key: str, task: Task, ids: set[str], known: set[str], add: Add) -> None:
    # Field paths are built only for a problem: a 10,000-task plan has few or none.
    path = join("tasks", key)
    bad_id = _id_problem(key)
    if bad_id:
        add(path, bad_id)
    if task.id != key:
        add(path, f"is listed as '{key}' but its id is '{task.id}'")
    if not task.agent or task.agent not in known:
        _check_agent_ref(join(path, "agent"), task.agent, known, add)
    if not task.prompt and task.prompt_file is None:
        add(join(path, "prompt"), "a task needs a prompt: set `prompt` (text) or `prompt_file`")
    else:
        where = join(path, "prompt_file" if task.prompt_file is not None else "prompt")
        _check_prompt(where, task.prompt, ids, key, add)
    for i, need in enumerate(task.needs):
        if need == key:
            add(join(join(path, "needs"), i), f"task '{key}' cannot need itself")
        elif need not in ids:
            add(join(join(path, "needs"), i), f"unknown task '{need}'{did_you_mean(need, ids)}")
    if task.writes:
        _check_globs(join(path, "writes"), task.writes, add)
        _check_protected(join(path, "writes"), task.writes, add)
    if task.reads:
        _check_globs(join(path, "reads"), task.reads, add)
    if task.output_file is not None:
        problem = path_problem(task.output_file)
        if problem:
            add(join(path, "output"), problem)
    if task.verify is not None:
        _check_command(join(path, "verify"), task.verify, add)
    low, high = TIMEOUT_RANGE
    if task.timeout_s is not None and not low <= task.timeout_s <= high:
        add(join(path, "timeout"), f"must be between 1s and 7d, got {task.timeout_s:g} seconds")
    if not (type(task.retries) is int and 0 <= task.retries <= RETRIES_MAX):
        _int_in(join(path, "retries"), task.retries, 0, RETRIES_MAX, add)
    if task.estimate_s is not None and not 0 <= task.estimate_s < math.inf:
        add(join(path, "estimate"), f"must be a duration of 0s or more, got {task.estimate_s}")
    if task.env:
        _check_env(join(path, "env"), task.env, add)


def _id_problem(task_id: str) -> str | None:
    if TASK_ID_RE.fullmatch(task_id) and len(task_id) <= TASK_ID_MAX:
        return None
    if len(task_id) > TASK_ID_MAX:
        return f"task ids are at most {TASK_ID_MAX} characters"
    hint = re.sub(r"[^a-z0-9_-]+", "-", task_id.lower()).strip("-_") or "task-1"
    why = "it becomes part of a git branch name, plait/<run>/<id>"
    if ".." in task_id or task_id.endswith(".lock"):
        why += ", where '..' and a '.lock' ending are not allowed"
    return (
        f"'{task_id}' is not a valid task id: use lowercase letters, digits, '-' and '_', "
        f"starting with a letter or digit ({why}); e.g. '{hint}'"
    )


def _check_agent_ref(path: str, name: str, known: set[str], add: Add) -> None:
    if not name:
        add(path, "no agent: name one here or set `defaults.agent`")
    elif name not in known:
        add(
            path,
            f"unknown agent '{name}'{did_you_mean(name, known, '.')} Define it under `agents:`, "
            f"or in .plait/agents/{name}.md or .claude/agents/{name}.md",
        )


def _check_prompt(path: str, prompt: str, ids: set[str], self_id: str | None, add: Add) -> None:
    if not prompt.strip():
        add(path, "the prompt is empty; tell the agent what to do")
        return
    if "\x00" in prompt:
        add(path, "the prompt contains a NUL byte; prompts are text")
        return
    try:
        # Template syntax always has a brace ({{, {%, {#): most prompts skip the parse.
        refs = prompt_refs(prompt)
    except template_problem() as exc:
        at = f" (line {exc.line} of the prompt)" if exc.line and exc.line > 1 else ""
        add(path, f"{exc}{at}")
        return
    for ref in sorted(refs):
        if ref == self_id:
            add(path, f"refers to its own result (tasks.{ref}); a task cannot use its own output")
        elif ref not in ids:
            add(path, f"refers to unknown task '{ref}' (tasks.{ref}){did_you_mean(ref, ids)}")


def check_agent(path: str, name: str, agent: Agent, add: Add, *, internal_ok: bool = False) -> None:
    """Rules for one agent: a valid name, a known backend, a usable command."""
    if not AGENT_NAME_RE.fullmatch(name):
        add(path, f"'{name}' is not a valid agent name: use letters, digits, '.', '-' and '_'")
    if internal_ok and agent.backend in INTERNAL_BACKENDS:
        pass
    elif agent.backend not in BACKENDS:
        known = ", ".join(BACKENDS)
        add(
            join(path, "backend"),
            f"unknown backend '{agent.backend}'{did_you_mean(agent.backend, BACKENDS, '.')}"
            f" Known backends: {known}",
        )
    if agent.backend == "command" and not agent.command:
        add(
            join(path, "command"),
            'the command backend needs `command`: an argv list such as ["python3", "agent.py"]',
        )
    elif agent.command is not None:
        _check_command(join(path, "command"), agent.command, add)
    if agent.backend == "python" and agent.function is None:
        add(
            join(path, "backend"),
            "the python backend runs a Python callable: use it from the library API "
            "(Agent(backend='python', function=...)), not in a plan file",
        )
    _check_env(join(path, "env"), agent.env, add)


def _check_command(path: str, command: Command, add: Add) -> None:
    if not command or not command[0]:
        add(path, 'is an empty command; give an argv list such as ["pytest", "-q"]')
    elif any("\x00" in arg for arg in command):
        add(path, "contains a NUL byte")


_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_SEPARATOR = re.compile(r"[\\/]")


def path_problem(path: str) -> str | None:
    """Why `path` (a glob, or a plain path such as `output`) does not name a place
    inside the repository outside .git/, or None."""
    if not path.strip():
        return "is empty"
    if "\x00" in path:
        return "contains a NUL byte"
    if path.startswith(("/", "\\", "~")) or _DRIVE.match(path):
        relative = _DRIVE.sub("", path, count=1).lstrip("/\\~") or "**"
        return f"'{path}' is absolute; write it from the repository root, e.g. '{relative}'"
    parts = _SEPARATOR.split(path)
    if ".." in parts:
        return f"'{path}' uses '..'; paths and globs must stay inside the repository"
    if any(part.lower() == ".git" for part in parts):
        return f"'{path}' points into .git/, which no task may touch"
    if "." in parts:
        return f"'{path}' has a '.' segment; write it from the repository root, without './'"
    return None


# A '[' whose set never ends: ']' right after '[' or '[!' is a member, not the end.
_UNCLOSED = re.compile(r"(?<!\\)\[[!^]?\]?[^\]]*$")
# A backslash before a character that needs no escaping: a Windows path (`src\api`),
# which pathspec reads as `srcapi`.
_PLAIN_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*(\\[^*?\[\]\\!# ])")
# Only a set or an escape can make pathspec refuse a pattern or discard it.
_NEEDS_COMPILE = re.compile(r"[\[\\]")


def glob_problem(glob: str) -> str | None:
    """Why `glob` is not a valid repository-relative glob that can match a path, or None.

    A leading '!' (an exclusion) is judged by the glob after it. A glob with a `[` set
    or a `\\` escape is compiled as the run compiles scopes (`plait.scope.compile_scope`),
    so one that would fail there, or that git would discard, is refused here.
    """
    body = glob[1:] if glob.startswith("!") else glob
    if glob == "!":
        return "'!' alone excludes nothing; write '!<glob>'"
    problem = path_problem(body)
    if problem is None and _NEEDS_COMPILE.search(body):
        problem = _compile_problem(glob, body)
    if problem is None and (plain := _PLAIN_ESCAPE.search(body)):
        problem = (
            f"'{glob}': '\\' escapes the next character in a glob ('{plain.group(1)}' means "
            f"'{plain.group(1)[1]}'); separate folders with '/'"
        )
    return problem


def _compile_problem(glob: str, body: str) -> str | None:
    from pathspec.patterns.gitignore.base import GitIgnorePatternError

    from plait.scope import compile_scope  # pathspec: only for globs with a set or escape

    literal = "write '\\[' for a literal '['"
    try:
        spec = compile_scope([glob])
    except re.error as exc:
        if "bad character range" in str(exc.msg):
            return (
                f"'{glob}' has a character range written backwards ({exc.msg}); "
                "write the lower character first, e.g. '[a-z]'"
            )
        return f"'{glob}' is not a valid glob ({exc.msg}); {literal}"
    except GitIgnorePatternError:
        if (len(body) - len(body.rstrip("\\"))) % 2:
            return (
                f"'{glob}' ends with a '\\' that escapes nothing; write '/' between "
                "folders, or '\\\\' for a literal backslash"
            )
        return f"'{glob}' is not a valid glob"
    if all(pattern.regex is None for pattern in spec.patterns):
        if _UNCLOSED.search(body):
            why = "has a '[' that is never closed (a ']' just after '[' or '[!' is in the set)"
        else:  # a set across folders: `[/]` can never match one character of a name
            why = "has a '[...]' set with a '/' in it, which no name can match"
        # git discards such a pattern, and so does the run's matcher.
        return f"'{glob}' {why}, so it matches no path; {literal}"
    return None


def _check_globs(path: str, globs: Iterable[str], add: Add, *, negatable: bool = True) -> None:
    """Each glob of a list field; a '!' glob only narrows the globs listed before it."""
    positive = False
    for i, glob in enumerate(globs):
        problem = glob_problem(glob)
        if problem is None and glob.startswith("!"):
            if not negatable:
                problem = (
                    f"'{glob}': a '!' exclusion is not available here; these globs only add paths"
                )
            elif not positive:
                problem = (
                    f"'{glob}' removes paths from the globs listed before it, and there are "
                    f"none, so it matches nothing; list it after the glob it narrows"
                )
        elif not glob.startswith("!"):
            positive = True
        if problem:
            add(join(path, i), problem)


def _check_protected(path: str, globs: Iterable[str], add: Add) -> None:
    """A `writes` glob that covers only paths no agent may change (`.claude/agents/**`):
    every attempt that used it would fail, so the plan says so now."""
    from plait.scope import protected_reason  # (pathspec with it: only for plans with writes)

    for i, glob in enumerate(globs):
        if glob.startswith("!"):
            continue
        if any(c in glob for c in "*?["):
            # Every path it matches lies in these folders.
            prefix = "/".join(literal_prefix(glob))
            reason = protected_reason(prefix + "/name") if prefix else None
        else:
            reason = protected_reason(glob)
        if reason is not None:
            add(
                join(path, i),
                f"'{glob}' covers only {reason}, which no agent may change whatever its "
                "writes say: plait fails every attempt that does",
            )


def _int_in(path: str, value: int, low: int, high: int, add: Add) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        add(path, f"expected a whole number, got {describe(value)}")
    elif not low <= value <= high:
        add(path, f"must be between {low} and {high}, got {value}")


def _check_env(path: str, env: Any, add: Add) -> None:
    for key, value in env.items():
        if not ENV_NAME_RE.fullmatch(key):
            add(join(path, key), f"'{key}' is not a valid environment variable name")
        elif key.startswith("PLAIT_"):
            add(join(path, key), "PLAIT_* variables are set by plait itself")
        elif "\x00" in value:
            add(join(path, key), "contains a NUL byte")
