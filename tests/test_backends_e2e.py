"""Real agent backends through whole runs: `plait run`, `status --json`, `report`.

The fake vendor CLIs of tests/fakeclis/ (`claude`, `codex`, ...) are first on PATH,
as the real ones would be; plait runs as a subprocess (`python -m plait`) in a temp
git repository with PLAIT_HOME in tmp_path. Per-task behaviour of a fake (its final
message, its cost, files it writes, a rate limit on the first call) comes from the
plan's `env:`, which is what reaches the agent through plait's environment allowlist.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gitrepo import GitRepo, git_identity
from plait.store import Store

FAKES = Path(__file__).parent / "fakeclis"


class Rig:
    """One repository with the fake CLIs first on PATH, and the calls a person makes."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.home = tmp / "plait-home"
        git_identity(monkeypatch)
        monkeypatch.setenv("PLAIT_HOME", str(self.home))
        # A `python3` link to this interpreter first, so the fakes' shebang is fast.
        pybin = tmp / "pybin"
        pybin.mkdir()
        (pybin / "python3").symlink_to(sys.executable)
        monkeypatch.setenv("PATH", os.pathsep.join([str(pybin), str(FAKES), "/usr/bin", "/bin"]))
        for name in [k for k in os.environ if k.startswith("FAKECLI_")]:
            monkeypatch.delenv(name)
        self.repo = GitRepo.create(tmp / "repo")

    def plait(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`python -m plait ...` in the repository."""
        return subprocess.run(
            [sys.executable, "-m", "plait", *argv],
            cwd=self.repo.path,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def plan(self, text: str) -> Path:
        path = self.repo.path / "plait.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, *args: str) -> tuple[int, str, str, str | None]:
        """`plait run --json`: exit code, stdout, stderr, and the run id if one started."""
        done = self.plait("run", "--json", *args)
        run_id = None
        if done.stdout.strip().startswith("{"):
            run_id = json.loads(done.stdout)["run"]
        return done.returncode, done.stdout, done.stderr, run_id

    def status(self, run_id: str) -> dict[str, Any]:
        done = self.plait("status", run_id, "--json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def attempts(self, run_id: str) -> list[Any]:
        with Store.open(self.home) as store:
            return list(store.attempts(run_id))

    def events(self, run_id: str) -> list[dict[str, Any]]:
        with Store.open(self.home) as store:
            return store.events(run_id)

    def recorded(self, name: str) -> dict[str, Any]:
        """What a fake recorded (its FAKECLI_RECORD file under tmp), stdin decoded."""
        doc: dict[str, Any] = json.loads((self.tmp / name).read_text(encoding="utf-8"))
        doc["stdin"] = base64.b64decode(doc["stdin_b64"]).decode("utf-8")
        return doc


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    return Rig(tmp_path, monkeypatch)


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in data["tasks"]}


# --- 1 + 2: a mixed plan, outputs, files, cost and tokens ------------------------------

CONTRACT = "CONTRACT: GET /users returns [{id, name}] <&> 'quoted' $(touch nope)"

NOTES_AGENT = """\
import os, sys
prompt = sys.stdin.read()
with open(os.path.join(os.environ["RECORD_DIR"], "notes-stdin.txt"), "w") as f:
    f.write(prompt)
with open("notes.txt", "w") as f:
    f.write("notes by the command agent\\n")
print("notes written")
"""


def mixed_plan(tmp: Path) -> str:
    script = tmp / "notes_agent.py"
    script.write_text(NOTES_AGENT, encoding="utf-8")
    rec = str(tmp)
    contract = json.dumps(CONTRACT)  # a JSON string is a YAML double-quoted scalar
    return f"""\
version: 1
name: mixed
jobs: 3
agents:
  architect:
    backend: claude
    model: opus
    instructions: You design APIs and write them down as contracts.
  coder:
    backend: codex
  scribe:
    backend: command
    command: ["{sys.executable}", "{script}", "{{task}}"]
tasks:
  contract:
    agent: architect
    prompt: Define the users API in docs/api.md.
    writes: [docs/api.md]
    env:
      FAKECLI_RESULT: {contract}
      FAKECLI_WRITE: docs/api.md
      FAKECLI_COST: "0.5"
      FAKECLI_RECORD: {rec}/contract.json
  impl:
    agent: coder
    prompt: |
      Implement the users endpoint. The contract:
      {{{{ tasks.contract.output }}}}
    writes: ["src/**"]
    env:
      FAKECLI_WRITE: src/users.py
      FAKECLI_RECORD: {rec}/impl.json
  flaky:
    agent: architect
    prompt: Write the changelog entry.
    writes: [CHANGELOG.md]
    retries: 1
    env:
      FAKECLI_MODES: error,success
      FAKECLI_COUNTER: {rec}/flaky.count
      FAKECLI_COST: "0.25"
      FAKECLI_WRITE: CHANGELOG.md
  notes:
    agent: scribe
    needs: [contract]
    prompt: |
      Summarise: {{{{ tasks.contract.output }}}}
    writes: [notes.txt]
    env:
      RECORD_DIR: {rec}
"""


def test_mixed_plan_runs_end_to_end_with_outputs_files_cost_and_tokens(rig: Rig) -> None:
    rig.plan(mixed_plan(rig.tmp))
    code, out, err, run_id = rig.run()
    assert code == 0, out + err
    assert run_id is not None
    data = rig.status(run_id)
    tasks = by_id(data)
    assert {t: tasks[t]["status"] for t in tasks} == dict.fromkeys(
        ("contract", "impl", "flaky", "notes"), "succeeded"
    )

    # The Claude task's final message is its output, and reaches both dependants'
    # prompts through the template: the codex fake's and the command agent's stdin.
    assert tasks["contract"]["output"] == CONTRACT
    impl_seen = rig.recorded("impl.json")
    assert CONTRACT in impl_seen["stdin"]
    assert impl_seen["argv"][:2] == ["exec", "--json"]
    notes_stdin = (rig.tmp / "notes-stdin.txt").read_text(encoding="utf-8")
    assert notes_stdin.strip() == f"Summarise: {CONTRACT}"
    assert tasks["impl"]["output"] == "FINAL: done"
    assert tasks["notes"]["output"] == "notes written"
    assert not (rig.repo.path / "nope").exists()

    # Claude got its role: model, permission and instructions as flags, prompt on stdin.
    contract_seen = rig.recorded("contract.json")
    argv = contract_seen["argv"]
    assert argv[:5] == ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode"]
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[argv.index("--append-system-prompt") + 1].startswith("You design APIs")
    assert contract_seen["stdin"] == "Define the users API in docs/api.md."

    # Files the agents wrote are merged into plait/<run>; the user's branch is untouched.
    branch = f"plait/{run_id}"
    assert data["branch"] == branch
    assert rig.repo.show(branch, "docs/api.md").startswith("written by claude")
    assert rig.repo.show(branch, "src/users.py").startswith("written by codex")
    assert rig.repo.show(branch, "CHANGELOG.md") == "written by claude, attempt 2\n"
    assert rig.repo.show(branch, "notes.txt") == "notes by the command agent\n"
    assert not (rig.repo.path / "docs").exists()
    for task in ("contract", "impl", "flaky", "notes"):
        assert tasks[task]["merged"] is True

    # Cost and tokens, per attempt, exactly what the fakes reported.
    attempts = {(a.task_id, a.attempt): a for a in rig.attempts(run_id)}
    assert set(attempts) == {("contract", 1), ("impl", 1), ("flaky", 1), ("flaky", 2), ("notes", 1)}
    claude_in, claude_out = 100 + 20 + 30, 50  # fresh + cache writes + cache reads
    expected = {
        ("contract", 1): (0.5, claude_in, claude_out, "ok"),
        ("flaky", 1): (0.25, claude_in, claude_out, "failed"),
        ("flaky", 2): (0.25, claude_in, claude_out, "ok"),
        ("impl", 1): (None, 1200, 345, "ok"),  # codex reports tokens, never a cost
        ("notes", 1): (None, None, None, "ok"),  # a command agent reports nothing
    }
    for key, (cost, tin, tout, status) in expected.items():
        row = attempts[key]
        assert (row.cost_usd, row.input_tokens, row.output_tokens, row.status) == (
            cost,
            tin,
            tout,
            status,
        ), key
    assert attempts[("contract", 1)].session_id == "sess-claude-1"
    assert attempts[("impl", 1)].session_id == "thr-codex-1"

    # Per task: the sum of its attempts; totals: the sum of the tasks.
    assert tasks["contract"]["cost_usd"] == 0.5
    assert tasks["flaky"]["cost_usd"] == 0.5  # both attempts cost
    assert tasks["flaky"]["attempts"] == 2
    assert tasks["impl"]["cost_usd"] is None
    assert tasks["notes"]["cost_usd"] is None
    assert tasks["contract"]["tokens"] == 200
    assert tasks["flaky"]["tokens"] == 400
    assert tasks["impl"]["tokens"] == 1545
    assert tasks["notes"]["tokens"] is None
    assert data["totals"]["cost_usd"] == 1.0
    assert data["totals"]["tokens"] == 2145
    run_json = json.loads(out)
    assert run_json["totals"]["cost_usd"] == 1.0

    # The human summary and the report say what it cost.
    text = rig.plait("status", run_id)
    assert "cost $1.00" in text.stdout
    report = rig.plait("report", run_id)
    assert report.returncode == 0, report.stderr
    assert "cost $1.00" in report.stdout


# --- 3: budget ----------------------------------------------------------------------------


def test_budget_stops_new_attempts_lets_running_ones_finish(rig: Rig) -> None:
    rec = rig.tmp
    rig.plan(
        f"""\
version: 1
name: budget
jobs: 2
budget_usd: 0.5
agents:
  dev:
    backend: claude
tasks:
  spender:
    agent: dev
    prompt: Spend most of the budget.
    writes: [a.txt]
    env: {{FAKECLI_COST: "0.75", FAKECLI_WRITE: a.txt}}
  long:
    agent: dev
    prompt: Take a while.
    writes: [b.txt]
    env: {{FAKECLI_COST: "0.125", FAKECLI_WRITE: b.txt, FAKECLI_SLEEP: "2"}}
  zlater:
    agent: dev
    prompt: Never starts.
    writes: [c.txt]
    env: {{FAKECLI_RECORD: {rec}/zlater.json}}
  after:
    agent: dev
    needs: [spender]
    prompt: Never starts either.
    env: {{FAKECLI_RECORD: {rec}/after.json}}
"""
    )
    code, out, err, run_id = rig.run("-j", "2")
    assert code == 1, out + err
    assert run_id is not None
    assert "budget" in err and "$0.50" in err
    assert "report none" not in err  # claude reports its cost: the budget sees it all
    data = rig.status(run_id)
    tasks = by_id(data)
    # The attempt running when the budget ran out went on to the end and was merged.
    assert tasks["spender"]["status"] == "succeeded"
    assert tasks["long"]["status"] == "succeeded"
    assert tasks["long"]["merged"] is True
    assert rig.repo.show(f"plait/{run_id}", "b.txt").startswith("written by claude")
    # Nothing new started: no attempt row, the fake never ran.
    assert tasks["zlater"]["status"] == "cancelled"
    assert tasks["after"]["status"] == "cancelled"
    # each says why (the budget), not just "run stopped"
    assert tasks["zlater"]["error"] == "not started: the budget of $0.50 was spent"
    rows = {a.task_id: a for a in rig.attempts(run_id)}
    assert set(rows) == {"spender", "long"}
    # `long` was mid-attempt when `spender` spent the budget, and still finished.
    spent_at = rows["spender"].finished_at or 0
    assert rows["long"].started_at < spent_at < (rows["long"].finished_at or 0)
    assert not (rec / "zlater.json").exists()
    assert not (rec / "after.json").exists()
    assert data["status"] == "failed"
    assert data["totals"]["cost_usd"] == 0.875


def test_a_spent_budget_ends_a_rate_limit_wait_and_cost_shows_as_it_is_spent(
    rig: Rig,
) -> None:
    """A task waiting out a reset an hour away sat out the whole wait after the budget
    was gone, only to be cancelled; and what a task's finished attempts had cost was in
    no row until the task ended."""
    rig.plan(
        f"""\
version: 1
name: budget-wait
jobs: 2
budget_usd: 0.5
agents:
  dev: {{backend: claude}}
  coder: {{backend: codex}}
tasks:
  limited:
    agent: coder
    prompt: Refused for an hour.
    env: {{FAKECLI_MODES: ratelimit, FAKECLI_COUNTER: {rig.tmp}/l.count, FAKECLI_RESET_S: "3600"}}
  spender:
    agent: dev
    prompt: Fail once at a cost, then spend the rest.
    retries: 1
    env:
      FAKECLI_MODES: error,success
      FAKECLI_COUNTER: {rig.tmp}/s.count
      FAKECLI_COST: "0.375"
      FAKECLI_SLEEP: "1.5"
"""
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "--json"], cwd=rig.repo.path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    costs: list[float | None] = []
    while run.poll() is None:
        done = rig.plait("status", "--json") if (rig.home / "state.db").exists() else None
        if done is not None and done.returncode == 0:
            task = by_id(json.loads(done.stdout))["spender"]
            if task["status"] == "running" and task["attempts"] == 2:
                costs.append(task["cost_usd"])
        time.sleep(0.2)
    out, err = run.communicate()
    assert run.returncode == 1, out + err
    # The first attempt's cost was in the task's row while its retry worked.
    assert 0.375 in costs, costs
    tasks = by_id(json.loads(out))
    assert tasks["spender"]["cost_usd"] == 0.75
    assert tasks["limited"]["status"] == "cancelled"
    assert "budget" in tasks["limited"]["error"]
    # Not an hour: the wait ended when the budget was spent.
    assert json.loads(out)["wall_s"] < 60
    # codex reports no cost: said at the start and the end, as the budget cannot see it
    said = "budget_usd counts only the cost agents report, and these report none: coder (codex)"
    assert said in err


# --- 4: rate limits -----------------------------------------------------------------------

SLEEPER = """\
import sys, time
time.sleep(float(sys.argv[1]))
print("slept")
"""


def test_rate_limits_wait_the_reported_time_and_lower_jobs(rig: Rig) -> None:
    sleeper = rig.tmp / "sleeper.py"
    sleeper.write_text(SLEEPER, encoding="utf-8")
    rec = rig.tmp
    rig.plan(
        f"""\
version: 1
name: limits
jobs: 3
agents:
  coder: {{backend: codex}}
  writer: {{backend: claude}}
  worker:
    backend: command
    command: ["{sys.executable}", "{sleeper}", "0.2"]
tasks:
  l1:
    agent: coder
    prompt: Hit the limit once.
    writes: [l1.txt]
    retries: 0
    env:
      FAKECLI_MODES: ratelimit,success
      FAKECLI_COUNTER: {rec}/l1.count
      FAKECLI_RESET_S: "1.5"
      FAKECLI_WRITE: l1.txt
  l2:
    agent: writer
    prompt: Hit the limit once too.
    writes: [l2.txt]
    env:
      FAKECLI_MODES: ratelimit,success
      FAKECLI_COUNTER: {rec}/l2.count
      FAKECLI_RESET_S: "1.5"
      FAKECLI_WRITE: l2.txt
  follow:
    agent: worker
    prompt: "After: {{{{ tasks.l1.output }}}}"
  w1: {{agent: worker, prompt: one}}
  w2: {{agent: worker, prompt: two}}
  w3: {{agent: worker, prompt: three}}
"""
    )
    code, out, err, run_id = rig.run()
    assert code == 0, out + err
    assert run_id is not None
    tasks = by_id(rig.status(run_id))
    assert all(t["status"] == "succeeded" for t in tasks.values()), tasks
    branch = f"plait/{run_id}"
    assert rig.repo.show(branch, "l1.txt").startswith("written by codex")
    assert rig.repo.show(branch, "l2.txt").startswith("written by claude")

    events = rig.events(run_id)
    waits = {e["task"]: e["wait_s"] for e in events if e["kind"] == "rate_limited"}
    # Codex said "try again in 1.5 seconds"; Claude gave the epoch second of the reset.
    assert waits["l1"] == 1.5
    assert 0.4 <= waits["l2"] <= 2.5
    for task in ("l1", "l2"):
        # Not a failure: no retries allowed, yet it succeeded on its second attempt.
        assert tasks[task]["attempts"] == 2
        rows = [a for a in rig.attempts(run_id) if a.task_id == task]
        assert [r.status for r in rows] == ["rate_limited", "ok"]
        assert [r.kind for r in rows] == ["first", "rate_limit"]
        assert "usage limit" in rows[0].error
        # The reset the agent announced was waited, not the default backoff of 5 s
        # (the upper bound only rules out minutes on a busy machine).
        gap = rows[1].started_at - (rows[0].finished_at or 0)
        assert waits[task] - 0.1 <= gap < 30, (task, gap)

    def at(kind: str, task: str | None = None, attempt: int | None = None) -> list[int]:
        return [
            i
            for i, e in enumerate(events)
            if e["kind"] == kind
            and (task is None or e.get("task") == task)
            and (attempt is None or e.get("attempt") == attempt)
        ]

    # The report counts the refused attempt and the wait for its reset as time lost to
    # the rate limit (it called the attempt a "retry", and the wait was nowhere).
    report = json.loads(rig.plait("report", run_id, "--json").stdout)
    lost = {x["id"]: x["waits"] for x in report["tasks"]}
    assert "retry" not in lost["l1"] and lost["l1"]["rate_limit"] >= 1.5, lost["l1"]
    # Each limit took one agent off what was running: 3 → 2 → 1.
    lowered = at("jobs_lowered")
    assert [events[i]["jobs"] for i in lowered] == [2, 1]
    # While both waited, their job slots ran the other tasks (they held them, and
    # nothing ran), one agent at a time: the jobs limit was 1.
    retried = min(at("attempt_started", "l1", 2) + at("attempt_started", "l2", 2))
    between = [events[i]["task"] for i in at("attempt_started") if lowered[-1] < i < retried]
    assert set(between) <= {"w1", "w2", "w3"} and between, between
    spans = [(a.started_at, a.finished_at or 0.0) for a in rig.attempts(run_id)]
    moments = sorted({start for start, _ in spans})
    waited_from = events[lowered[-1]]["t"]
    waited_to = events[retried]["t"]
    for moment in (m for m in moments if waited_from < m < waited_to):
        assert sum(start <= moment < end for start, end in spans) <= 1, moment
    # Their successes raised it back, one agent each, from the first one on (whichever
    # of the two waited less); the successes of tasks started before the limits do not.
    raised = at("jobs_raised")
    assert [events[i]["jobs"] for i in raised] == [2, 3]
    first_done = min(at("task_finished", "l1") + at("task_finished", "l2"))
    assert retried < raised[0] < first_done


def test_two_vendors_limited_in_turn_both_go_on(rig: Rig) -> None:
    """codex refused, jobs lowered to 1; claude refused while codex's wait ended: each
    waited in line for the slot the other had freed, and the run hung for ever."""
    rig.plan(
        f"""\
version: 1
name: two-limits
agents: {{coder: {{backend: codex}}, writer: {{backend: claude}}}}
tasks:
  a:
    agent: coder
    prompt: p
    env: {{FAKECLI_MODES: "ratelimit,success", FAKECLI_COUNTER: {rig.tmp}/a.n,
           FAKECLI_RESET_S: "1", FAKECLI_WRITE: a.txt}}
  c:
    agent: writer
    prompt: p
    env: {{FAKECLI_MODES: "ratelimit,success", FAKECLI_COUNTER: {rig.tmp}/c.n,
           FAKECLI_RESET_S: "1", FAKECLI_SLEEP: "3", FAKECLI_WRITE: c.txt}}
"""
    )
    done = rig.plait("run", "--json", timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [t["status"] for t in json.loads(done.stdout)["tasks"]] == ["succeeded"] * 2


def test_jobs_come_back_when_the_limited_task_gives_up(rig: Rig) -> None:
    """A limited task that then failed left the jobs lowered for the rest of the run: no
    success of its vendor was ever to come."""
    sleeper = rig.tmp / "sleeper.py"
    sleeper.write_text(SLEEPER, encoding="utf-8")
    workers = "".join(f"  w{n}: {{agent: worker, prompt: w, needs: [x]}}\n" for n in range(6))
    rig.plan(
        f"""\
version: 1
name: give-up
agents:
  coder: {{backend: codex}}
  worker: {{backend: command, command: ["{sys.executable}", "{sleeper}", "0.5"]}}
tasks:
  x: {{agent: worker, prompt: first}}
  l:
    agent: coder
    prompt: p
    env: {{FAKECLI_MODES: "ratelimit,error", FAKECLI_COUNTER: {rig.tmp}/l.n,
           FAKECLI_RESET_S: "0.2"}}
{workers}"""
    )
    code, out, err, run_id = rig.run("-j", "3")
    assert code == 1 and run_id is not None, out + err
    jobs = [(e["kind"], e["jobs"]) for e in rig.events(run_id) if e["kind"].startswith("jobs_")]
    assert jobs[0][0] == "jobs_lowered" and jobs[-1] == ("jobs_raised", 3), jobs


def test_status_shows_a_rate_limit_wait_and_when_it_ends(rig: Rig) -> None:
    """During the wait `plait status` showed the task "running" (hours, with Claude's
    resets): it is waiting, saying until when; its next attempt runs as usual."""
    rig.plan(
        f"""\
version: 1
name: wait
agents:
  coder: {{backend: codex}}
tasks:
  slow:
    agent: coder
    prompt: Refused once.
    env:
      FAKECLI_MODES: ratelimit,success
      FAKECLI_COUNTER: {rig.tmp}/slow.count
      FAKECLI_RESET_S: "3"
"""
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "--json"], cwd=rig.repo.path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen: list[tuple[str, str]] = []
    while run.poll() is None:
        if (rig.home / "state.db").exists():
            done = rig.plait("status", "--json")
            if done.returncode == 0:
                (task,) = json.loads(done.stdout)["tasks"]
                seen.append((task["status"], task["error"] or ""))
        time.sleep(0.2)
    run.communicate()
    assert run.returncode == 0
    waiting = [error for status, error in seen if status == "waiting"]
    assert waiting and all(e.startswith("rate limited; next attempt at ") for e in waiting), seen
    (task,) = json.loads(rig.plait("status", "--json").stdout)["tasks"]
    assert (task["status"], task["error"]) == ("succeeded", None)  # the note went with it


def test_a_limit_that_never_lifts_ends_the_task_after_its_waits(rig: Rig) -> None:
    """Refused again after every wait, a task retried for ever (23 attempts in 22 s, and
    still going, in review): it gives up after RATE_LIMIT_MAX_WAITS waits."""
    from plait.taskrun import RATE_LIMIT_MAX_WAITS

    rig.plan(
        f"""\
version: 1
name: never
agents:
  coder: {{backend: codex}}
tasks:
  stuck:
    agent: coder
    prompt: Always refused.
    env:
      FAKECLI_MODES: ratelimit
      FAKECLI_COUNTER: {rig.tmp}/stuck.count
      FAKECLI_RESET_S: "0.01"
"""
    )
    code, out, err, run_id = rig.run()
    assert code == 1, out + err
    assert run_id is not None
    task = by_id(rig.status(run_id))["stuck"]
    assert task["status"] == "errored" and "gave up" in task["error"], task
    assert task["attempts"] == RATE_LIMIT_MAX_WAITS + 1


@pytest.mark.parametrize("isolation", ["worktree", "none"])
def test_a_hook_written_by_an_attempt_that_ended_rate_limited_is_put_back(
    rig: Rig, isolation: str
) -> None:
    """A rate-limited attempt is not collected, so its agent's hook was never checked:
    after the task gave up it stayed in .git/hooks, to run on the user's next commit."""
    hook = rig.repo.common_dir / "hooks" / "pre-commit"
    rig.plan(
        f"""\
version: 1
name: hooked
isolation: {isolation}
agents:
  coder: {{backend: codex}}
tasks:
  stuck:
    agent: coder
    prompt: Always refused.
    env:
      FAKECLI_MODES: ratelimit
      FAKECLI_COUNTER: {rig.tmp}/stuck.count
      FAKECLI_RESET_S: "0.01"
      FAKECLI_WRITE: {hook}
"""
    )
    code, out, err, _ = rig.run()
    assert code == 1, out + err
    assert not hook.exists()
    assert "put back what an agent changed in git's own files: .git/hooks/pre-commit" in err


# --- cost and budget across an interruption ---------------------------------------------


def test_resume_keeps_what_earlier_attempts_spent(rig: Rig) -> None:
    """kill -9 mid-attempt, then `plait resume`: cost, tokens and budget carry over."""
    rec = rig.tmp
    rig.plan(
        f"""\
version: 1
name: resume-cost
budget_usd: 0.5
agents:
  dev: {{backend: claude}}
tasks:
  first:
    agent: dev
    prompt: Fail, hang, then succeed.
    writes: [a.txt]
    retries: 1
    env:
      FAKECLI_MODES: error,hang,success
      FAKECLI_COUNTER: {rec}/first.count
      FAKECLI_RECORD: {rec}/first.json
      FAKECLI_COST: "0.25"
      FAKECLI_WRITE: a.txt
  then:
    agent: dev
    needs: [first]
    prompt: Over the budget by now.
    env: {{FAKECLI_RECORD: {rec}/then.json}}
"""
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "--json"],
        cwd=rig.repo.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hung_pid = None
    try:
        deadline = time.monotonic() + 30
        counter = rec / "first.count"
        while not (counter.exists() and counter.read_text() == "2"):
            assert run.poll() is None and time.monotonic() < deadline, "never reached attempt 2"
            time.sleep(0.05)
        while rig.recorded("first.json")["invocation"] != 1:
            time.sleep(0.05)
        hung_pid = rig.recorded("first.json")["pid"]
        run.kill()  # kill -9 plait itself while attempt 2 hangs
        run.wait(timeout=30)
        done = rig.plait("resume", "--json")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
        if hung_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung_pid, signal.SIGKILL)  # resume should have ended it already
    data = json.loads(done.stdout)
    tasks = by_id(data)
    assert tasks["first"]["status"] == "succeeded"
    rows = [a for a in rig.attempts(data["run"]) if a.task_id == "first"]
    assert [(r.status, r.cost_usd) for r in rows] == [
        ("failed", 0.25),
        ("interrupted", None),
        ("ok", 0.25),
    ]
    # The task's cost is all its attempts, before and after the interruption.
    assert tasks["first"]["cost_usd"] == 0.5
    assert tasks["first"]["tokens"] == 400
    # ...and so is the budget: 0.5 spent in all, so `then` never starts.
    assert tasks["then"]["status"] == "cancelled"
    assert not (rec / "then.json").exists()
    assert done.returncode == 1
    assert "budget" in done.stderr
    assert data["totals"]["cost_usd"] == 0.5


