"""`plait apply`, `plait run --apply` and `plait clean` through the real CLI.

`apply` is the only command that touches the user's checkout: it merges a run's
result branch into the current branch when the working tree is clean, and
otherwise says why and changes nothing. `clean` removes what a run left: the
worktrees kept for inspection and the task branches, and the result branch only
when asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gitrepo import GitRepo, git_identity
from plait.pool import POOL_DIR
from plait.runlock import RunLock
from test_e2e_git import outline, plait, plan_text, run_plan, tasks_by_id
from test_procsweep import alive, gone


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    monkeypatch.delenv("PLAIT_HOME", raising=False)
    return GitRepo.create(
        tmp_path / "repo",
        {"README.md": "# app\n", "src/app.py": "x = 1\n", "docs/guide.md": "guide\n"},
    )


def checkout(repo: GitRepo) -> dict[str, Any]:
    """HEAD and every file of the working tree (but the untracked plan), hashed."""
    files = {
        p.relative_to(repo.path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(repo.path.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo.path).parts
    }
    return {"HEAD": repo.head(), "branch": repo.git("branch", "--show-current"), **files}


TWO_TASKS = {
    "feature": {"do": ["write src/feature.py 'ON = True'"], "writes": ["src/feature.py"]},
    "readme": {"do": ["append README.md 'Has a feature.'"], "writes": ["README.md"]},
}


def test_apply_refuses_a_dirty_tree_then_merges_a_clean_one(repo: GitRepo) -> None:
    code, status = run_plan(repo, plan_text(TWO_TASKS), "-j", "2")
    assert code == 0, outline(status)
    run, result = status["run"], status["branch"]

    # a tracked file with uncommitted changes: refused, nothing changed
    repo.write("src/app.py", "x = 2  # the user's edit\n")
    before = checkout(repo)
    refused = plait(repo, "apply", run)
    assert refused.returncode == 1
    assert "src/app.py" in refused.stderr and "uncommitted" in refused.stderr
    assert checkout(repo) == before
    assert not (repo.path / "src" / "feature.py").exists()

    # a staged change is just as dirty
    repo.git("add", "src/app.py")
    assert plait(repo, "apply", run).returncode == 1
    assert checkout(repo) == before

    # clean again (the untracked plan file does not count): applied
    repo.git("reset", "-q", "--hard")
    base = repo.head()
    applied = plait(repo, "apply", run)
    assert applied.returncode == 0, applied.stderr
    assert "applied" in applied.stdout
    assert (repo.path / "src" / "feature.py").read_text() == "ON = True\n"
    assert (repo.path / "README.md").read_text() == "# app\nHas a feature.\n"
    assert repo.git("merge-base", "--is-ancestor", result, "HEAD", check=False) == ""
    assert repo.head() != base and repo.git("branch", "--show-current").strip() == "main"
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""
    # twice is harmless
    again = plait(repo, "apply", run)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_apply_that_would_conflict_changes_nothing(repo: GitRepo) -> None:
    code, status = run_plan(repo, plan_text(TWO_TASKS), "-j", "2")
    assert code == 0, outline(status)
    repo.write("README.md", "# app\nThe user's own line.\n")
    repo.commit("user edits the README meanwhile")
    before = checkout(repo)

    refused = plait(repo, "apply", status["run"])

    assert refused.returncode == 1
    assert "conflict" in refused.stderr
    assert checkout(repo) == before
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""
    assert not (repo.common_dir / "MERGE_HEAD").exists()


def test_apply_never_overwrites_an_untracked_file_and_says_so(repo: GitRepo) -> None:
    code, status = run_plan(repo, plan_text(TWO_TASKS), "-j", "2")
    assert code == 0, outline(status)
    repo.write("src/feature.py", "the user's own, never committed\n")
    before = checkout(repo)

    refused = plait(repo, "apply", status["run"])

    assert refused.returncode == 1
    assert "untracked" in refused.stderr and "src/feature.py" in refused.stderr
    assert checkout(repo) == before


def test_run_with_apply_lands_the_result_on_the_current_branch(repo: GitRepo) -> None:
    code, status = run_plan(repo, plan_text(TWO_TASKS), "-j", "2", "--apply")
    assert code == 0, outline(status)
    assert repo.git("merge-base", "--is-ancestor", status["branch"], "HEAD", check=False) == ""
    assert (repo.path / "src" / "feature.py").read_text() == "ON = True\n"
    assert repo.git("branch", "--show-current").strip() == "main"
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""


def test_a_failed_task_keeps_its_worktree_until_clean(repo: GitRepo) -> None:
    tasks = {
        "good": {"do": ["write good.txt fine"], "writes": ["good.txt"]},
        "bad": {"do": ["write half-done.txt wip", "fail"], "writes": ["half-done.txt"]},
    }
    code, status = run_plan(repo, plan_text(tasks), "-j", "2")
    assert code == 1
    run, result = status["run"], status["branch"]
    by_id = tasks_by_id(status)
    assert by_id["good"]["status"] == "succeeded" and by_id["bad"]["status"] == "failed"

    # the failed attempt's worktree is kept for inspection; the merged one is parked
    # in the pool, for the next run
    worktrees = [Path(p) for p in repo.worktrees()[1:] if Path(p).parent.name != POOL_DIR]
    assert [p.name for p in worktrees] == ["bad-1"], worktrees
    assert (worktrees[0] / "half-done.txt").read_text() == "wip\n"
    assert repo.branches(f"plait/tasks/{run}/*") == [f"plait/tasks/{run}/bad"]
    unmerged = repo.head(f"plait/tasks/{run}/bad")

    cleaned = plait(repo, "clean", run)

    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.worktrees() == [str(repo.path)]
    assert not worktrees[0].exists()
    assert repo.branches(f"plait/tasks/{run}/*") == []
    assert repo.branches(f"plait/{run}/*") == []
    assert repo.rev(result) == status["head"]  # the result stays without --branches
    # the failed attempt's commit is not lost: clean keeps it under a ref
    saved = repo.git("for-each-ref", "--format=%(objectname)", f"refs/plait/snapshots/{run}/")
    assert unmerged in saved.split()
    assert repo.git("worktree", "prune", "--dry-run", "-v") == ""

    gone = plait(repo, "clean", run, "--branches")
    assert gone.returncode == 0, gone.stderr
    assert repo.rev(result) is None
    assert repo.branches() == ["main"]
    # the failed attempt's commit is held by no branch: its snapshot is the only copy
    assert unmerged in repo.git("for-each-ref", "--format=%(objectname)", "refs/plait/").split()
    assert "refs/plait/snapshots/" in gone.stdout
    repo.fsck()


def test_clean_without_a_run_cleans_every_run(repo: GitRepo) -> None:
    failing = {"bad": {"do": ["write x.txt x", "fail"], "writes": ["x.txt"]}}
    first = run_plan(repo, plan_text(failing))[1]["run"]
    second = run_plan(repo, plan_text(failing))[1]["run"]
    assert len(repo.worktrees()) == 3

    cleaned = plait(repo, "clean")

    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.worktrees() == [str(repo.path)]
    assert repo.branches("plait/tasks/*") == []
    # Two runs in one second differ only in their random suffix: compare as sets.
    assert set(repo.branches("plait/*")) == {f"plait/{first}", f"plait/{second}"}
    # the user's branch and files were not touched by any of it
    assert repo.git("status", "--porcelain", "--untracked-files=no") == ""
    assert (
        subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=repo.path, check=False).returncode
        == 0
    )


def test_clean_waits_for_no_run_and_removes_nothing_under_one(repo: GitRepo) -> None:
    """A run in progress keeps its worktrees: `clean` refuses while it holds the lock."""
    failing = {"bad": {"do": ["write x.txt x", "fail"], "writes": ["x.txt"]}}
    run_plan(repo, plan_text(failing))
    kept = repo.worktrees()
    assert len(kept) == 2

    with RunLock(repo.common_dir / "plait") as lock:
        lock.acquire("20261128-000000-live")  # as a `plait run` in progress holds it
        refused = plait(repo, "clean")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "20261128-000000-live" in refused.stderr
        assert repo.worktrees() == kept

    cleaned = plait(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.worktrees() == [str(repo.path)]


def test_run_with_apply_on_a_dirty_tree_prints_the_result_then_refuses(repo: GitRepo) -> None:
    """The refusal costs nothing: the run's JSON and id are printed, then why not applied."""
    (repo.path / "plait.yaml").write_text(plan_text(TWO_TASKS))
    repo.write("src/app.py", "x = 2  # the user's edit\n")
    before = checkout(repo)

    done = plait(repo, "run", "plait.yaml", "-j", "2", "--apply", "--json")

    data = json.loads(done.stdout)  # one JSON object, although apply refused
    run = data["run"]
    assert data["status"] == "succeeded"
    assert [t["status"] for t in data["tasks"]] == ["succeeded", "succeeded"]
    assert data["applied"] is False
    assert "uncommitted" in data["apply_error"] and "src/app.py" in data["apply_error"]
    assert f"plait apply {run}" in done.stderr
    assert done.returncode == 1  # as `plait apply` exits for the same refusal
    assert checkout(repo) == before
    assert repo.rev(f"plait/{run}") == data["head"]  # the result waits on its branch

    text = plait(repo, "run", "plait.yaml", "-j", "2", "--apply")
    second = json.loads(plait(repo, "runs", "--json").stdout)[0]["run"]
    assert second != run
    assert text.returncode == 1
    assert f"run {second} (e2e): succeeded" in text.stdout and "2 succeeded" in text.stdout
    assert f"`plait apply {second}`" in text.stderr and "Traceback" not in text.stderr
    assert checkout(repo) == before

    repo.git("checkout", "--", "src/app.py")
    assert plait(repo, "apply", run).returncode == 0
    assert (repo.path / "src" / "feature.py").read_text() == "ON = True\n"


