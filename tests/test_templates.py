"""Prompt templates: references found without rendering, and rendering's errors."""

from __future__ import annotations

import json

import pytest

from conftest import Cli, write_plan
from gitrepo import GitRepo
from plait.templates import TemplateProblem, render, template_refs


def test_render_fills_references() -> None:
    context = {"tasks": {"api": {"output": "docs/api.md"}}, "run": {"id": "r1"}}
    assert render("see {{ tasks.api.output }} ({{ run.id }})\n", context) == (
        "see docs/api.md (r1)\n"
    )


def test_a_list_prints_as_its_items_not_as_python() -> None:
    context = {"tasks": {"a": {"changed_files": ["calc/op_sub.py", "docs/api.md"]}}}
    assert render("{{ tasks.a.changed_files }}", context) == "calc/op_sub.py, docs/api.md"
    joined = render("{{ tasks.a.changed_files | join('\\n') }}", context)
    assert joined == "calc/op_sub.py\ndocs/api.md"
    assert render("{{ tasks.a.changed_files | length }}", context) == "2"


def test_an_undefined_name_is_a_template_problem_with_jinjas_message() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render("{{ run.nope }}", {"run": {"id": "r1"}})
    assert str(caught.value) == "'dict object' has no attribute 'nope'"


def test_the_sandbox_refusing_is_a_template_problem() -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        render("{{ run.__class__.__mro__ }}", {"run": {"id": "r1"}})


def test_a_syntax_error_is_a_template_problem_with_its_line() -> None:
    with pytest.raises(TemplateProblem) as caught:
        render("fine\n{{ broken", {})
    assert caught.value.line == 2
    with pytest.raises(TemplateProblem) as parsed:
        template_refs("fine\n{% if %}")
    assert parsed.value.line == 2


def test_refs_need_no_rendering() -> None:
    assert template_refs("no template here") == {}
    assert template_refs("{{ tasks.a.output }} {{ tasks['b'] }}") == {"a": {"output"}, "b": set()}


# --- names and attributes are checked when the plan is read, not when the task runs ---


@pytest.mark.parametrize(
    ("prompt", "line", "fragments"),
    [
        ("{{ task.a.output }}", 1, ("'task' is not defined", "did you mean 'tasks'")),
        ("one\ntwo {{ foo }}", 2, ("'foo' is not defined", "tasks, run, plan")),
        (
            "Pass ${{ secrets.NPM_TOKEN }} to npm publish.",
            1,
            ("'secrets' is not defined", "{% raw %}"),
        ),
        ("{{ run.bogus }}", 1, ("run.bogus is not available", "run.id")),
        ("{{ plan['nope'] }}", 1, ("plan.nope is not available", "plan.name")),
    ],
)
def test_a_name_rendering_would_not_find_is_refused(
    prompt: str, line: int, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(TemplateProblem) as caught:
        template_refs(prompt)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert caught.value.line == line


def test_names_the_template_defines_or_jinja_provides_are_fine() -> None:
    prompt = (
        "{{ run.id }} {{ plan.name }} {{ run['id'] }}\n"
        "{% set n = 2 %}{% for i in range(n) %}{{ loop.index }}{{ i }}{% endfor %}\n"
        "{% raw %}${{ secrets.NPM_TOKEN }}{% endraw %}\n"
    )
    assert template_refs(prompt) == {}
    context = {"tasks": {}, "run": {"id": "r1"}, "plan": {"name": "p"}}
    assert "${{ secrets.NPM_TOKEN }}" in render(prompt, context)


@pytest.mark.parametrize(
    ("prompt", "advice"),
    [
        ("{{ tasks.oauth-service.output }}", "write tasks['oauth-service'].output"),
        ("x\n{{ tasks.a-b-c.commit }}", "write tasks['a-b-c'].commit"),
        ("{{ tasks.step-2 }}", "write tasks['step-2']"),
    ],
)
def test_a_hyphenated_task_id_as_a_name_says_how_to_write_it(prompt: str, advice: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        template_refs(prompt)
    assert advice in str(caught.value)
    assert "unknown" not in str(caught.value)  # not "unknown task 'oauth'"
    assert caught.value.line == prompt.count("\n") + 1


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [
        ("{{ ''.__class__.__mro__ }}", "cannot be read in a prompt template"),
        ("{{ cycler.__init__.__globals__ }}", "cannot be read in a prompt template"),
        ("{{ tasks.x.output | attr('__class__') }}", "'__class__' cannot be read"),
        ("{{ run['_x'] }}", "'_x' cannot be read"),
        ("{% set id = 'x' %}{{ tasks[id].output }}", "needs the task id written out"),
        ("{% include 'other.md' %}", "cannot include, import or extend"),
        ("{% import 'macros' as m %}", "cannot include, import or extend"),
        ("{% extends 'base' %}", "cannot include, import or extend"),
    ],
)
def test_what_the_sandbox_would_refuse_at_run_time_is_refused_with_the_plan(
    prompt: str, fragment: str
) -> None:
    """Before, these passed `plait plan` and failed their task mid-run (or, include and
    import, crashed the run: the sandbox has no loader)."""
    with pytest.raises(TemplateProblem) as caught:
        template_refs(prompt)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("prompt", "fragment"),
    [("{{ 1/0 }}", "ZeroDivisionError"), ("{{ '%d' % run.id }}", "TypeError")],
)
def test_a_python_error_while_rendering_is_a_template_problem(prompt: str, fragment: str) -> None:
    """Not a traceback that ends the whole run (and again on every resume)."""
    with pytest.raises(TemplateProblem, match=fragment):
        render(prompt, {"run": {"id": "r1"}})


