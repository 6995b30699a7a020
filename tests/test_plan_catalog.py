"""A catalog of broken plans: each is refused with the field path, the line, a useful
message, exit code 2, and nothing written anywhere.

Each case's text marks the line the problem must be reported on with a `#<`
comment; cases without a marker name the line explicitly.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from conftest import PlaitProc
from gitrepo import GitRepo
from plait.errors import PlanError
from plait.planfile import MAX_PLAN_BYTES, load_plan

HEAD = """\
version: 1
agents:
  dev:
    backend: command
    command: ["python3", "agent.py"]
"""


def plan(tasks: str, top: str = "", head: str = HEAD) -> str:
    """A plan with the `dev` agent, `top` lines first and `tasks` under `tasks:`."""
    return top + head + "tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "  ")


OK_TASK = "ok:\n  agent: dev\n  prompt: fine\n"

BOMB = (
    "version: 1\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]  #<\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "tasks: {}\n"
)

# (id, plan text or bytes, field path ("" for the document), line or None for the
# `#<` marker, a fragment the message must contain)
CASES: list[tuple[str, str | bytes, str, int | None, str]] = [
    ("yaml-syntax", plan("a:\n  agent: dev\n  prompt: [unclosed\n"), "", 10, "not valid YAML"),
    ("yaml-tab", plan("a:\n  agent: dev\n") + "\tprompt: x\n", "", 9, "a tab indents"),
    (
        "yaml-unclosed-quote",  # where the quote opens, not the end of the file
        plan('a:\n  agent: dev\n  prompt: "never closed  #<\n' + OK_TASK),
        "",
        None,
        "quoted scalar",
    ),
    ("yaml-two-documents", plan(OK_TASK) + "---\nversion: 1\n", "", 10, "single document"),
    ("top-not-mapping", "- version: 1\n- tasks: {}\n", "", 1, "YAML mapping"),
    ("empty-file", "# nothing here\n", "", 1, "holds nothing"),
    ("too-big", "#" * (MAX_PLAN_BYTES + 10) + "\n", "", 1, "capped at"),
    ("not-utf8", b"version: 1\nname: caf\xe9\ntasks: {}\n", "", 2, "not UTF-8"),
    ("nul-in-file", plan(OK_TASK) + "name: a\x00b\n", "", 10, "not allowed"),
    ("unknown-top-key", plan(OK_TASK, top="taks: {}  #<\n"), "taks", None, "did you mean 'tasks'"),
    (
        "unknown-task-key",
        plan("a:\n  agent: dev\n  prompt: x\n  need: [ok]  #<\n" + OK_TASK),
        "tasks.a.need",
        None,
        "did you mean 'needs'",
    ),
    (
        "unknown-agent-key",
        plan(OK_TASK, head=HEAD + "    modle: opus  #<\n"),
        "agents.dev.modle",
        None,
        "did you mean 'model'",
    ),
    (
        "unknown-defaults-key",
        plan(OK_TASK, top="defaults:\n  timout: 5m  #<\n"),
        "defaults.timout",
        None,
        "did you mean 'timeout'",
    ),
    (
        "missing-prompt",
        plan("a:  #<\n  agent: dev\n  writes: [x]\n"),
        "tasks.a.prompt",
        None,
        "needs a prompt",
    ),
    (
        "prompt-and-prompt-file",
        plan("a:\n  agent: dev\n  prompt: x\n  prompt_file: p.md  #<\n"),
        "tasks.a.prompt_file",
        None,
        "not both",
    ),
    (
        "missing-prompt-file",
        plan("a:\n  agent: dev\n  prompt_file: nowhere.md  #<\n"),
        "tasks.a.prompt_file",
        None,
        "not found",
    ),
    (
        "empty-prompt",
        plan("a:\n  agent: dev\n  prompt: '   '  #<\n"),
        "tasks.a.prompt",
        None,
        "empty",
    ),
    (
        "nul-in-prompt",
        plan('a:\n  agent: dev\n  prompt: "x\\0y"  #<\n'),
        "tasks.a.prompt",
        None,
        "NUL",
    ),
    (
        "unknown-need",
        plan("a:\n  agent: dev\n  prompt: x\n  needs: [okk]  #<\n" + OK_TASK),
        "tasks.a.needs[0]",
        None,
        "did you mean 'ok'",
    ),
    (
        "unknown-need-string",
        plan("a:\n  agent: dev\n  prompt: x\n  needs: nope  #<\n"),
        "tasks.a.needs[0]",
        None,
        "unknown task 'nope'",
    ),
    (
        "self-need",
        plan("a:\n  agent: dev\n  prompt: x\n  needs: [a]  #<\n"),
        "tasks.a.needs[0]",
        None,
        "cannot need itself",
    ),
    (
        "glob-dotdot",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['src/../etc/**']  #<\n"),
        "tasks.a.writes[0]",
        None,
        "'..'",
    ),
    (
        "glob-absolute",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['/etc/passwd']  #<\n"),
        "tasks.a.writes[0]",
        None,
        "absolute",
    ),
    (
        "glob-home",
        plan("a:\n  agent: dev\n  prompt: x\n  reads: ['~/.ssh/*']  #<\n"),
        "tasks.a.reads[0]",
        None,
        "absolute",
    ),
    (
        "glob-git-dir",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: [src/x, .git/hooks/*]  #<\n"),
        "tasks.a.writes[1]",
        None,
        ".git/",
    ),
    (
        "glob-git-itself",
        plan("a:\n  agent: dev\n  prompt: x\n  reads: ['.git']  #<\n"),
        "tasks.a.reads[0]",
        None,
        ".git/",
    ),
    ("copy-dotdot", plan(OK_TASK, top="copy: ['../secrets/.env']  #<\n"), "copy[0]", None, "'..'"),
    (
        "output-absolute",
        plan("a:\n  agent: dev\n  prompt: x\n  output: /tmp/out.txt  #<\n"),
        "tasks.a.output",
        None,
        "absolute",
    ),
    (
        "defaults-bad-glob",
        plan(OK_TASK, top="defaults:\n  writes: ['/abs']  #<\n"),
        "defaults.writes[0]",
        None,
        "absolute",
    ),
    (
        "bad-duration",
        plan("a:\n  agent: dev\n  prompt: x\n  timeout: 5 minutes  #<\n"),
        "tasks.a.timeout",
        None,
        "90s, 30m",
    ),
    (
        "duration-bool",
        plan("a:\n  agent: dev\n  prompt: x\n  estimate: true  #<\n"),
        "tasks.a.estimate",
        None,
        "duration",
    ),
    (
        "timeout-too-long",
        plan("a:\n  agent: dev\n  prompt: x\n  timeout: 8d  #<\n"),
        "tasks.a.timeout",
        None,
        "between 1s and 7d",
    ),
    (
        "timeout-zero",
        plan("a:\n  agent: dev\n  prompt: x\n  timeout: 0  #<\n"),
        "tasks.a.timeout",
        None,
        "between 1s and 7d",
    ),
    (
        "duplicate-key",
        plan("a:\n  agent: dev\n  prompt: x\n  prompt: y  #<\n"),
        "tasks.a.prompt",
        None,
        "duplicate key 'prompt' (first given on line 9)",
    ),
    (
        "duplicate-task",
        plan(OK_TASK + "ok:  #<\n  agent: dev\n  prompt: again\n"),
        "tasks.ok",
        None,
        "duplicate key 'ok'",
    ),
    (
        "custom-tag",
        plan("a:\n  agent: dev\n  prompt: !shout hello  #<\n"),
        "tasks.a.prompt",
        None,
        "tag !shout",
    ),
    (
        "python-tag",
        plan(OK_TASK, top="name: !!python/object/apply:os.system ['touch pwned']  #<\n"),
        "name",
        None,
        "!!python/object/apply:os.system",
    ),
    ("binary-tag", plan(OK_TASK, top="name: !!binary aGVsbG8=  #<\n"), "name", None, "!!binary"),
    ("alias-bomb", BOMB, "b[0]", None, "aliases"),
    ("merge-key", plan("a:\n  <<: {agent: dev}  #<\n  prompt: x\n"), "tasks.a", None, "merge keys"),
    (
        "deep-nesting",
        plan(OK_TASK, top="name: " + "[" * 40 + "]" * 40 + "  #<\n"),
        "name" + "[0]" * 32,
        None,
        "nested more than",
    ),
    (
        "complex-key",
        plan(OK_TASK, top="? [a, b]  #<\n: x\n"),
        "",
        None,
        "mapping keys must be plain text",
    ),
    ("jobs-wrong-type", plan(OK_TASK, top="jobs: four  #<\n"), "jobs", None, "whole number"),
    ("jobs-zero", plan(OK_TASK, top="jobs: 0  #<\n"), "jobs", None, "between 1 and 256"),
    ("jobs-float", plan(OK_TASK, top="jobs: 2.5  #<\n"), "jobs", None, "whole number"),
    (
        "writes-string",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: src/**  #<\n"),
        "tasks.a.writes",
        None,
        "expected a list",
    ),
    (
        "needs-number",
        plan("a:\n  agent: dev\n  prompt: x\n  needs: 3  #<\n"),
        "tasks.a.needs",
        None,
        "expected a list",
    ),
    (
        "prompt-list",
        plan("a:\n  agent: dev\n  prompt: [do, it]  #<\n"),
        "tasks.a.prompt",
        None,
        "expected text",
    ),
    ("task-not-mapping", plan("a: just do it  #<\n"), "tasks.a", None, "expected a mapping"),
    (
        "tasks-empty",
        plan("{}\n").replace("tasks:\n  {}", "tasks: {}  #<"),
        "tasks",
        None,
        "at least one task",
    ),
    (
        "id-uppercase",
        plan("Login:  #<\n  agent: dev\n  prompt: x\n"),
        "tasks.Login",
        None,
        "e.g. 'login'",
    ),
    ("id-dotdot", plan("a..b:  #<\n  agent: dev\n  prompt: x\n"), "tasks.a..b", None, "'..'"),
    ("id-lock", plan("x.lock:  #<\n  agent: dev\n  prompt: x\n"), "tasks.x.lock", None, ".lock"),
    (
        "id-too-long",
        plan("a" * 101 + ":  #<\n  agent: dev\n  prompt: x\n"),
        "tasks." + "a" * 101,
        None,
        "at most 100",
    ),
    (
        "unknown-backend",
        plan(OK_TASK, head=HEAD.replace("backend: command", "backend: codx  #<")),
        "agents.dev.backend",
        None,
        "did you mean 'codex'",
    ),
    (
        "command-not-list",
        plan(OK_TASK, head=HEAD.replace('["python3", "agent.py"]', "python3 agent.py  #<")),
        "agents.dev.command",
        None,
        "argv list",
    ),
    (
        "command-backend-without-command",
        plan(
            OK_TASK,
            head=HEAD.replace('    command: ["python3", "agent.py"]\n', "").replace(
                "  dev:", "  dev:  #<"
            ),
        ),
        "agents.dev.command",
        None,
        "needs `command`",
    ),
    (
        "command-empty",
        plan(OK_TASK, head=HEAD.replace('["python3", "agent.py"]', "[]  #<")),
        "agents.dev.command",
        None,
        "needs `command`",
    ),
    (
        "python-backend-in-file",
        plan(OK_TASK, head=HEAD.replace("backend: command", "backend: python  #<")),
        "agents.dev.backend",
        None,
        "library API",
    ),
    (
        "unknown-agent",
        plan("a:\n  agent: dve  #<\n  prompt: x\n"),
        "tasks.a.agent",
        None,
        "did you mean 'dev'",
    ),
    ("no-agent", plan("a:  #<\n  prompt: x\n"), "tasks.a.agent", None, "defaults.agent"),
    (
        "template-syntax",
        plan("a:\n  agent: dev\n  prompt: 'Use {{ tasks.ok.output'  #<\n" + OK_TASK),
        "tasks.a.prompt",
        None,
        "template syntax error",
    ),
    (
        "template-unknown-task",
        plan("a:\n  agent: dev\n  prompt: 'Use {{ tasks.okay.output }}'  #<\n" + OK_TASK),
        "tasks.a.prompt",
        None,
        "unknown task 'okay'",
    ),
    (
        "template-unknown-attribute",
        plan("a:\n  agent: dev\n  prompt: 'Use {{ tasks.ok.outptu }}'  #<\n" + OK_TASK),
        "tasks.a.prompt",
        None,
        "tasks.ok.output",
    ),
    (
        "template-self",
        plan("a:\n  agent: dev\n  prompt: 'Again: {{ tasks.a.output }}'  #<\n"),
        "tasks.a.prompt",
        None,
        "its own result",
    ),
    (
        "retries-high",
        plan("a:\n  agent: dev\n  prompt: x\n  retries: 11  #<\n"),
        "tasks.a.retries",
        None,
        "between 0 and 10",
    ),
    (
        "retries-negative",
        plan("a:\n  agent: dev\n  prompt: x\n  retries: -1  #<\n"),
        "tasks.a.retries",
        None,
        "between 0 and 10",
    ),
    (
        "reruns-high",
        plan(OK_TASK, top="max_conflict_reruns: 11  #<\n"),
        "max_conflict_reruns",
        None,
        "between 0 and 10",
    ),
    ("budget-zero", plan(OK_TASK, top="budget_usd: 0  #<\n"), "budget_usd", None, "more than 0"),
    (
        "version-2",
        plan(OK_TASK).replace("version: 1", "version: 2  #<"),
        "version",
        None,
        "version 2 is not supported",
    ),
    (
        "scope-literal",
        plan(OK_TASK, top="scope: strict  #<\n"),
        "scope",
        None,
        "'enforce' or 'warn'",
    ),
    ("verify-empty", plan(OK_TASK, top="verify: []  #<\n"), "verify", None, "empty command"),
    (
        "setup-blank-string",
        plan(OK_TASK, top="setup:\n  - '  '  #<\n"),
        "setup[0]",
        None,
        "empty command",
    ),
    (
        "env-bad-name",
        plan("a:\n  agent: dev\n  prompt: x\n  env:\n    MY-VAR: 1  #<\n"),
        "tasks.a.env.MY-VAR",
        None,
        "not a valid environment variable name",
    ),
    (
        "env-reserved",
        plan("a:\n  agent: dev\n  prompt: x\n  env:\n    PLAIT_TASK_ID: z  #<\n"),
        "tasks.a.env.PLAIT_TASK_ID",
        None,
        "set by plait itself",
    ),
    (
        "fixer-unknown-agent",
        plan(OK_TASK, top="on_verify_failure:\n  agent: fixr  #<\n  prompt: fix it\n"),
        "on_verify_failure.agent",
        None,
        "unknown agent 'fixr'",
    ),
    (
        "fixer-missing-prompt",
        plan(OK_TASK, top="on_verify_failure:  #<\n  agent: dev\n"),
        "on_verify_failure.prompt",
        None,
        "'prompt' is required",
    ),
    (
        "glob-reversed-range",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['[z-a]']  #<\n"),
        "tasks.a.writes[0]",
        None,
        "backwards",
    ),
    (
        "glob-trailing-backslash",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['z.txt\\']  #<\n"),
        "tasks.a.writes[0]",
        None,
        "escapes nothing",
    ),
    (
        "glob-unclosed-set",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: [src/x, '[']  #<\n"),
        "tasks.a.writes[1]",
        None,
        "never closed",
    ),
    (
        "glob-empty-set",
        plan("a:\n  agent: dev\n  prompt: x\n  reads: ['a[]']  #<\n"),
        "tasks.a.reads[0]",
        None,
        "matches no path",
    ),
    (
        "glob-windows-separator",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['src\\api\\**']  #<\n"),
        "tasks.a.writes[0]",
        None,
        "separate folders with '/'",
    ),
    (
        "glob-only-an-exclusion",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['!z.txt']  #<\n"),
        "tasks.a.writes[0]",
        None,
        "removes paths from the globs listed before it",
    ),
    (
        "glob-excluded-absolute",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: [src/**, '!/etc/x']  #<\n"),
        "tasks.a.writes[1]",
        None,
        "absolute",
    ),
    (
        "copy-bad-glob",
        plan(OK_TASK, top="copy: ['.env', 'conf/[z-a].ini']  #<\n"),
        "copy[1]",
        None,
        "backwards",
    ),
    (
        "copy-exclusion",
        plan(OK_TASK, top="copy: ['!.env']  #<\n"),
        "copy[0]",
        None,
        "not available here",
    ),
    (
        "template-unknown-name",
        plan("a:\n  agent: dev\n  prompt: '{{ task.ok.output }}'  #<\n" + OK_TASK),
        "tasks.a.prompt",
        None,
        "did you mean 'tasks'",
    ),
    (
        "template-github-actions",
        plan("a:\n  agent: dev\n  prompt: 'use ${{ secrets.NPM_TOKEN }}'  #<\n"),
        "tasks.a.prompt",
        None,
        "{% raw %}",
    ),
    (
        "template-run-attribute",
        plan("a:\n  agent: dev\n  prompt: '{{ run.bogus }}'  #<\n"),
        "tasks.a.prompt",
        None,
        "use run.id",
    ),
    (
        "template-hyphenated-id",
        plan(
            "oauth-service:\n  agent: dev\n  prompt: x\n"
            "b:\n  agent: dev\n  prompt: '{{ tasks.oauth-service.output }}'  #<\n"
        ),
        "tasks.b.prompt",
        None,
        "write tasks['oauth-service'].output",
    ),
    (
        "fixer-prompt-unknown-name",
        plan(OK_TASK, top="on_verify_failure:\n  agent: dev\n  prompt: '{{ foo }}'  #<\n"),
        "on_verify_failure.prompt",
        None,
        "'foo' is not defined",
    ),
    (
        "prompt-file-absolute",
        plan("a:\n  agent: dev\n  prompt_file: /etc/hostname  #<\n"),
        "tasks.a.prompt_file",
        None,
        "absolute",
    ),
    (
        "prompt-file-dotdot",
        plan("a:\n  agent: dev\n  prompt_file: ../../x.md  #<\n"),
        "tasks.a.prompt_file",
        None,
        "'..'",
    ),
    (
        "prompt-file-device",
        plan("a:\n  agent: dev\n  prompt_file: /dev/zero  #<\n"),
        "tasks.a.prompt_file",
        None,
        "read from the repository",
    ),
    (
        "task-id-of-the-fixer",
        plan(
            OK_TASK + "fix-verify:  #<\n  agent: dev\n  prompt: x\n",
            top="on_verify_failure:\n  agent: dev\n  prompt: fix it\n",
        ),
        "tasks.fix-verify",
        None,
        "on_verify_failure",
    ),
]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under root, with size and modification time."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            info = full.lstat()
            found[str(full.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


def marked_line(text: str | bytes) -> int:
    lines = text.decode("latin-1") if isinstance(text, bytes) else text
    hits = [i for i, line in enumerate(lines.splitlines(), start=1) if "#<" in line]
    assert len(hits) == 1, "a case needs exactly one #< marker or an explicit line"
    return hits[0]


def test_catalog_is_large_and_distinct() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("text", "path", "line", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_broken_plan_is_refused(
    tmp_path: Path, text: str | bytes, path: str, line: int | None, fragment: str
) -> None:
    plan_file = tmp_path / "project" / "plait.yaml"
    plan_file.parent.mkdir()
    if isinstance(text, bytes):
        plan_file.write_bytes(text)
    else:
        plan_file.write_text(text, encoding="utf-8")
    expected_line = line if line is not None else marked_line(text)
    before = snapshot(tmp_path)

    with pytest.raises(PlanError) as raised:
        load_plan(plan_file)

    assert snapshot(tmp_path) == before, "loading an invalid plan must write nothing"
    error = raised.value
    message = str(error)
    assert error.exit_code == 2
    assert error.file == str(plan_file)
    matching = [p for p in error.problems if p.path == path]
    assert matching, f"no problem at {path!r}; got:\n{message}"
    assert any(p.line == expected_line for p in matching), message
    assert any(fragment in p.message for p in matching), message
    # The rendered message names the file, the line and the field path.
    shown = f"{plan_file}:{expected_line}:"
    assert shown in message, message
    if path:
        assert f" {path}:" in message
    for raw in ("validation error", "Input should be", "pydantic", "For further information"):
        assert raw not in message, "pydantic's own dump must never reach the user"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = plan(
        "a:\n  agent: dev\n  prompt: x\n  need: [b]\n  writes: ['/abs']\n"
        "b:\n  agent: nobody\n  prompt: y\n  needs: [zzz]\n  timeout: soon\n"
    )
    plan_file = tmp_path / "plait.yaml"
    plan_file.write_text(text)
    with pytest.raises(PlanError) as raised:
        load_plan(plan_file)
    paths = [p.path for p in raised.value.problems]
    assert paths == [
        "tasks.a.need",
        "tasks.a.writes[0]",
        "tasks.b.agent",
        "tasks.b.needs[0]",
        "tasks.b.timeout",
    ]
    lines = [p.line for p in raised.value.problems]
    assert lines == sorted(lines)
    assert "invalid plan (5 problems)" in str(raised.value)


def test_a_type_error_does_not_hide_problems_elsewhere(tmp_path: Path) -> None:
    # jobs fails pydantic; the unknown need is found by the rules that run after it.
    text = plan("a:\n  agent: dev\n  prompt: x\n  needs: [nope]\n", top="jobs: many\n")
    plan_file = tmp_path / "plait.yaml"
    plan_file.write_text(text)
    with pytest.raises(PlanError) as raised:
        load_plan(plan_file)
    assert [p.path for p in raised.value.problems] == ["jobs", "tasks.a.needs[0]"]


def test_a_problem_in_defaults_is_reported_once_at_defaults(tmp_path: Path) -> None:
    text = plan(OK_TASK + "b:\n  agent: dev\n  prompt: y\n", top="defaults:\n  retries: 99\n")
    plan_file = tmp_path / "plait.yaml"
    plan_file.write_text(text)
    with pytest.raises(PlanError) as raised:
        load_plan(plan_file)
    assert [(p.path, p.line) for p in raised.value.problems] == [("defaults.retries", 2)]


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    plan_file = tmp_path / "plait.yaml"
    plan_file.write_text(BOMB)
    started = time.monotonic()
    with pytest.raises(PlanError):
        load_plan(plan_file)
    assert time.monotonic() - started < 5  # expanding it would take minutes and gigabytes


def test_a_missing_plan_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError) as raised:
        load_plan(tmp_path / "nope.yaml")
    assert "no such plan file" in str(raised.value)
    assert raised.value.exit_code == 2
    assert list(tmp_path.iterdir()) == []


# --- the real command line: `plait plan` and `plait run` both refuse, and write nothing ---

PROFILE_TYPO = "---\nbackend: comand\ncommand: [sh, agent.sh]\n---\nDo the task.\n"

# (id, plan text with a `#<` marker, extra files, field path, a fragment of the message)
CLI_CASES: list[tuple[str, str, dict[str, str], str, str]] = [
    (
        "reversed-range",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['[z-a]']  #<\n"),
        {},
        "tasks.a.writes[0]",
        "backwards",
    ),
    (
        "trailing-backslash",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['z.txt\\']  #<\n"),
        {},
        "tasks.a.writes[0]",
        "escapes nothing",
    ),
    (
        "unclosed-set",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['[']  #<\n"),
        {},
        "tasks.a.writes[0]",
        "never closed",
    ),
    (
        "only-an-exclusion",
        plan("a:\n  agent: dev\n  prompt: x\n  writes: ['!z.txt']  #<\n"),
        {},
        "tasks.a.writes[0]",
        "removes paths",
    ),
    (
        "github-actions-text",
        plan("a:\n  agent: dev\n  prompt: 'use ${{ secrets.NPM_TOKEN }}'  #<\n"),
        {},
        "tasks.a.prompt",
        "{% raw %}",
    ),
    (
        "hyphenated-id",
        plan(
            "oauth:\n  agent: dev\n  prompt: x\noauth-service:\n  agent: dev\n  prompt: x\n"
            "b:\n  agent: dev\n  prompt: '{{ tasks.oauth-service.output }}'  #<\n"
        ),
        {},
        "tasks.b.prompt",
        "tasks['oauth-service'].output",
    ),
    (
        "profile-typo",
        plan("a:\n  agent: helper  #<\n  prompt: x\n"),
        {".plait/agents/helper.md": PROFILE_TYPO},
        "tasks.a.agent",
        ".plait/agents/helper.md:2, which is invalid: backend: unknown backend 'comand'",
    ),
    (
        "prompt-file-device",
        plan("a:\n  agent: dev\n  prompt_file: /dev/zero  #<\n"),
        {},
        "tasks.a.prompt_file",
        "absolute",
    ),
    (
        "fixer-task-id",
        plan(
            OK_TASK + "fix-verify:  #<\n  agent: dev\n  prompt: x\n",
            top="verify: ['false']\non_verify_failure:\n  agent: dev\n  prompt: fix it\n",
        ),
        {},
        "tasks.fix-verify",
        "on_verify_failure",
    ),
]


@pytest.mark.parametrize(
    ("text", "files", "path", "fragment"),
    [c[1:] for c in CLI_CASES],
    ids=[c[0] for c in CLI_CASES],
)
def test_the_cli_refuses_before_writing_anything(
    tmp_path: Path,
    plait_proc: PlaitProc,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    files: dict[str, str],
    path: str,
    fragment: str,
) -> None:
    repo = GitRepo.create(
        tmp_path / "repo", {"agent.py": "print('done')\n", "plait.yaml": text, **files}
    )
    monkeypatch.delenv("PLAIT_HOME")  # state would go to .git/plait: it must not appear
    before = snapshot(repo.path)
    for command in ("plan", "run"):
        done = plait_proc(command, "plait.yaml", cwd=repo.path)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"plait.yaml:{marked_line(text)}:" in done.stderr, done.stderr
        assert f" {path}: " in done.stderr and fragment in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert snapshot(repo.path) == before
    assert not (repo.path / ".git" / "plait").exists()
    assert repo.branches("plait/*") == []
