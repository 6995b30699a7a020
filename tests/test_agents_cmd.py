"""`plait agents`, the pre-run program check, and role profiles, through the CLI.

The fake vendor CLIs (tests/fakeclis/) stand in for the real programs on PATH; a
test that needs one missing builds a PATH without it, and one that needs it too old
sets ``FAKECLI_VERSION`` (what the fakes answer to ``--version``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from plait.store import Store
from test_backends_e2e import FAKES, Rig

ROLES = (
    "architect",
    "backend-engineer",
    "frontend-engineer",
    "junior-engineer",
    "test-engineer",
    "code-reviewer",
)


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    return Rig(tmp_path, monkeypatch)


def rows_by_role(rig: Rig, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = rig.plait("agents", "--json", *args)
    assert done.stdout.strip().startswith("["), done.stdout + done.stderr
    return done.returncode, {r["role"]: r for r in json.loads(done.stdout)}


MIXED = """\
version: 1
name: inventory
agents:
  architect: {backend: claude, model: opus}
  coder: {backend: codex}
  scribe: {backend: command, command: ["python3", "-c", "print('hi')"]}
  idle: {backend: claude}
tasks:
  design: {agent: architect, prompt: Design it.}
  build: {agent: coder, prompt: Build it.}
  notes: {agent: scribe, prompt: Write notes.}
"""


def no_run_started(rig: Rig) -> None:
    """Nothing was created: no run row, no branch, no worktree."""
    if (rig.home / "state.db").exists():
        with Store.open(rig.home) as store:
            assert store.latest_run_id() is None
    assert rig.repo.branches("plait/*") == []
    assert len(rig.repo.worktrees()) == 1


# --- plait agents ---------------------------------------------------------------------


def test_agents_lists_roles_backends_programs_and_versions(rig: Rig) -> None:
    rig.plan(MIXED)
    code, rows = rows_by_role(rig)
    assert code == 0
    assert sorted(rows) == ["architect", "coder", "idle", "scribe"]
    architect, coder, scribe, idle = (rows[r] for r in ("architect", "coder", "scribe", "idle"))
    assert architect["backend"] == "claude"
    assert architect["installed"] is True
    assert architect["path"] == str(FAKES / "claude")
    assert architect["version"] == "2.1.45 (Claude Code)"
    assert (architect["used"], architect["ok"], architect["problem"]) == (True, True, None)
    assert coder["backend"] == "codex"
    assert coder["version"] == "codex-cli 0.58.0"
    # A command agent: found on PATH, but never run with --version to ask.
    assert scribe["backend"] == "command"
    assert scribe["installed"] is True
    assert scribe["version"] is None
    assert idle["used"] is False

    text = rig.plait("agents")
    assert text.returncode == 0, text.stderr
    lines = {line.split()[0]: line for line in text.stdout.splitlines() if line.strip()}
    assert "claude" in lines["architect"] and "2.1.45 (Claude Code)" in lines["architect"]
    assert "codex" in lines["coder"] and "codex-cli 0.58.0" in lines["coder"]
    assert "not used by any task" in lines["idle"]
    assert "PROBLEM" not in text.stdout


def only_codex_on_path(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH with python3 and the codex fake, but no claude."""
    only = rig.tmp / "only-codex"
    only.mkdir()
    (only / "codex").symlink_to(FAKES / "codex")
    monkeypatch.setenv("PATH", os.pathsep.join([str(rig.tmp / "pybin"), str(only), "/usr/bin"]))


