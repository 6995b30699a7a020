"""The report's numbers against what a real run did: runs through the CLI with fake
agents that really sleep, then `plait report` (text, --json, --html) read back.

Each agent's behaviour comes from a JSON file ($AGENT_CFG): per task, how long each
attempt sleeps and whether it fails. It writes `<task>.txt` and marks its start in
$MARKS (outside the repository), so a test can wait for it.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from conftest import Cli, PlaitProc, write_plan, yaml_list
from gitrepo import GitRepo
from plait.proc import kill_marked
from plait.report_measured import covered, measured_critical_path, process_gaps

AGENT = """\
import json, os, sys, time
from pathlib import Path
task, attempt = os.environ["PLAIT_TASK_ID"], int(os.environ["PLAIT_ATTEMPT"])
sys.stdin.read()
Path(os.environ["MARKS"], f"{task}.{attempt}").write_text(str(time.time()))
cfg = json.loads(Path(os.environ["AGENT_CFG"]).read_text()).get(task, {})
sleeps = cfg.get("sleep", [0])
time.sleep(sleeps[min(attempt, len(sleeps)) - 1])
if cfg.get("fail"):
    sys.exit(1)
Path(f"{task}.txt").write_text(f"{task} {attempt}")
print(f"{task} done")
"""


def _setup(repo: GitRepo, tmp_path: Path, cfg: dict[str, Any], body: str) -> Path:
    """The agent, its config and a plan (`body`: everything after `agents:`)."""
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    marks = tmp_path / "marks"
    marks.mkdir()
    command = yaml_list([sys.executable, str(tmp_path / "agent.py")])
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: numbers
agents:
  fake: {{backend: command, command: {command}}}
defaults:
  env: {{AGENT_CFG: "{tmp_path / "cfg.json"}", MARKS: "{marks}"}}
{body}""",
    )
    return marks


def _report(cli: Cli, repo: GitRepo, *argv: str) -> dict[str, Any]:
    done = cli("report", *argv, "--json", cwd=repo.path)
    assert done.code == 0, done.err
    data: dict[str, Any] = json.loads(done.out)
    return data


def _html(cli: Cli, repo: GitRepo, *argv: str) -> str:
    done = cli("report", *argv, "--html", "r.html", cwd=repo.path)
    assert done.code == 0, done.err
    return (repo.path / "r.html").read_text(encoding="utf-8")


