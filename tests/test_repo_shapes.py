"""Repositories of unusual shapes get a clear error (exit 3) and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import PlaitProc, write_plan
from gitrepo import GitRepo

PLAN = """\
version: 1
agents: {w: {backend: command, command: ["sh", "-c", "echo broken > config"]}}
tasks: {t: {agent: w, prompt: x}}
"""


def test_a_bare_repository_is_refused_before_any_agent_runs(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """In a bare repository plait ran the plan in place, in the git dir itself: the agent
    overwrote the repository's config, and the run said it succeeded."""
    bare = tmp_path / "shop.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    write_plan(bare / "plait.yaml", PLAN)
    config = (bare / "config").read_bytes()
    before = sorted(p.name for p in bare.iterdir())
    done = plait_proc("run", "--json", cwd=bare)
    assert done.returncode == 3, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert "is a bare repository or a git folder" in error["message"]
    assert "git worktree add" in error["message"]
    assert (bare / "config").read_bytes() == config
    assert sorted(p.name for p in bare.iterdir()) == before
    # and from inside a checkout's .git, the same
    write_plan(repo.path / ".git" / "plait.yaml", PLAN)
    inside = plait_proc("run", cwd=repo.path / ".git")
    assert inside.returncode == 3, inside.stderr


def test_a_branch_named_plait_is_named_as_the_problem(repo: GitRepo, plait_proc: PlaitProc) -> None:
    """git cannot have refs/heads/plait and refs/heads/plait/<run>: the run failed with
    git's own words and exit 1, as if a task had failed."""
    write_plan(repo.path / "plait.yaml", PLAN)
    repo.commit("plan")
    repo.git("branch", "plait")
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 3, done.stdout + done.stderr
    message = json.loads(done.stdout)["error"]["message"]
    assert "has a branch named `plait`" in message and "git branch -m plait" in message
    assert repo.git("branch", "--list", "plait/*").strip() == ""


