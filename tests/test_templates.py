"""Prompt templates: references found without rendering, and rendering's errors."""

from __future__ import annotations

import pytest

from plait.templates import TemplateProblem, render, template_refs


def test_render_fills_references() -> None:
    context = {"tasks": {"api": {"output": "docs/api.md"}}, "run": {"id": "r1"}}
    assert render("see {{ tasks.api.output }} ({{ run.id }})\n", context) == (
        "see docs/api.md (r1)\n"
    )


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