def test_a_missing_program_stops_agents_and_run_with_exit_3(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_codex_on_path(rig, monkeypatch)
    rig.plan(MIXED)
    code, rows = rows_by_role(rig)
    assert code == 3
    assert rows["architect"]["installed"] is False
    assert rows["architect"]["ok"] is False
    assert (
        "claude is not installed: npm install -g @anthropic-ai/claude-code"
        in (rows["architect"]["problem"])
    )
    assert rows["coder"]["ok"] is True and rows["coder"]["version"] == "codex-cli 0.58.0"
    # An unused role's missing program is shown but blocks nothing.
    assert rows["idle"]["problem"] and rows["idle"]["ok"] is True
    text = rig.plait("agents")
    assert text.returncode == 3
    assert "plait run would stop before starting: architect cannot run" in text.stdout

    done = rig.plait("run")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "agent 'architect' (claude): claude is not installed" in done.stderr
    assert "idle" not in done.stderr
    no_run_started(rig)

    # Without the task that needs claude, the same PATH runs (the idle role is unused).
    rig.plan(MIXED.replace("  design: {agent: architect, prompt: Design it.}\n", ""))
    assert rig.plait("agents").returncode == 0


def test_a_too_old_program_stops_the_run_before_anything_starts(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.plan(MIXED)
    monkeypatch.setenv("FAKECLI_VERSION", "0.9.3 (Claude Code)")
    code, rows = rows_by_role(rig)
    assert code == 3
    assert rows["architect"]["version"] == "0.9.3 (Claude Code)"
    assert "claude 0.9.3 is too old: plait needs 1.0.0 or newer" in rows["architect"]["problem"]
    done = rig.plait("run")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "claude 0.9.3 is too old" in done.stderr
    assert "npm install -g @anthropic-ai/claude-code" in done.stderr
    no_run_started(rig)


# --- role profiles ----------------------------------------------------------------------

REVIEWER = """\
---
name: reviewer
description: Reviews diffs for bugs. Use after a change.
model: sonnet
tools: Read, Grep, Glob
---

You are a meticulous reviewer.
Report each finding with file and line.
"""


def test_init_profiles_and_a_claude_subagent_run_without_an_agents_section(rig: Rig) -> None:
    init = rig.plait("init", "--backend", "codex")
    assert init.returncode == 0, init.stderr
    folder = rig.repo.path / ".plait" / "agents"
    assert sorted(p.stem for p in folder.glob("*.md")) == sorted(ROLES)
    for role in ROLES:
        text = (folder / f"{role}.md").read_text(encoding="utf-8")
        front = text.split("---")[1]
        assert "backend: codex" in front.splitlines()
        assert f"name: {role}" in front.splitlines()
        assert len(text.split("---", 2)[2].strip()) > 100  # real instructions
    claude_dir = rig.repo.path / ".claude" / "agents"
    claude_dir.mkdir(parents=True)
    (claude_dir / "reviewer.md").write_text(REVIEWER, encoding="utf-8")

    rec = rig.tmp
    rig.plan(
        f"""\
version: 1
name: roles
tasks:
  design:
    agent: architect
    prompt: Write the design to docs/design.md.
    writes: [docs/design.md]
    env: {{FAKECLI_WRITE: docs/design.md, FAKECLI_RESULT: "DESIGN: one table",
           FAKECLI_RECORD: {rec}/design.json}}
  build:
    agent: backend-engineer
    prompt: "Build this: {{{{ tasks.design.output }}}}"
    writes: ["src/**"]
    env: {{FAKECLI_WRITE: src/app.py, FAKECLI_RECORD: {rec}/build.json}}
  audit:
    agent: code-reviewer
    needs: [build]
    prompt: Audit src/.
    env: {{FAKECLI_RECORD: {rec}/audit.json}}
  review:
    agent: reviewer
    needs: [build]
    prompt: Review src/app.py.
    env: {{FAKECLI_RECORD: {rec}/review.json}}
"""
    )
    check = rig.plait("plan")
    assert check.returncode == 0, check.stdout + check.stderr

    code, rows = rows_by_role(rig)
    assert code == 0
    assert sorted(rows) == sorted([*ROLES, "reviewer"])
    for role in ROLES:
        assert rows[role]["backend"] == "codex"
        assert rows[role]["source"].endswith(f".plait/agents/{role}.md")
        assert rows[role]["version"] == "codex-cli 0.58.0"
    assert rows["reviewer"]["backend"] == "claude"
    assert rows["reviewer"]["source"].endswith(".claude/agents/reviewer.md")
    used = {r for r, row in rows.items() if row["used"]}
    assert used == {"architect", "backend-engineer", "code-reviewer", "reviewer"}

    code, out, err, run_id = rig.run()
    assert code == 0, out + err
    assert run_id is not None
    tasks = {t["id"]: t for t in rig.status(run_id)["tasks"]}
    assert all(t["status"] == "succeeded" for t in tasks.values()), tasks

    # Codex roles: instructions prepended to the prompt, permission as the sandbox.
    design = rig.recorded("design.json")
    assert design["stdin"].startswith("You are the architect.")
    assert design["stdin"].endswith("Write the design to docs/design.md.")
    assert design["argv"][design["argv"].index("--sandbox") + 1] == "workspace-write"
    build = rig.recorded("build.json")
    assert build["stdin"].startswith("You are a backend engineer.")
    assert build["stdin"].endswith("Build this: DESIGN: one table")
    audit = rig.recorded("audit.json")
    assert audit["argv"][audit["argv"].index("--sandbox") + 1] == "read-only"
    assert audit["stdin"].startswith("You are a code reviewer.")
    branch = f"plait/{run_id}"
    assert rig.repo.show(branch, "docs/design.md").startswith("written by codex")
    assert rig.repo.show(branch, "src/app.py").startswith("written by codex")

    # The Claude Code subagent: a claude agent whose body is the appended system prompt.
    review = rig.recorded("review.json")
    argv = review["argv"]
    assert argv[argv.index("--model") + 1] == "sonnet"
    assert argv[argv.index("--allowedTools") + 1] == "Read,Grep,Glob"
    assert argv[argv.index("--append-system-prompt") + 1] == (
        "You are a meticulous reviewer.\nReport each finding with file and line."
    )
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert review["stdin"] == "Review src/app.py."
    assert tasks["review"]["output"] == "FINAL: done"
