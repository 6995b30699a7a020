"""A plait killed with SIGKILL cannot put back git's own files its agents changed: the
next run or resume does, from the reading the killed run wrote down before its first
agent started, and keeps the changed copies aside."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from conftest import PlaitProc, wait_until, write_plan, yaml_list
from gitrepo import GitRepo

#: On its first run: plants a pre-commit hook and a git config value in the repository's
#: common git dir, then kills plait (its parent) before any check could see them. After
#: that (the marker exists) it only does its work.
PLANTING_AGENT = """\
import os, pathlib, signal, subprocess, sys
sys.stdin.read()
marker = pathlib.Path(os.environ["MARKER"])
if not marker.exists():
    marker.write_text("planted")
    common = subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True,
                            text=True, check=True).stdout.strip()
    hook = pathlib.Path(common, "hooks", "pre-commit")
    hook.write_text("#!/bin/sh\\necho pwned\\n")
    hook.chmod(0o755)
    subprocess.run(["git", "config", "core.pager", "evil"], check=True)
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(0)
pathlib.Path("a.txt").write_text("a\\n")
"""


def _plan(repo: GitRepo, tmp_path: Path, isolation: str) -> None:
    script = tmp_path / "agent.py"
    script.write_text(PLANTING_AGENT, encoding="utf-8")
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
isolation: {isolation}
agents:
  a: {{backend: command, command: {yaml_list([sys.executable, str(script)])}}}
tasks:
  x: {{agent: a, prompt: do it, writes: [a.txt], env: {{MARKER: "{tmp_path / "marker"}"}}}}
""",
    )
    repo.commit("plan")


def test_resume_puts_back_the_git_files_a_killed_runs_agent_changed(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    """Before, the hook stayed (it ran on the user's next commit) and became the baseline
    every later run compared with, and so kept."""
    _plan(repo, tmp_path, "worktree")
    hook = repo.common_dir / "hooks" / "pre-commit"
    config_before = (repo.common_dir / "config").read_bytes()
    crashed = plait_proc("run", cwd=repo.path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert hook.exists()  # what a killed plait leaves

    resumed = plait_proc("resume", "--json", cwd=repo.path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["tasks"][0]["status"] == "succeeded"
    assert not hook.exists()
    assert (repo.common_dir / "config").read_bytes() == config_before
    assert "put back .git/config, .git/hooks/pre-commit as they were" in resumed.stderr
    # Nothing is lost: the replaced copies are kept, in case the user made them.
    (hook_copy,) = (plait_home / "git-files-put-aside").rglob("pre-commit")
    assert hook_copy.read_text() == "#!/bin/sh\necho pwned\n"
    assert "evil" in (hook_copy.parent.parent / "config").read_text()
    assert not (plait_home / "guarded-baseline.json").exists()


def test_a_new_run_in_place_puts_them_back_too(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    """The killed run need not be resumed: the next `plait run` puts the files back
    before it reads its own baseline, and a run that ends leaves no reading behind."""
    _plan(repo, tmp_path, "none")
    hook = repo.common_dir / "hooks" / "pre-commit"
    crashed = plait_proc("run", cwd=repo.path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert hook.exists()

    again = plait_proc("run", "--json", cwd=repo.path)
    assert again.returncode == 0, again.stderr
    assert not hook.exists()
    assert ".git/hooks/pre-commit as they were before it ran" in again.stderr
    assert not (plait_home / "guarded-baseline.json").exists()
    third = plait_proc("run", cwd=repo.path)
    assert third.returncode == 0, third.stderr
    assert "put back" not in third.stderr


def test_apply_and_clean_put_them_back_before_anything_else(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """`plait apply` runs `git merge` in the user's checkout, which would run a hook the
    killed run's agent planted; `plait clean` is how a user tidies up after a kill."""
    _plan(repo, tmp_path, "worktree")
    hook = repo.common_dir / "hooks" / "pre-commit"
    crashed = plait_proc("run", cwd=repo.path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    run_id = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)["run"]
    assert hook.exists()
    applied = plait_proc("apply", run_id, cwd=repo.path)
    assert not hook.exists(), applied.stdout + applied.stderr
    assert "put back .git/config, .git/hooks/pre-commit" in applied.stdout

    (tmp_path / "marker").unlink()  # the next run plants them again, and is killed
    crashed = plait_proc("run", cwd=repo.path)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert hook.exists()
    cleaned = plait_proc("clean", cwd=repo.path)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not hook.exists()
    assert "put back .git/config, .git/hooks/pre-commit" in cleaned.stdout


def test_apply_of_a_finished_run_goes_ahead_while_another_run_works(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """A live run's own reading of git's files is not a killed run's: apply took the run
    lock to put it back, and so refused (exit 3) while any run went on."""
    started = tmp_path / "started"
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nagents: {w: {backend: command, command: [sh, -c, 'echo a > a.txt']}}\n"
        "tasks: {t: {agent: w, prompt: x, writes: [a.txt]}}\n",
    )
    write_plan(
        repo.path / "slow.yaml",
        "version: 1\nagents: {s: {backend: command, command: [sh, -c,"
        f" 'touch {started}; sleep 30']}}}}\ntasks: {{u: {{agent: s, prompt: x}}}}\n",
    )
    repo.git("add", "plait.yaml", "slow.yaml")
    repo.git("commit", "-qm", "plans")
    first = plait_proc("run", "--json", cwd=repo.path)
    assert first.returncode == 0, first.stderr
    slow = plait_proc.start("run", "slow.yaml", cwd=repo.path)
    wait_until(started.exists, slow)
    applied = plait_proc("apply", json.loads(first.stdout)["run"], cwd=repo.path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (repo.path / "a.txt").read_text() == "a\n"
    slow.terminate()  # (SIGTERM: plait ends its agent too)
    slow.communicate(timeout=30)