def test_a_python_error_while_rendering_fails_only_its_task(repo: GitRepo, cli: Cli) -> None:
    plan = (
        "version: 1\nisolation: none\nagents:\n"
        "  echo: {backend: command, command: [sh, -c, cat]}\n"
        "tasks:\n"
        "  x: {agent: echo, prompt: hello}\n"
        "  y: {agent: echo, prompt: \"{{ '%d' % tasks.x.output }}\"}\n"
        "  z: {agent: echo, prompt: fine}\n"
    )
    write_plan(repo.path / "plait.yaml", plan)
    ran = cli("run", "--json", cwd=repo.path)
    assert ran.code == 1, ran.err
    tasks = {t["id"]: t for t in json.loads(ran.out)["tasks"]}
    assert tasks["y"]["status"] == "errored" and "TypeError" in tasks["y"]["error"], tasks["y"]
    assert tasks["x"]["status"] == tasks["z"]["status"] == "succeeded"


def test_shell_text_that_breaks_the_template_syntax_suggests_raw() -> None:
    with pytest.raises(TemplateProblem) as caught:
        template_refs("Fix `for ((i=0; i<${#arr[@]}; i++))` in run.sh")
    assert "{% raw %}" in str(caught.value)


def test_a_hyphenated_task_id_by_subscript_is_an_edge_and_renders(repo: GitRepo, cli: Cli) -> None:
    # `oauth` exists too: the name form would have made a wrong edge to it.
    plan = (
        "version: 1\nisolation: none\nagents:\n"
        "  echo: {backend: command, command: [sh, -c, cat]}\n"
        "tasks:\n"
        "  oauth: {agent: echo, prompt: WRONG}\n"
        "  oauth-service: {agent: echo, prompt: SECRET-42}\n"
        "  c: {agent: echo, prompt: \"got {{ tasks['oauth-service'].output }}\"}\n"
    )
    write_plan(repo.path / "plait.yaml", plan)
    shown = cli("plan", "--json", cwd=repo.path)
    assert shown.code == 0, shown.err
    edges = {(e["from"], e["to"], e["reason"]) for e in json.loads(shown.out)["edges"]}
    assert edges == {("oauth-service", "c", "template")}
    ran = cli("run", "--json", cwd=repo.path)
    assert ran.code == 0, ran.err
    outputs = {t["id"]: t["output"] for t in json.loads(ran.out)["tasks"]}
    assert outputs["c"] == "got SECRET-42"
