"""Agents' text made safe to print: no terminal control sequence survives, the text does."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import Cli, write_plan, yaml_list
from gitrepo import GitRepo
from plait.textsafe import clean_line, clean_text, one_line

HOSTILE = [
    ("fatal: \x1b]0;PWNED\x07boom", "fatal: boom"),  # window title, ended by BEL
    ("\x1b[2J\x1b[Hcleared \x1b[31mred\x1b[0m", "cleared red"),  # clear, home, colour
    ("a \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ tail", "a link tail"),  # OSC 8, ESC \
    ("csi \x9b2J c1", "csi 2J c1"),  # the one-byte CSI is removed, its parameters are text
    ("\u202eevil\u202c text", "evil text"),  # right-to-left override
    ("hide\x1b[?25l cursor\x1bc reset", "hide cursor reset"),
    ("lone \x1b", "lone"),
    ("bell\x07 and nul\x00", "bell and nul"),
    ("progress 0%\rprogress 10%\rprogress 20%", "progress 20%"),  # a redrawn line
    ("crlf line\r", "crlf line"),
    ("tab\there", "tab here"),
    ("[/section] and [bold]x[/bold] :warning:", "[/section] and [bold]x[/bold] :warning:"),
]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_clean_line_keeps_the_text_and_drops_the_controls(raw: str, shown: str) -> None:
    assert clean_line(raw) == shown


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_one_line_and_clean_text_drop_them_too(raw: str, shown: str) -> None:
    for made in (one_line(raw), clean_text(raw)):
        assert "\x1b" not in made and "\x9b" not in made and "\u202e" not in made
        assert " ".join(made.split()) == " ".join(shown.split()) or shown in made


def test_clean_text_keeps_lines_and_indentation() -> None:
    assert (
        clean_text("plan.yaml:3:\n  tasks.a: \x1b[1mbad\x1b[0m\n")
        == "plan.yaml:3:\n  tasks.a: bad\n"
    )


def test_an_agents_hostile_error_neither_crashes_nor_reaches_the_terminal(
    repo: GitRepo, cli: Cli
) -> None:
    """An error with rich markup (`[/section]`) and escape codes: `run`, `status`,
    `report` and `runs` print it as text (markup made it a traceback before)."""
    noisy = "import sys; sys.stderr.write(sys.argv[1]); sys.exit(1)"
    error = "unexpected token [/section] in config \x1b]0;PWNED\x07\x1b[2Jgone"
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nname: 'x [/y] z'\nagents:\n"
        f"  a: {{backend: command, command: {yaml_list([sys.executable, '-c', noisy, error])}}}\n"
        "tasks:\n  t: {agent: a, prompt: go}\n",
    )
    ran = cli("run", cwd=repo.path)
    assert ran.code == 1, ran.err  # the task failed; plait did not crash
    for result in (ran, *(cli(c, cwd=repo.path) for c in ("status", "report", "runs"))):
        assert result.code in (0, 1), result.err
        assert "Traceback" not in result.err
        assert "\x1b" not in result.out + result.err
    assert "[/section]" in cli("status", cwd=repo.path).out
    assert "x [/y] z" in cli("runs", cwd=repo.path).out
    data = json.loads(cli("status", "--json", cwd=repo.path).out)
    assert data["tasks"][0]["status"] == "failed"