def test_run_with_apply_that_fails_says_it_applied_nothing(repo: GitRepo) -> None:
    failing = {"bad": {"do": ["write x.txt x", "fail"], "writes": ["x.txt"]}}
    (repo.path / "plait.yaml").write_text(plan_text(failing))
    before = checkout(repo)

    done = plait(repo, "run", "plait.yaml", "--apply", "--json")

    data = json.loads(done.stdout)
    assert done.returncode == 1
    assert data["applied"] is False and data["apply_error"] == "not applied: the run is failed"
    assert "not applied" in done.stderr
    assert checkout(repo) == before


def test_clean_of_an_unknown_run_exits_2_like_apply(repo: GitRepo) -> None:
    failing = {"bad": {"do": ["write x.txt x", "fail"], "writes": ["x.txt"]}}
    run = run_plan(repo, plan_text(failing))[1]["run"]
    kept = repo.worktrees()

    for command in ("apply", "clean"):
        unknown = plait(repo, command, "nope")
        assert unknown.returncode == 2, (command, unknown.stdout, unknown.stderr)
        assert "nope" in unknown.stderr and "Traceback" not in unknown.stderr
    assert plait(repo, "clean", "..").returncode == 2
    assert repo.worktrees() == kept  # nothing was cleaned

    # a run known only by what it left (its store deleted) can still be cleaned
    (repo.common_dir / "plait" / "state.db").unlink(missing_ok=True)
    cleaned = plait(repo, "clean", run)
    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.worktrees() == [str(repo.path)]


