"""Prompt templates: Jinja2's sandbox with strict undefined.

A prompt may refer to another task's result (`{{ tasks.contract.output }}`), to
`run.id` and to `plan.name`. Those references are also graph edges, so this
module both finds them (without rendering) and renders them. Finding them also
checks every name against what rendering provides (`CONTEXT`), so a prompt that
could only fail at run time is refused when the plan is read.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from plait.model import TASK_ATTRIBUTES

if TYPE_CHECKING:
    from jinja2 import Template, nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The names a prompt is rendered with (`plait.attempt.render_prompt` gives exactly
#: these), each with its fixed attributes; `tasks` holds one entry per task id, each
#: with TASK_ATTRIBUTES.
CONTEXT: dict[str, tuple[str, ...]] = {"tasks": (), "run": ("id",), "plan": ("name",)}
_EXAMPLES = "{{ tasks.<id>.output }}, {{ run.id }}, {{ plan.name }}"
_RAW_HINT = (
    "for literal {{ }} text (a GitHub Actions expression, say), wrap it in {% raw %}...{% endraw %}"
)
# `tasks.<id>` and the '-'-joined words after it, as the prompt spells them.
_HYPHENATED = r"tasks\.({first}(?:-[A-Za-z0-9_]+)+)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)"


@functools.cache
def _env() -> ImmutableSandboxedEnvironment:
    # Jinja is imported on the first templated prompt: most plans have none.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_as_text,
    )


def _as_text(value: object) -> object:
    """How `{{ ... }}` prints a value: a list (`changed_files`) as its items joined by
    ", " rather than Python's `['a.py', 'b.py']`; `| join("\n")` still picks another way."""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return value