# --- 5: what the real CLIs do in a new workspace --------------------------------------------


def test_fresh_workspaces_run_gemini_cursor_aider_and_claude_as_root(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each fake behaves as its real CLI does in a folder it has never seen: gemini exits
    # 55 and cursor-agent refuses (exit 0) unless told to trust it; aider leaves its
    # repo-map cache at the top and upgrades itself unless told not to look; Claude Code
    # run as root refuses full permissions unless IS_SANDBOX=1. Behind a proxy, too.
    monkeypatch.setenv("IS_SANDBOX", "1")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", "/etc/corp/ca.pem")
    rec = rig.tmp
    tasks = {
        "gem": ("gemini", "edit"),
        "cur": ("cursor", "edit"),
        "aid": ("aider", "edit"),
        "root": ("claude", "full"),
    }
    agents = "".join(
        f"  {name}-agent:\n    backend: {backend}\n    permission: {permission}\n"
        for name, (backend, permission) in tasks.items()
    )
    root_env = ", FAKECLI_ROOT: '1'"
    body = "".join(
        f"  {name}:\n    agent: {name}-agent\n    prompt: Write {name}.txt.\n"
        f"    writes: [{name}.txt]\n"
        f"    env: {{FAKECLI_WRITE: {name}.txt, FAKECLI_RECORD: {rec}/{name}.json"
        f"{root_env if name == 'root' else ''}}}\n"
        for name in tasks
    )
    rig.plan(f"version: 1\nname: fresh\njobs: 4\nagents:\n{agents}tasks:\n{body}")
    code, out, err, run_id = rig.run()
    assert code == 0, out + err
    assert run_id is not None
    data = by_id(rig.status(run_id))
    branch = f"plait/{run_id}"
    for name, (backend, _) in tasks.items():
        assert data[name]["status"] == "succeeded", data[name]
        assert data[name]["merged"] is True
        assert rig.repo.show(branch, f"{name}.txt").startswith("written by")
        env = rig.recorded(f"{name}.json")["env"]
        assert env["HTTPS_PROXY"] == "http://proxy.corp:3128", backend
        assert env["NODE_EXTRA_CA_CERTS"] == "/etc/corp/ca.pem", backend
    # aider's cache was neither committed nor held against its scope.
    files = rig.repo.git("ls-tree", "-r", "--name-only", branch).split()
    assert not [f for f in files if f.startswith(".aider")]


def test_tool_calls_an_agent_was_refused_show_in_status_and_events(rig: Rig) -> None:
    """Claude in edit mode was refused its edits and said it was done: the attempt
    passes (it exited 0) but its record and its event say what was refused."""
    rig.plan(
        "version: 1\nname: denied\nagents:\n  c:\n    backend: claude\n    permission: edit\n"
        "tasks:\n  t:\n    agent: c\n    prompt: Edit the files.\n    env: {FAKECLI_MODE: denied}\n"
    )
    code, out, err, run_id = rig.run()
    assert code == 0, out + err
    assert run_id is not None
    (attempt,) = rig.attempts(run_id)
    assert attempt.status == "ok"
    assert "refused" in attempt.error
    finished = [e for e in rig.events(run_id) if e["kind"] == "attempt_finished"]
    assert finished and "refused" in finished[0]["error"]
