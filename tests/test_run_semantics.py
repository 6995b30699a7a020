"""Run semantics at the edges: a base that names nothing, resuming a run that ended,
time limits of what is not an agent (setup, the plan's verify, the fixer), merges
refused by `verify_each_merge`, `--fail-fast`, and the fixer across a SIGKILL.

Every test runs the real CLI (`python -m plait`) as a subprocess in a real git
repository, with small agent scripts written into the test's folder.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import PlaitProc, write_plan, yaml_list
from gitrepo import GitRepo
from plait.branches import task_branch

PYTHON = sys.executable

#: An agent driven by its environment: appends "<task> <attempt>" to $LEDGER, writes
#: WRITE (a file name) with the value of $CONTENT (default "done"), sleeps $SLEEP
#: seconds after writing, and exits $EXIT. On attempt $SLOW_ON it sleeps 60 s first.
AGENT = """\
import os, sys, time
task, attempt = os.environ["PLAIT_TASK_ID"], os.environ["PLAIT_ATTEMPT"]
sys.stdin.read()
if os.environ.get("LEDGER"):
    open(os.environ["LEDGER"], "a").write(f"{task} {attempt}\\n")
if os.environ.get("SLOW_ON") == attempt:
    time.sleep(60)
if os.environ.get("WRITE"):
    open(os.environ["WRITE"], "w").write(os.environ.get("CONTENT", "done") + "\\n")
time.sleep(float(os.environ.get("SLEEP", "0")))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def _agent(tmp_path: Path) -> str:
    script = tmp_path / "agent.py"
    script.write_text(AGENT, encoding="utf-8")
    return yaml_list([PYTHON, str(script)])


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "state.db")