class TemplateProblem(ValueError):
    """A prompt is not a valid template, or does not render (an undefined name, a
    sandbox refusal). `line` is 1-based within the prompt, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _refs(tree: nodes.Template) -> list[tuple[str, str | None]]:
    """(task id, attribute or None) for every `tasks.X` / `tasks['X']` in the tree."""
    from jinja2 import nodes  # already loaded: the tree came from Jinja

    found: list[tuple[str, str | None]] = []

    def is_tasks(node: nodes.Node) -> bool:
        return isinstance(node, nodes.Name) and node.name == "tasks"

    def task_of(node: nodes.Node) -> str | None:
        if isinstance(node, nodes.Getattr) and is_tasks(node.node):
            return node.attr
        if (
            isinstance(node, nodes.Getitem)
            and is_tasks(node.node)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            return node.arg.value
        return None

    seen_inner: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        inner = getattr(node, "node", None)
        task = task_of(inner) if inner is not None else None
        if task is not None:
            attr = node.attr if isinstance(node, nodes.Getattr) else None
            found.append((task, attr))
            seen_inner.add(id(inner))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        task = task_of(node)
        if task is not None and id(node) not in seen_inner:
            found.append((task, None))
    return found


def parse(prompt: str) -> nodes.Template:
    from jinja2 import TemplateSyntaxError  # only a templated prompt gets here

    try:
        return _env().parse(prompt)
    except TemplateSyntaxError as exc:
        # Shell text ({#, ${#arr[@]}, {{ in a GitHub expression) is the usual cause.
        raise TemplateProblem(
            f"template syntax error: {exc.message}; {_RAW_HINT}", exc.lineno
        ) from exc


def template_refs(prompt: str) -> dict[str, set[str]]:
    """Task ids a prompt refers to, each with the attributes it reads.

    Raises TemplateProblem for a syntax error or an unknown attribute.
    """
    if "{" not in prompt:
        return {}  # no template syntax at all: the common case, and free
    return {task: set(attrs) for task, attrs in _cached_refs(prompt).items()}


@functools.lru_cache(maxsize=4096)
def _cached_refs(prompt: str) -> dict[str, frozenset[str]]:
    # Validation and analysis both ask about the same prompts; parse each once.
    tree = parse(prompt)
    _check_names(tree, prompt)
    refs: dict[str, set[str]] = {}
    for task, attr in _refs(tree):
        attrs = refs.setdefault(task, set())
        if attr is not None:
            if attr not in TASK_ATTRIBUTES:
                raise TemplateProblem(
                    f"tasks.{task}.{attr} is not available; use one of "
                    + ", ".join(f"tasks.{task}.{a}" for a in TASK_ATTRIBUTES)
                )
            attrs.add(attr)
    return {task: frozenset(attrs) for task, attrs in refs.items()}


def _check_names(tree: nodes.Template, prompt: str) -> None:
    """Raise TemplateProblem for a name or attribute rendering would not find."""
    from jinja2 import meta, nodes

    _check_unsafe(tree)
    # `tasks.oauth-service.output` is `tasks.oauth - service.output` to Jinja: say so
    # first, or the complaint would be about an unknown `service`.
    for sub in tree.find_all(nodes.Sub):
        left = sub.left
        if (
            isinstance(left, nodes.Getattr)
            and isinstance(left.node, nodes.Name)
            and left.node.name == "tasks"
        ):
            raise TemplateProblem(_hyphen_message(left.attr, prompt), sub.lineno)
    # Names the template sets itself ({% set %}, loop variables) are not undeclared.
    free = meta.find_undeclared_variables(tree)
    for name in sorted(free - CONTEXT.keys()):
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == name), None)
        close = difflib.get_close_matches(name, CONTEXT, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise TemplateProblem(
            f"'{name}' is not defined in a prompt template; {hint}the names are "
            f"{', '.join(CONTEXT)} ({_EXAMPLES}); {_RAW_HINT}",
            line,
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        owner = getattr(node, "node", None)
        if not (isinstance(owner, nodes.Name) and owner.name in free and CONTEXT.get(owner.name)):
            continue
        if isinstance(node, nodes.Getattr):
            attr: object = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            attr = node.arg.value
        else:
            continue  # computed at render time: nothing to tell now
        known = CONTEXT[owner.name]
        if attr not in known:
            raise TemplateProblem(
                f"{owner.name}.{attr} is not available; use "
                + ", ".join(f"{owner.name}.{a}" for a in known),
                node.lineno,
            )


def _check_unsafe(tree: nodes.Template) -> None:
    """Refuse now what the sandbox would refuse, or could not do, only at run time."""
    from jinja2 import nodes

    for stmt in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise TemplateProblem(
            "a prompt template cannot include, import or extend other templates; "
            "put the text in the prompt itself",
            stmt.lineno,
        )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            name: object = node.attr
        elif isinstance(node, nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, nodes.Const) else None
            owner = node.node
            if name is None and isinstance(owner, nodes.Name) and owner.name == "tasks":
                raise TemplateProblem(
                    "tasks[...] needs the task id written out, as in tasks['api'] "
                    "(plait reads it to run that task first)",
                    node.lineno,
                )
        elif isinstance(node, nodes.Filter):
            first = node.args[0] if node.name == "attr" and node.args else None
            name = first.value if isinstance(first, nodes.Const) else None
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateProblem(
                f"'{name}' cannot be read in a prompt template (names starting with '_' "
                "are Python internals, which the sandbox refuses)",
                node.lineno,
            )


def _hyphen_message(first: str, prompt: str) -> str:
    spelled = re.search(_HYPHENATED.format(first=re.escape(first)), prompt)
    task, rest = (spelled.group(1), spelled.group(2)) if spelled else (f"{first}-...", "")
    return (
        f"write tasks['{task}']{rest} (a task id with '-' is not a name in a template: "
        f"Jinja reads tasks.{task}{rest} as tasks.{first} - {task[len(first) + 1 :]}{rest})"
    )


def render(prompt: str, context: Mapping[str, Any]) -> str:
    """Render a prompt in the sandbox; an undefined name is an error, not ''.

    Raises TemplateProblem, with Jinja's own message, for any of Jinja's errors, and
    for a Python error in an expression (`{{ 1/0 }}`, `{{ '%d' % text }}`): a prompt
    that cannot be rendered fails its task, never the run.
    """
    from jinja2 import TemplateError, TemplateSyntaxError  # only a templated prompt gets here

    try:
        return _compiled(prompt).render(context)
    except TemplateError as exc:
        line = exc.lineno if isinstance(exc, TemplateSyntaxError) else None
        raise TemplateProblem(str(exc), line) from exc
    except Exception as exc:  # the template's own arithmetic or formatting
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def _compiled(prompt: str) -> Template:
    # Retries and re-runs render the same prompt again: compile it once.
    return _env().from_string(prompt)