def test_a_copy_entry_matching_no_file_is_said_at_the_start_and_the_end(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """A misspelt `copy: [.env.local]` was silent: agents and tests just failed
    without the file."""
    (repo.path / ".env").write_text("KEY=1\n")
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\ncopy: [.env, .env.local]\n"
        "agents: {w: {backend: command, command: [sh, -c, 'cat .env > seen.txt']}}\n"
        "tasks: {t: {agent: w, prompt: x, writes: [seen.txt]}}\n",
    )
    repo.git("add", "plait.yaml")  # (.env stays untracked, as such files are)
    repo.git("commit", "-qm", "plan")
    done = plait_proc("run", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    said = "copy: '.env.local' matches no file in"
    assert said in done.stdout.splitlines()[0], done.stdout  # at the start
    assert said in done.stderr, done.stderr  # and in the end's messages
    assert "'.env'" not in done.stdout + done.stderr


def test_uncommitted_changes_are_said_to_be_missing_from_the_worktrees(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """An agent script not yet committed failed with "can't open file …/worktree/…",
    with no word that worktrees hold only what is committed. The plan itself, read from
    the checkout, is not named."""
    (repo.path / "tools").mkdir()
    (repo.path / "tools" / "agent.sh").write_text("echo hi > out.txt\n")
    (repo.path / "README.md").write_text("edited\n")
    # What plait itself takes from the checkout is not named (each was, in review): a
    # file `copy` brings, a prompt file, profiles beside a plan in a folder, a deletion.
    (repo.path / "old.txt").write_text("old\n")
    repo.git("add", "old.txt")
    repo.git("commit", "-qm", "old")
    (repo.path / "old.txt").unlink()
    (repo.path / "config").mkdir()
    (repo.path / "config" / "app.secret").write_text("s\n")
    write_plan(repo.path / "plans" / "prompts" / "t.md", "Do it.\n")
    write_plan(repo.path / "plans" / ".plait" / "agents" / "w.md", "---\nname: w\n---\nHi.\n")
    write_plan(
        repo.path / "plans" / "plait.yaml",
        "version: 1\ncopy: ['config/*.secret']\n"
        "agents: {w: {backend: command, command: [sh, tools/agent.sh]}}\n"
        "tasks: {t: {agent: w, prompt_file: prompts/t.md, writes: [out.txt]}}\n",
    )
    done = plait_proc("run", "plans/plait.yaml", cwd=repo.path)
    assert done.returncode == 1, done.stdout + done.stderr
    said = "not committed, so not in the agents' worktrees (they start from a commit): "
    line = next(x for x in done.stderr.splitlines() if said in x)
    assert set(line.split(said)[1].split(", ")) == {"README.md", "tools/agent.sh"}, line


def test_the_next_steps_of_a_run_of_another_repository_say_where(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """`plait run ../other/plait.yaml` keeps the run in the other repository; its end
    said `plait report <run>`, which from here finds no such run (exit 2)."""
    other = GitRepo.create(tmp_path / "other repo")
    write_plan(
        other.path / "plait.yaml",
        "version: 1\nagents: {w: {backend: command, command: [sh, -c, 'echo a > a.txt']}}\n"
        "tasks: {t: {agent: w, prompt: x, writes: [a.txt]}}\n",
    )
    other.git("add", "plait.yaml")
    other.git("commit", "-qm", "plan")
    state = {"PLAIT_HOME": ""}  # each repository's own state, as without the test's
    done = plait_proc("run", str(other.path / "plait.yaml"), cwd=repo.path, env=state)
    assert done.returncode == 0, done.stdout + done.stderr
    hint = next(line for line in done.stdout.splitlines() if line.startswith("next:"))
    report = hint.split("`")[1]
    assert report.startswith(f"cd '{other.path}' && plait report "), hint
    shown = subprocess.run(
        ["sh", "-c", report.replace("plait report", f"{sys.executable} -m plait report")],
        cwd=repo.path,
        env={**os.environ, **state},
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    # run where it lives, the hint needs no folder
    here = plait_proc("run", cwd=other.path, env=state)
    assert "next: `plait report " in here.stdout, here.stdout


def test_the_budget_warning_names_the_verify_fixers_agent_too(tmp_path: Path) -> None:
    from plait.planfile import parse_plan
    from plait.runcheck import _budget_blind_spots

    plan = parse_plan(
        "version: 1\nbudget_usd: 1\nverify: [make]\n"
        "on_verify_failure: {agent: fix, prompt: fix it}\n"
        "agents:\n  dev: {backend: claude}\n  fix: {backend: command, command: [./fix]}\n"
        "tasks: {t: {agent: dev, prompt: x}}\n",
        root=tmp_path,
    )
    (said,) = _budget_blind_spots(plan)
    assert said.endswith("report none: fix (command); what they spend is not counted")


def test_a_repository_git_refuses_as_dubious_is_not_run_in_place(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """git refused the repository (dubious ownership), so plait took it for a plain
    folder and ran the agents in the checkout itself."""
    write_plan(repo.path / "plait.yaml", PLAN)
    config = (repo.common_dir / "config").read_bytes()
    done = plait_proc("run", cwd=repo.path, env={"GIT_TEST_ASSUME_DIFFERENT_OWNER": "1"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "git refuses to work in" in done.stderr and "safe.directory" in done.stderr
    assert not (repo.path / "config").exists()  # the agent never ran
    assert (repo.common_dir / "config").read_bytes() == config


def test_a_plan_outside_any_repository_run_from_inside_one_is_refused(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """It ran in the plan's own folder, in place: the agents wrote there, and `plait
    status` in the repository found no run."""
    outside = tmp_path / "plans"
    write_plan(outside / "p.yaml", PLAN)
    done = plait_proc("run", str(outside / "p.yaml"), cwd=repo.path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"the plan's folder {outside} is in no git repository" in done.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["p.yaml"]  # nothing ran there
    # From the plan's own folder it runs there, in place, as before.
    there = plait_proc("run", "p.yaml", cwd=outside)
    assert there.returncode == 0, there.stdout + there.stderr
    assert (outside / "config").read_text() == "broken\n"