def _waits(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {t["id"]: t["waits"] for t in data["tasks"]}


# --- 1. the critical path is the run's, not the estimate's -------------------------------


def test_a_conflict_re_run_counts_toward_the_critical_path(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    """c conflicted with b and re-ran, so d waited for c; the path named b, whose work
    was longer than c's (the conflicted attempt is no part of c's work)."""
    (tmp_path / "agent.py").write_text(
        "import os, sys, time\nfrom pathlib import Path\nsys.stdin.read()\n"
        "task, n = os.environ['PLAIT_TASK_ID'], os.environ['PLAIT_ATTEMPT']\n"
        "time.sleep({'b': 0.6, 'c': 1.5 if n == '1' else 0.2}.get(task, 0.1))\n"
        "if task in ('b', 'c'):\n"
        "    Path('shared.txt').write_text(Path('shared.txt').read_text() + task + '\\n'"
        " if Path('shared.txt').exists() else task + '\\n')\n"
        "Path(task + '.txt').write_text(task)\n"
    )
    command = yaml_list([sys.executable, str(tmp_path / "agent.py")])
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: conflicted-path
agents: {{fake: {{backend: command, command: {command}}}}}
tasks:
  a: {{agent: fake, prompt: a}}
  b: {{agent: fake, prompt: b, needs: [a]}}
  c: {{agent: fake, prompt: c, needs: [a]}}
  d: {{agent: fake, prompt: d, needs: [b, c]}}
""",
    )
    done = cli("run", "-j", "4", "--json", cwd=repo.path)
    assert done.code == 0, done.err
    tasks = {t["id"]: t for t in json.loads(done.out)["tasks"]}
    assert tasks["c"]["attempts"] == 2  # it conflicted with b and re-ran
    assert tasks["b"]["duration_s"] > tasks["c"]["duration_s"]  # c's work alone is less
    assert _report(cli, repo)["critical_path"] == ["a", "c", "d"]


def test_the_critical_path_is_the_chain_that_took_longest(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    """Estimates say a → b → d; c really took longest, so the run's path is a → c → d."""
    cfg = {
        "a": {"sleep": [0.2]},
        "b": {"sleep": [0.3]},
        "c": {"sleep": [2.0]},
        "d": {"sleep": [0.2]},
    }
    _setup(
        repo,
        tmp_path,
        cfg,
        """\
tasks:
  a: {agent: fake, prompt: a, writes: [a.txt], estimate: 1s}
  b: {agent: fake, prompt: b, writes: [b.txt], estimate: 3s, needs: [a]}
  c: {agent: fake, prompt: c, writes: [c.txt], estimate: 1s, needs: [a]}
  d: {agent: fake, prompt: d, writes: [d.txt], estimate: 1s, needs: [b, c]}
""",
    )
    assert cli("run", "-j", "4", cwd=repo.path).code == 0
    plan = cli("plan", "-j", "4", cwd=repo.path)
    assert "critical path: a → b → d" in plan.out  # the estimate's, unchanged
    text = cli("report", cwd=repo.path)
    assert "critical path: a → c → d" in text.out, text.out
    assert "estimate: 5.0s, actual" in text.out  # the estimate is still the plan's
    assert _report(cli, repo)["critical_path"] == ["a", "c", "d"]
    page = _html(cli, repo)
    crit_bars = set(re.findall(r'class="bar [^"]*crit" data-task="([^"]+)"', page))
    assert crit_bars == {"a", "c", "d"}
    crit_edges = set(re.findall(r'class="edge crit" data-from="(\w)" data-to="(\w)"', page))
    assert crit_edges == {("a", "c"), ("c", "d")}


def test_the_estimate_is_the_one_the_run_was_scheduled_by(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    """A plan without `estimate:` is estimated from earlier runs: the second run is
    compared with what the first took, and the first keeps its (unknown) estimate."""
    cfg = {"a": {"sleep": [0.1]}, "b": {"sleep": [0.6]}}
    _setup(
        repo,
        tmp_path,
        cfg,
        """\
tasks:
  a: {agent: fake, prompt: a, writes: [a.txt]}
  b: {agent: fake, prompt: b, writes: [b.txt], needs: [a]}
""",
    )
    assert cli("run", cwd=repo.path).code == 0
    first = _report(cli, repo)["run"]
    assert cli("run", cwd=repo.path).code == 0
    second = _report(cli, repo)
    assert second["run"] != first
    # the first run's spans: b's estimate is its 0.6 s and more, not one default unit
    b_start, b_end = second["predicted"]["b"]["start_s"], second["predicted"]["b"]["finish_s"]
    assert 0.5 < b_end - b_start < 5, second["predicted"]
    assert 0.6 < second["predicted_makespan_s"] < 10
    assert "estimate: " in cli("report", cwd=repo.path).out
    # the first run had no history: still no estimate to compare it with
    assert _report(cli, repo, first)["predicted"] == {}
    assert "estimate: " not in cli("report", first, cwd=repo.path).out


# --- 2. a partner's merge holds its exclusive partner ------------------------------------


def test_time_held_by_an_exclusive_partners_merge_is_exclusion(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    """e2 goes first (larger estimate); its attempt ends after its verify, then its
    merge verifies for 1 s more: e1 waited all that time for e2, none for a slot."""
    cfg = {"e1": {"sleep": [0.1]}, "e2": {"sleep": [0.3]}}
    sleep = yaml_list([sys.executable, "-c", "import time; time.sleep(1)"])
    _setup(
        repo,
        tmp_path,
        cfg,
        f"""\
verify: {sleep}
verify_each_merge: true
tasks:
  e1: {{agent: fake, prompt: e1, writes: ["shared/**", e1.txt], estimate: 1s}}
  e2: {{agent: fake, prompt: e2, writes: ["shared/**", e2.txt], estimate: 2s, verify: {sleep}}}
""",
    )
    assert cli("run", "-j", "4", cwd=repo.path).code == 0
    data = _report(cli, repo)
    tasks = {t["id"]: t for t in data["tasks"]}
    attempts = {a["task"]: a for a in data["attempts"]}
    assert tasks["e2"]["end_s"] - attempts["e2"]["end_s"] > 0.8  # the merge's verify
    held = tasks["e1"]["start_s"] - tasks["e2"]["start_s"]
    waits = tasks["e1"]["waits"]
    assert waits["exclusion"] >= held - 0.1, waits
    assert waits.get("slots", 0.0) < 0.1, waits


# --- 3. the verify fixer was ready when the verify failed --------------------------------


def test_the_verify_fixer_is_not_held_from_the_runs_start(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    cfg = {"a": {"sleep": [1.0]}}
    check = yaml_list(
        [sys.executable, "-c", "import os, sys; sys.exit(not os.path.exists('fix-verify.txt'))"]
    )
    _setup(
        repo,
        tmp_path,
        cfg,
        f"""\
verify: {check}
on_verify_failure: {{agent: fake, prompt: mend it}}
tasks:
  a: {{agent: fake, prompt: a, writes: [a.txt]}}
""",
    )
    cli("run", cwd=repo.path)
    data = _report(cli, repo)
    fixer = {t["id"]: t for t in data["tasks"]}["fix-verify"]
    assert fixer["start_s"] > 1.0  # it ran after a and the failed verify
    assert fixer["lost_s"] < 0.3, fixer["waits"]
    assert "slots" not in fixer["waits"], fixer["waits"]
    assert 'class="wait" data-task="fix-verify"' not in _html(cli, repo)


# --- 4. an interruption, before and after its resume --------------------------------------


def test_an_interrupted_attempt_is_interrupted_not_running_nor_a_retry(
    repo: GitRepo, cli: Cli, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """-j 1: x runs (and would run long), y waits for the slot; plait is killed, and the
    run resumed a while later: x's first attempt was lost to the stop, not retried, and
    the time no plait ran is no slot y waited for."""
    cfg = {"x": {"sleep": [60, 0.3]}, "y": {"sleep": [0.3]}}
    marks = _setup(
        repo,
        tmp_path,
        cfg,
        """\
jobs: 1
tasks:
  x: {agent: fake, prompt: x, writes: [x.txt], estimate: 5s}
  y: {agent: fake, prompt: y, writes: [y.txt], estimate: 1s}
""",
    )
    first = plait_proc.start("run", cwd=repo.path)
    deadline = time.monotonic() + 30
    while not (marks / "x.1").exists():
        assert time.monotonic() < deadline, "x never started"
        time.sleep(0.05)
    run = json.loads(cli("runs", "--json", cwd=repo.path).out)[0]["run"]
    try:
        time.sleep(0.3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        kill_marked(f"{run}/", prefix=True)  # the killed run's orphaned agent

    stopped = _report(cli, repo)
    assert stopped["status"] == "interrupted"
    assert [(a["task"], a["status"]) for a in stopped["attempts"]] == [("x", "interrupted")]
    page = _html(cli, repo)
    assert "attempt 1 (first) · interrupted" in page and "· running" not in page

    time.sleep(1.0)  # nobody runs the run meanwhile
    assert cli("resume", cwd=repo.path).code == 0
    data = _report(cli, repo)
    waits = _waits(data)
    x1 = next(a for a in data["attempts"] if a["task"] == "x" and a["attempt"] == 1)
    assert "retry" not in waits["x"], waits
    assert abs(waits["x"]["interrupted"] - (x1["end_s"] - x1["start_s"])) < 0.01, waits
    # y was ready from the start; of its wait, the second and more between plait's
    # death and the resume was the interruption's, not a slot's
    assert waits["y"]["interrupted"] >= 0.9, waits
    y_start = next(t["start_s"] for t in data["tasks"] if t["id"] == "y")
    assert waits["y"].get("slots", 0.0) <= y_start - 0.9, waits
    lost = _html(cli, repo).split("<section id='lost'>")[1].split("</section>")[0]
    assert "<th>interrupted</th>" in lost and "<th>retry</th>" not in lost, lost


# --- 5. time saved; no duration for a task that never ran ---------------------------------


def test_the_report_says_time_saved_and_a_skipped_task_has_no_duration(
    repo: GitRepo, cli: Cli, tmp_path: Path
) -> None:
    cfg = {"a": {"sleep": [0.5]}, "b": {"sleep": [0.5]}, "bad": {"fail": True}}
    _setup(
        repo,
        tmp_path,
        cfg,
        """\
tasks:
  a: {agent: fake, prompt: a, writes: [a.txt]}
  b: {agent: fake, prompt: b, writes: [b.txt]}
  bad: {agent: fake, prompt: bad, writes: [bad.txt]}
  after: {agent: fake, prompt: after, writes: [after.txt], needs: [bad]}
""",
    )
    assert cli("run", "-j", "3", cwd=repo.path).code == 1
    data = _report(cli, repo)
    totals = data["totals"]
    assert totals["saved_s"] == totals["sequential_s"] - totals["wall_s"]
    tasks = {t["id"]: t for t in data["tasks"]}
    status = {t["id"]: t for t in json.loads(cli("status", "--json", cwd=repo.path).out)["tasks"]}
    assert tasks["after"]["outcome"] == "skipped"
    assert tasks["after"]["duration_s"] is None is status["after"]["duration_s"]
    assert tasks["a"]["duration_s"] == status["a"]["duration_s"]
    text = cli("report", cwd=repo.path).out
    assert re.search(r"saving -?[0-9.]+s \(-?\d+%\)", text), text
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("after"))
    assert row[2:6] == ["skipped", "0", "—", "—"], row  # no start, no duration
    assert re.search(r"<b>-?[0-9.]+s \(-?\d+%\)</b> saving", _html(cli, repo))


# --- the pure parts ----------------------------------------------------------------------


def test_measured_critical_path_follows_time_not_order() -> None:
    needs = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ()}
    durations = {"a": 1.0, "b": 3.0, "c": 5.0, "d": 1.0, "e": 2.0}
    assert measured_critical_path("abcde", needs, durations) == ("a", "c", "d")
    durations["b"] = 6.0
    assert measured_critical_path("abcde", needs, durations) == ("a", "b", "d")
    # a task that never ran is on no chain; ties go to the earlier task
    assert measured_critical_path("abcde", needs, {"a": 1, "b": 2, "c": 2}) == ("a", "b")
    assert measured_critical_path("abcde", needs, {}) == ()


def test_covered_counts_overlaps_once() -> None:
    assert covered(0.0, 10.0, [(2.0, 4.0), (3.0, 5.0), (9.0, 20.0)]) == 4.0
    assert covered(0.0, 1.0, []) == 0.0


def test_process_gaps() -> None:
    # ran 10 s from 100, resumed at 130 (10 s before); ran 5 s, resumed at 200
    assert process_gaps(100.0, [(130.0, 10.0), (200.0, 15.0)]) == [(110.0, 130.0), (135.0, 200.0)]