def _run_id(home: Path) -> str:
    with _db(home) as db:
        row = db.execute("SELECT id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return str(row[0])


def _tasks(home: Path, run_id: str) -> dict[str, tuple[str, int, str | None]]:
    """task id -> (status, attempts, error)."""
    with _db(home) as db:
        rows = db.execute(
            "SELECT task_id, status, attempts, error FROM tasks WHERE run_id = ?", (run_id,)
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _attempts(home: Path, run_id: str, task: str) -> list[dict[str, Any]]:
    with _db(home) as db:
        rows = db.execute(
            "SELECT attempt, kind, status, error FROM attempts WHERE run_id = ? AND task_id = ?"
            " ORDER BY attempt",
            (run_id, task),
        ).fetchall()
    return [{"attempt": r[0], "kind": r[1], "status": r[2], "error": r[3]} for r in rows]


# --- base ----------------------------------------------------------------------


def test_a_base_naming_no_commit_is_a_plan_error_and_writes_nothing(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        f"version: 1\nagents:\n  a: {{backend: command, command: {_agent(tmp_path)}}}\n"
        "base: nosuchref\ntasks:\n  t: {agent: a, prompt: x}\n",
    )
    for command in (("run",), ("run", "--json"), ("plan",), ("plan", "--json")):
        done = plait_proc(*command, cwd=repo.path)  # `plan` says so too, as `run` would
        assert done.returncode == 2, (command, done.stderr)
        # named as every other plan error names it, from where the user is
        assert "\n  plait.yaml:4:1: base:" in done.stderr, done.stderr
        assert "nosuchref" in done.stderr
    assert not (plait_home / "state.db").exists()
    assert "plait/" not in repo.git("branch", "--list")


def test_a_repository_without_a_commit_is_refused_before_anything_is_written(
    tmp_path: Path, plait_proc: PlaitProc, plait_home: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    GitRepo(empty).git("init", "-q", "-b", "main")
    write_plan(
        empty / "plait.yaml",
        f"version: 1\nagents:\n  a: {{backend: command, command: {_agent(tmp_path)}}}\n"
        "tasks:\n  t: {agent: a, prompt: x}\n",
    )
    done = plait_proc("run", cwd=empty)
    assert done.returncode == 3, done.stderr
    assert "no commit yet" in done.stderr
    assert not (plait_home / "state.db").exists()


# --- resuming a run that ended ---------------------------------------------------


def test_resuming_a_finished_run_changes_nothing_and_gives_its_exit_code(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    agent = _agent(tmp_path)
    for name, code in (("good", 0), ("bad", 1)):
        plan = write_plan(
            repo.path / f"{name}.yaml",
            f"version: 1\nname: {name}\nagents:\n  a: {{backend: command, command: {agent}}}\n"
            f"tasks:\n  t: {{agent: a, prompt: x, env: {{EXIT: '{code}'}}}}\n",
        )
        assert plait_proc("run", str(plan), cwd=repo.path).returncode == code
        run_id = _run_id(plait_home)
        with _db(plait_home) as db:
            before = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        resumed = plait_proc("resume", run_id, cwd=repo.path)
        assert resumed.returncode == code, resumed.stderr
        assert "already finished" in resumed.stderr
        with _db(plait_home) as db:
            after = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            attempts = db.execute(
                "SELECT COUNT(*) FROM attempts WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
        assert after == before  # wall time, status, pid: all as the run left them
        assert attempts == 1


# --- time limits -----------------------------------------------------------------


def test_setup_is_held_to_the_tasks_timeout(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
setup: [["sh", "-c", "sleep 40"]]
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
tasks:
  t: {{agent: a, prompt: x, timeout: 2s, env: {{WRITE: t.txt}}}}
""",
    )
    started = time.monotonic()
    done = plait_proc("run", cwd=repo.path)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 25, took
    status, _, error = _tasks(plait_home, _run_id(plait_home))["t"]
    assert status == "failed"
    assert error is not None and "timed out" in error


def test_the_plans_verify_is_held_to_defaults_timeout(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
verify: ["sh", "-c", "echo verifying; sleep 40"]
defaults: {{timeout: 2s}}
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
tasks:
  t: {{agent: a, prompt: x, env: {{WRITE: t.txt}}}}
""",
    )
    started = time.monotonic()
    done = plait_proc("run", "--json", cwd=repo.path)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 25, took
    with _db(plait_home) as db:
        verify = json.loads(db.execute("SELECT verify FROM runs").fetchone()[0])
    assert verify["ok"] is False
    assert "timed out after 2.0s" in verify["output"]


def test_a_run_with_a_failed_task_says_its_verify_did_not_run(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    ran = tmp_path / "verify-ran"
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
verify: ["sh", "-c", "touch {ran}"]
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
tasks:
  good: {{agent: a, prompt: x, env: {{WRITE: good.txt}}}}
  bad: {{agent: a, prompt: x, env: {{EXIT: "1"}}}}
""",
    )
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 1, done.stderr
    verify = json.loads(done.stdout)["verify"]
    assert verify == {"ok": None, "status": "not run", "reason": "a task did not succeed"}
    assert not ran.exists()
    assert "the plan's verify did not run: a task did not succeed" in done.stderr
    # status, report and apply say so too, not only the run's last lines
    status = plait_proc("status", cwd=repo.path)
    assert "verify: not run (a task did not succeed)" in status.stdout
    report = plait_proc("report", cwd=repo.path)
    assert "verify: not run" in report.stdout
    run_id = json.loads(done.stdout)["run"]
    applied = plait_proc("apply", run_id, cwd=repo.path)
    assert applied.returncode == 0, applied.stderr
    assert "the plan's verify did not run on it" in applied.stdout + applied.stderr


def test_the_fixer_takes_the_plans_defaults(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    # The fixer's first attempt hangs: defaults.timeout ends it, defaults.retries gives
    # it a second attempt, which writes the file with defaults.env's value.
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
verify: ["sh", "-c", "grep -q from-defaults fixed.txt"]
defaults: {{timeout: 3s, retries: 1, env: {{CONTENT: from-defaults}}}}
on_verify_failure: {{agent: fixer, prompt: fix it}}
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
  fixer: {{backend: command, command: {_agent(tmp_path)}, env: {{WRITE: fixed.txt, SLOW_ON: "1"}}}}
tasks:
  t: {{agent: a, prompt: x, env: {{WRITE: t.txt}}}}
""",
    )
    done = plait_proc("run", cwd=repo.path, timeout=60)
    assert done.returncode == 0, done.stderr
    run_id = _run_id(plait_home)
    attempts = _attempts(plait_home, run_id, "fix-verify")
    assert [a["status"] for a in attempts] == ["timeout", "ok"]
    content = repo.git("show", f"plait/{run_id}:fixed.txt")
    assert content.strip() == "from-defaults"
    report = plait_proc("report", run_id, "--json", cwd=repo.path)
    rows = {t["id"]: t for t in json.loads(report.stdout)["tasks"]}
    assert rows["fix-verify"]["agent"] == "fixer"  # (it was blank: not a plan task)


# --- verify_each_merge ----------------------------------------------------------


def test_a_merge_refused_by_verify_is_a_failed_attempt(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
verify_each_merge: true
verify: ["sh", "-c", "echo checking; if test -f bad.txt; then echo 'bad.txt is BAD'; exit 1; fi"]
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
tasks:
  good: {{agent: a, prompt: x, env: {{WRITE: good.txt}}}}
  bad: {{agent: a, prompt: x, retries: 1, env: {{WRITE: bad.txt}}}}
""",
    )
    done = plait_proc("run", cwd=repo.path)
    assert done.returncode == 1, done.stderr
    run_id = _run_id(plait_home)
    tasks = _tasks(plait_home, run_id)
    assert tasks["good"][0] == "succeeded"
    assert tasks["bad"][:2] == ("failed", 2)
    attempts = _attempts(plait_home, run_id, "bad")
    assert [(a["kind"], a["status"]) for a in attempts] == [
        ("first", "rejected"),
        ("retry", "rejected"),
    ]
    # why it failed is said where the user looks: the error, and `plait logs`
    assert all(
        a["error"] == "the plan's verify failed on the merge result: bad.txt is BAD"
        for a in attempts
    ), attempts
    logs = plait_proc("logs", run_id, "bad", "--attempt", "1", cwd=repo.path)
    assert logs.returncode == 0, logs.stderr
    assert "the plan's verify" in logs.stdout and "checking\nbad.txt is BAD" in logs.stdout


# --- --fail-fast -----------------------------------------------------------------


def test_fail_fast_cancels_running_attempts_and_starts_no_retry(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
jobs: 2
agents:
  a: {{backend: command, command: {_agent(tmp_path)}, env: {{LEDGER: "{ledger}"}}}}
tasks:
  boom: {{agent: a, prompt: x, env: {{SLEEP: "0.5", EXIT: "1"}}}}
  slow: {{agent: a, prompt: x, retries: 3, env: {{WRITE: slow.txt, SLEEP: "40", EXIT: "1"}}}}
""",
    )
    started = time.monotonic()
    done = plait_proc("run", "--fail-fast", cwd=repo.path)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 25, took
    run_id = _run_id(plait_home)
    tasks = _tasks(plait_home, run_id)
    assert tasks["boom"][0] == "failed"
    assert tasks["slow"][:2] == ("cancelled", 1)
    attempts = _attempts(plait_home, run_id, "slow")
    assert [a["status"] for a in attempts] == ["cancelled"]
    assert "--fail-fast" in attempts[0]["error"]
    assert sorted(ledger.read_text().split("\n")) == ["", "boom 1", "slow 1"]
    # What the cancelled attempt left is committed on its branch, as after a timeout.
    assert repo.git("show", f"{task_branch(run_id, 'slow')}:slow.txt").strip() == "done"


# --- the fixer across a SIGKILL -----------------------------------------------------

#: The plan's verify: appends to a ledger, fails until fixed.txt exists; with fixed.txt
#: there, the first time it kills plait (its parent) when asked to.
VERIFY = """\
import os, pathlib, signal, sys
ledger, kill_flag = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
with ledger.open("a") as f:
    f.write("verify\\n")
if not pathlib.Path("fixed.txt").is_file():
    print("CHECK-FAILED: fixed.txt is missing")
    sys.exit(1)
if sys.argv[3] == "verify" and not kill_flag.exists():
    kill_flag.touch()
    os.kill(os.getppid(), signal.SIGKILL)
sys.exit(0)
"""

#: The fixer: records its prompt; the first time, kills plait when asked to.
FIXER = """\
import os, pathlib, signal, sys
ledger, kill_flag = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
attempt = os.environ["PLAIT_ATTEMPT"]
pathlib.Path(sys.argv[1] + f".fixer-{attempt}.prompt").write_text(sys.stdin.read())
with ledger.open("a") as f:
    f.write(f"fixer {attempt}\\n")
if sys.argv[3] == "fixer" and not kill_flag.exists():
    kill_flag.touch()
    os.kill(os.getppid(), signal.SIGKILL)
    sys.exit(0)
pathlib.Path("fixed.txt").write_text("ok\\n")
"""


def _fixer_plan(repo: GitRepo, tmp_path: Path, kill_in: str) -> Path:
    ledger, flag = tmp_path / "ledger.txt", tmp_path / "killed"
    verify, fixer = tmp_path / "verify.py", tmp_path / "fixer.py"
    verify.write_text(VERIFY, encoding="utf-8")
    fixer.write_text(FIXER, encoding="utf-8")
    args = [str(ledger), str(flag), kill_in]
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
verify: {yaml_list([PYTHON, str(verify), *args])}
on_verify_failure: {{agent: fixer, prompt: fix it}}
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
  fixer: {{backend: command, command: {yaml_list([PYTHON, str(fixer), *args])}}}
tasks:
  t: {{agent: a, prompt: x, env: {{WRITE: t.txt}}}}
""",
    )
    return ledger


def test_a_run_killed_in_the_verify_after_the_fixer_resumes_to_the_check(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    ledger = _fixer_plan(repo, tmp_path, "verify")
    killed = plait_proc("run", cwd=repo.path)
    assert killed.returncode == -9, killed.stderr
    assert ledger.read_text().split() == ["verify", "fixer", "1", "verify"]
    resumed = plait_proc("resume", cwd=repo.path)
    assert resumed.returncode == 0, resumed.stderr
    # Only the check after the fixer ran again: the fixer is not run a second time.
    assert ledger.read_text().split() == ["verify", "fixer", "1", "verify", "verify"]
    run_id = _run_id(plait_home)
    assert _tasks(plait_home, run_id)["fix-verify"][:2] == ("succeeded", 1)
    with _db(plait_home) as db:
        status, verify = db.execute("SELECT status, verify FROM runs").fetchone()
    assert status == "succeeded" and json.loads(verify)["ok"] is True


def test_a_run_killed_in_the_fixer_resumes_the_fixer(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    ledger = _fixer_plan(repo, tmp_path, "fixer")
    killed = plait_proc("run", cwd=repo.path)
    assert killed.returncode == -9, killed.stderr
    resumed = plait_proc("resume", cwd=repo.path)
    assert resumed.returncode == 0, resumed.stderr
    # The failure recorded before the kill is what the fixer's new attempt is told:
    # the verify is not run again before it, only after it.
    assert ledger.read_text().split() == ["verify", "fixer", "1", "fixer", "2", "verify"]
    prompt = Path(f"{ledger}.fixer-2.prompt").read_text()
    assert "fix it" in prompt and "CHECK-FAILED: fixed.txt is missing" in prompt
    run_id = _run_id(plait_home)
    assert _tasks(plait_home, run_id)["fix-verify"][:2] == ("succeeded", 2)
    kinds = [(a["kind"], a["status"]) for a in _attempts(plait_home, run_id, "fix-verify")]
    assert kinds == [("first", "interrupted"), ("resume", "ok")]
    assert repo.git("show", f"plait/{run_id}:fixed.txt").strip() == "ok"


# --- the output file ---------------------------------------------------------------


def test_the_output_file_is_the_tasks_output_not_a_change(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    """DESIGN §4.9: `output` is plait's channel, outside `writes` and out of the result."""
    script = tmp_path / "writer.py"
    script.write_text(
        "import os, pathlib, sys\nsys.stdin.read()\n"
        "pathlib.Path('src').mkdir(exist_ok=True)\n"
        "pathlib.Path('src/app.py').write_text('x = 2\\n')\n"
        "pathlib.Path('notes').mkdir(exist_ok=True)\n"
        "pathlib.Path('notes/result.md').write_text('THE RESULT\\n')\n"
        "open(os.environ['PLAIT_OUTPUT_FILE'], 'w').write('not this one\\n')\n",
        encoding="utf-8",
    )
    command = yaml_list([PYTHON, str(script)])
    write_plan(
        repo.path / "plait.yaml",
        f"version: 1\nagents:\n  a: {{backend: command, command: {command}}}\n"
        "tasks:\n  t: {agent: a, prompt: x, writes: ['src/**'], output: notes/result.md}\n",
    )
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    (task,) = result["tasks"]
    assert task["status"] == "succeeded", task
    assert task["output"] == "THE RESULT\n"
    assert task["changed_files"] == ["src/app.py"]
    tree = repo.git("ls-tree", "-r", "--name-only", result["branch"]).split()
    assert "src/app.py" in tree and "notes/result.md" not in tree
    assert repo.show(result["branch"], "src/app.py") == "x = 2\n"


@pytest.mark.parametrize("writes", ["['docs/api.md']", "['docs/**']", "[]"])
def test_an_output_file_the_task_may_write_is_committed_too(
    writes: str, repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """The contract pattern: `output: docs/api.md` inside the task's `writes` (or with no
    `writes`: it may write anything) is the task's output *and* its work in the result."""
    script = tmp_path / "contract.py"
    script.write_text(
        "import pathlib, sys\nsys.stdin.read()\npathlib.Path('docs').mkdir(exist_ok=True)\n"
        "pathlib.Path('docs/api.md').write_text('GET /users\\n')\n",
        encoding="utf-8",
    )
    reader = tmp_path / "reader.py"
    reader.write_text("import sys\nopen('seen.txt', 'w').write(sys.stdin.read())\n")
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nagents:\n"
        f"  a: {{backend: command, command: {yaml_list([PYTHON, str(script)])}}}\n"
        f"  r: {{backend: command, command: {yaml_list([PYTHON, str(reader)])}}}\n"
        f"tasks:\n  contract: {{agent: a, prompt: x, writes: {writes}, output: docs/api.md}}\n"
        "  ui: {agent: r, prompt: 'The contract: {{ tasks.contract.output }}',"
        " writes: [seen.txt]}\n",
    )
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    tasks = {t["id"]: t for t in result["tasks"]}
    assert tasks["contract"]["output"] == "GET /users\n"
    assert tasks["contract"]["changed_files"] == ["docs/api.md"]
    assert repo.show(result["branch"], "docs/api.md") == "GET /users\n"
    assert repo.show(result["branch"], "seen.txt") == "The contract: GET /users\n"


def test_an_output_file_not_written_fails_the_attempt_and_the_retry_is_told(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """A dependant was handed the agent's stdout, with no word, when the file the plan
    names as the output was never written; the output keeps the file's CRLF and is cut
    at the cap stdout has (it went whole, 3 MB, into prompts and the state)."""
    script = tmp_path / "late.py"
    script.write_text(
        "import os, pathlib, sys\nprompt = sys.stdin.read()\nprint('chatter on stdout')\n"
        "if os.environ['PLAIT_ATTEMPT'] == '2':\n"
        "    assert 'did not write out/api.md' in prompt, prompt\n"
        "    pathlib.Path('out').mkdir()\n"
        "    pathlib.Path('out/api.md').write_bytes(b'GET /\\r\\n' + b'x' * (2 << 20))\n",
        encoding="utf-8",
    )
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nagents:\n"
        f"  a: {{backend: command, command: {yaml_list([PYTHON, str(script)])}}}\n"
        "tasks:\n  api: {agent: a, prompt: x, writes: [src/**], output: out/api.md, retries: 1}\n",
    )
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)
    (task,) = run["tasks"]
    assert (task["status"], task["attempts"]) == ("succeeded", 2)
    assert task["output"].startswith("GET /\r\nxxx")
    assert task["output"].endswith("[plait: the output was cut here, at its first 1 MiB]")
    assert len(task["output"]) < (1 << 20) + 100
    log = plait_proc("logs", run["run"], "api", "--attempt", "1", cwd=repo.path).stdout
    assert "chatter on stdout" in log

    script.write_text("import sys\nsys.stdin.read()\nprint('only stdout')\n", encoding="utf-8")
    failed = plait_proc("run", "--json", cwd=repo.path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (task,) = json.loads(failed.stdout)["tasks"]
    assert task["status"] == "failed"
    assert task["error"] == "did not write its output file out/api.md (the plan's `output`)"


# --- the plan's verify with isolation: none ------------------------------------------


def _in_place_fixer_plan(repo: GitRepo, tmp_path: Path, kill_in: str) -> Path:
    """`_fixer_plan` with `isolation: none`: everything runs in the checkout itself."""
    ledger = _fixer_plan(repo, tmp_path, kill_in)
    plan = repo.path / "plait.yaml"
    plan.write_text("isolation: none\n" + plan.read_text(encoding="utf-8"), encoding="utf-8")
    return ledger


def test_in_place_the_plans_verify_runs_in_the_checkout_and_the_fixer_too(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    ledger = _in_place_fixer_plan(repo, tmp_path, "no kill")
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    # The check failed (fixed.txt missing), the fixer wrote it in the checkout, and the
    # check run again there (cwd = the repository's root) found it.
    assert ledger.read_text().split() == ["verify", "fixer", "1", "verify"]
    assert (repo.path / "fixed.txt").read_text() == "ok\n"
    assert (repo.path / "t.txt").read_text() == "done\n"
    result = json.loads(done.stdout)
    assert result["verify"]["ok"] is True and result["verify"]["commit"] is None
    assert {t["id"]: t["status"] for t in result["tasks"]} == {
        "t": "succeeded",
        "fix-verify": "succeeded",
    }
    prompt = Path(f"{ledger}.fixer-1.prompt").read_text()
    assert "The plan's checks failed on the checkout" in prompt
    assert "CHECK-FAILED: fixed.txt is missing" in prompt
    # status says the pass came after the fixer ("passed" alone hid the failure)
    shown = plait_proc("status", cwd=repo.path).stdout
    assert "verify: passed, after fix-verify (its first run failed)" in shown, shown


def test_in_place_a_failing_verify_fails_the_run_within_its_time_limit(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
isolation: none
verify: ["sh", "-c", "echo verifying in $(pwd); sleep 40"]
defaults: {{timeout: 2s}}
agents:
  a: {{backend: command, command: {_agent(tmp_path)}}}
tasks:
  t: {{agent: a, prompt: x, env: {{WRITE: t.txt}}}}
""",
    )
    started = time.monotonic()
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < 25
    verify = json.loads(done.stdout)["verify"]
    assert verify["ok"] is False
    assert f"verifying in {repo.path.resolve()}" in verify["output"]
    assert "timed out after 2.0s" in verify["output"]
    status = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)
    assert status["status"] == "failed" and status["verify"]["ok"] is False


def test_in_place_a_run_killed_in_the_fixer_checks_again_then_resumes_the_fixer(
    repo: GitRepo, plait_proc: PlaitProc, plait_home: Path, tmp_path: Path
) -> None:
    """A checkout is no commit: the failure recorded before the kill may no longer be
    what it holds, so resume runs the check again before the fixer's next attempt."""
    ledger = _in_place_fixer_plan(repo, tmp_path, "fixer")
    killed = plait_proc("run", cwd=repo.path)
    assert killed.returncode == -9, killed.stderr
    resumed = plait_proc("resume", cwd=repo.path)
    assert resumed.returncode == 0, resumed.stderr
    run = ["verify", "fixer", "1"]
    assert ledger.read_text().split() == [*run, "verify", "fixer", "2", "verify"]
    assert _tasks(plait_home, _run_id(plait_home))["fix-verify"][:2] == ("succeeded", 2)


# --- a failed task's work ----------------------------------------------------------------


def test_status_says_where_a_failed_tasks_work_is_kept(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """The README says a failed attempt's worktree stays for you to look at, but nothing
    said where: every task's `branch` was null, and status named neither."""
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nagents:\n"
        "  w: {backend: command, command: [sh, -c, 'echo hi > x; echo y > allowed.txt']}\n"
        "tasks:\n  a: {agent: w, prompt: x, writes: [allowed.txt]}\n",
    )
    repo.commit("plan")
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 1, done.stdout + done.stderr
    (task,) = json.loads(done.stdout)["tasks"]
    kept = Path(task["workspace"])
    assert (kept / "x").read_text() == "hi\n" and (kept / "allowed.txt").exists()
    assert task["branch"] == f"plait/tasks/{json.loads(done.stdout)['run']}/a"
    assert repo.show(task["branch"], "allowed.txt") == "y\n"
    shown = plait_proc("status", cwd=repo.path).stdout
    assert f"its work: {kept} (branch {task['branch']})" in shown
    assert plait_proc("clean", cwd=repo.path).returncode == 0
    (after,) = json.loads(plait_proc("status", "--json", cwd=repo.path).stdout)["tasks"]
    assert after["workspace"] is None  # gone: not shown


def test_a_verify_that_passed_at_once_says_nothing_of_a_fixer(
    repo: GitRepo, plait_proc: PlaitProc
) -> None:
    """A task that happens to be named fix-verify (no `on_verify_failure`) made status
    say the verify passed "after fix-verify (its first run failed)"."""
    write_plan(
        repo.path / "plait.yaml",
        "version: 1\nverify: 'true'\n"
        "agents: {w: {backend: command, command: [sh, -c, 'echo a > a.txt']}}\n"
        "tasks: {fix-verify: {agent: w, prompt: x, writes: [a.txt]}}\n",
    )
    done = plait_proc("run", cwd=repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = plait_proc("status", cwd=repo.path).stdout
    assert "verify: passed\n" in shown, shown