# -- runs caught in the middle: still going, or killed -------------------------------


def start_run(repo: GitRepo, plan: str) -> subprocess.Popen[bytes]:
    """`plait run` in the background, as a user would leave it running in a terminal."""
    (repo.path / "plait.yaml").write_text(plan)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "plait.yaml", "--json"],
        cwd=repo.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until(check: Callable[[], object], what: str, within_s: float = 60) -> Any:
    deadline = time.monotonic() + within_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)
    return value


def json_of(done: subprocess.CompletedProcess[str]) -> Any:
    """A command's JSON; None while there is none yet (the store not made: the command
    fails, and says why in an error object)."""
    return json.loads(done.stdout) if done.returncode == 0 else None


def task_state(repo: GitRepo, run: str, task: str) -> tuple[str, bool]:
    status = json_of(plait(repo, "status", run, "--json"))
    found = tasks_by_id(status)[task]
    return found["status"], found["merged"]


def run_with_quick_merged(repo: GitRepo, flags: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A run whose `quick` task has merged while `slow` waits for the flag `go` and `after`
    (which needs `slow`) has not started: the run, and its id."""
    tasks = {
        "quick": {"do": ["write quick.txt done"], "writes": ["quick.txt"]},
        "slow": {
            "do": ["write slow.txt done", f"waitflag {shlex.quote(str(flags))} go"],
            "writes": ["slow.txt"],
        },
        "after": {"do": ["write after.txt done"], "writes": ["after.txt"], "needs": ["slow"]},
    }
    proc = start_run(repo, plan_text(tasks, jobs=2))
    try:
        runs = wait_until(lambda: json_of(plait(repo, "runs", "--json")), "the run")
        run: str = runs[0]["run"]
        # git says when the merge landed (the store's row may still say "merging")
        wait_until(lambda: repo.git("show", f"plait/{run}:quick.txt", check=False), "quick merged")
        assert task_state(repo, run, "slow")[0] == "running"
    except BaseException:
        (flags / "go").touch()
        proc.kill()
        proc.wait()
        raise
    return proc, run


def test_apply_refuses_a_run_in_progress_naming_its_plait(repo: GitRepo, tmp_path: Path) -> None:
    """Half a run is not its result: apply waits for it, exit 3 as for a held lock."""
    flags = tmp_path / "flags"
    flags.mkdir()
    proc, run = run_with_quick_merged(repo, flags)
    try:
        before = checkout(repo)
        refused = plait(repo, "apply", run)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert f"run {run} is still in progress" in refused.stderr
        assert f"plait process {proc.pid}" in refused.stderr  # who holds the lock
        assert "nothing was changed" in refused.stderr and "Traceback" not in refused.stderr
        assert checkout(repo) == before
        assert not (repo.path / "quick.txt").exists()
    finally:
        (flags / "go").touch()
        assert proc.wait(timeout=120) == 0

    applied = plait(repo, "apply", run)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.startswith("applied ")  # a succeeded run: no word about missing tasks
    for name in ("quick", "slow", "after"):
        assert (repo.path / f"{name}.txt").read_text() == "done\n"


def test_apply_of_an_interrupted_run_says_what_is_missing_and_how_to_finish(
    repo: GitRepo, tmp_path: Path
) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    proc, run = run_with_quick_merged(repo, flags)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

        applied = plait(repo, "apply", run)

        assert applied.returncode == 0, applied.stdout + applied.stderr
        lines = applied.stdout.splitlines()
        assert lines[0] == (
            f"run {run} was interrupted: its result lacks 2 task(s): "
            "slow (not finished), after (not run)."
        ), applied.stdout
        assert f"`plait resume {run}` would finish it" in applied.stdout
        assert lines[-1].startswith(f"applied plait/{run} ")  # said first, then done
        assert (repo.path / "quick.txt").read_text() == "done\n"
        assert not (repo.path / "slow.txt").exists() and not (repo.path / "after.txt").exists()
    finally:
        (flags / "go").touch()  # the killed run's agent, still waiting: let it go
        plait(repo, "clean")


def test_apply_of_a_failed_run_names_the_tasks_left_out(repo: GitRepo) -> None:
    tasks = {
        "good": {"do": ["write good.txt fine"], "writes": ["good.txt"]},
        "bad": {"do": ["write bad.txt wip", "fail"], "writes": ["bad.txt"]},
        "after": {"do": ["write after.txt x"], "writes": ["after.txt"], "needs": ["bad"]},
    }
    code, status = run_plan(repo, plan_text(tasks), "-j", "2")
    assert code == 1, outline(status)
    run = status["run"]

    applied = plait(repo, "apply", run)

    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[0] == (
        f"run {run} failed: its result lacks 2 task(s): bad (failed), after (skipped)."
    ), applied.stdout
    assert "resume" not in applied.stdout  # a finished run has nothing to resume
    assert "applied plait/" in applied.stdout
    assert (repo.path / "good.txt").read_text() == "fine\n"
    assert not (repo.path / "bad.txt").exists()


def test_apply_of_a_run_whose_verify_failed_says_so(repo: GitRepo) -> None:
    failing_check = [sys.executable, "-c", "raise SystemExit(1)"]
    code, status = run_plan(repo, plan_text(TWO_TASKS, verify=failing_check), "-j", "2")
    assert code == 1 and status["verify"]["ok"] is False, outline(status)

    applied = plait(repo, "apply", status["run"])

    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines()[0] == (
        f"run {status['run']} failed: every task is in its result, "
        "but the plan's verify failed on it."
    ), applied.stdout
    assert (repo.path / "src" / "feature.py").read_text() == "ON = True\n"


LEAKY_AGENT = """
import os, subprocess, sys, time
# A child in a session of its own: out of the agent's process group, but it keeps the
# environment (plait's marker). `sh` writes its pid, then becomes `sleep`.
subprocess.Popen(["setsid", "sh", "-c", 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 300',
                  "sh", sys.argv[1] + "/child"])
open(sys.argv[1] + "/agent", "w").write(str(os.getpid()))
time.sleep(300)
"""


def test_clean_ends_what_a_killed_run_left_running(repo: GitRepo, tmp_path: Path) -> None:
    """plait killed with SIGKILL cannot end its agent (its own group) nor the agent's
    `setsid` child: `plait clean` finds both by the run's marker before the worktree goes."""
    script, pids = tmp_path / "leaky.py", tmp_path / "pids"
    script.write_text(LEAKY_AGENT)
    pids.mkdir()
    plan = {
        "version": 1,
        "name": "leak",
        "agents": {
            "leaky": {"backend": "command", "command": [sys.executable, str(script), str(pids)]}
        },
        "tasks": {"leak": {"agent": "leaky", "prompt": "leak\n", "writes": ["x.txt"]}},
    }
    proc = start_run(repo, json.dumps(plan))
    child = agent = 0
    try:
        wait_until(lambda: (pids / "child").exists() and (pids / "agent").exists(), "the agent")
        child = int((pids / "child").read_text())
        agent = int((pids / "agent").read_text())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.5)
        assert alive(agent) and alive(child)  # what the kill left, spending money
        assert len(repo.worktrees()) == 2

        cleaned = plait(repo, "clean")

        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert gone(child) and gone(agent)
        assert "ended 2 process(es)" in cleaned.stdout
        assert repo.worktrees() == [str(repo.path)]
        again = plait(repo, "clean")
        assert again.returncode == 0 and "ended" not in again.stdout
    finally:
        for pid in (child, agent):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_clean_removes_the_verify_checkout_a_killed_run_left(repo: GitRepo, tmp_path: Path) -> None:
    started = tmp_path / "verify-started"
    code = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(60)"
    verify = [sys.executable, "-c", code]
    tasks = {"feature": TWO_TASKS["feature"]}
    (repo.path / "plait.yaml").write_text(plan_text(tasks, verify=verify))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "--json"], cwd=repo.path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the plan's verify never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # plait and its verify, as a crash would
        proc.wait()
    checkouts = [p for p in repo.worktrees()[1:] if "/verify/" in p]
    assert checkouts, repo.worktrees()

    cleaned = plait(repo, "clean")

    assert cleaned.returncode == 0, cleaned.stderr
    assert [p for p in repo.worktrees()[1:] if "/verify/" in p] == []
    assert not any(Path(p).exists() for p in checkouts)


def test_clean_branches_keeps_a_failed_tasks_commit_as_a_snapshot(repo: GitRepo) -> None:
    failing = {"bad": {"do": ["write x.txt x"], "writes": ["x.txt"], "verify": ["false"]}}
    code, status = run_plan(repo, plan_text(failing))
    assert code == 1
    run = status["run"]
    unmerged = repo.head(f"plait/tasks/{run}/bad")

    cleaned = plait(repo, "clean", "--branches")

    assert cleaned.returncode == 0, cleaned.stderr
    assert repo.branches("plait/*") == []
    assert repo.head(f"refs/plait/snapshots/{run}/bad/branch") == unmerged


def test_apply_waits_while_clean_holds_the_lock(repo: GitRepo) -> None:
    code, status = run_plan(repo, plan_text(TWO_TASKS))
    assert code == 0
    before = repo.head()
    with RunLock(repo.common_dir / "plait") as lock:
        lock.acquire("")  # as `plait clean` holds it
        refused = plait(repo, "apply", status["run"])
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert "plait clean" in refused.stderr
    assert repo.head() == before


def test_clean_removes_worktrees_made_where_they_were_before_they_left_dot_git(
    repo: GitRepo,
) -> None:
    """An older plait put worktrees in <repo>/.git/plait/worktrees: `clean` still finds
    and removes them, with their task branches."""
    run = "20261101-000000-abcd"
    old = repo.common_dir / "plait" / "worktrees" / run / "t-1"
    old.parent.mkdir(parents=True)
    repo.git("worktree", "add", "-q", "-b", f"plait/tasks/{run}/t", str(old))
    assert len(repo.worktrees()) == 2

    cleaned = plait(repo, "clean", run)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "removed 1 worktree(s)" in cleaned.stdout
    assert repo.worktrees() == [str(repo.path)]
    assert repo.branches("plait/*") == []
    assert not old.exists()
