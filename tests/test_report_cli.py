"""`plait report` and `plait plan --html` through the CLI, on a real run."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

from conftest import Cli, PlaitProc, agent_cmd, write_plan, yaml_list
from gitrepo import GitRepo
from plait.proc import kill_marked

AGENT = [
    sys.executable,
    "-c",
    "import os, sys; t = os.environ['PLAIT_TASK_ID']; "
    "open(t + '.txt', 'w').write(t); print('done ' + t)",
]


def _plan(repo: GitRepo) -> Path:
    return write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: reported
agents:
  writer:
    backend: command
    command: {yaml_list(AGENT)}
tasks:
  a:
    agent: writer
    prompt: write a
    writes: [a.txt]
    estimate: 2s
  b:
    agent: writer
    prompt: write b after a
    needs: [a]
    writes: [b.txt]
    estimate: 3s
  c:
    agent: writer
    prompt: write c
    writes: [c.txt]
    estimate: 1s
""",
    )


def _bars(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-task="([^"]+)" data-attempt="(\d+)"', html)


def test_plan_html_draws_the_estimate(repo: GitRepo, cli: Cli) -> None:
    _plan(repo)
    result = cli("plan", "--html", "plan.html", cwd=repo.path)
    assert result.code == 0, result.err
    page = (repo.path / "plan.html").read_text(encoding="utf-8")
    assert {task for task, _ in _bars(page)} == {"a", "b", "c"}
    assert "http://" not in page and "https://" not in page
    # b waits for a: its predicted bar starts where a's ends (2 s)
    b = re.search(r'data-task="b" data-attempt="1"[^>]*data-start="([0-9.]+)"', page)
    assert b is not None and float(b.group(1)) == 2.0


def test_report_after_a_run(repo: GitRepo, cli: Cli) -> None:
    _plan(repo)
    assert cli("run", cwd=repo.path).code == 0
    status = json.loads(cli("status", "--json", cwd=repo.path).out)
    text = cli("report", cwd=repo.path)
    assert text.code == 0, text.err
    assert "speed-up" in text.out and "3 succeeded" in text.out
    assert "estimate: " in text.out  # every task gave one: compared with the run
    data = json.loads(cli("report", "--json", cwd=repo.path).out)
    assert data["run"] == status["run"]
    assert {t["id"] for t in data["tasks"]} == {"a", "b", "c"}
    html = cli("report", status["run"], "--html", "report.html", cwd=repo.path)
    assert html.code == 0, html.err
    page = (repo.path / "report.html").read_text(encoding="utf-8")
    assert sorted(_bars(page)) == [("a", "1"), ("b", "1"), ("c", "1")]
    assert "<script src" not in page and "<link" not in page


def test_a_plan_without_estimates_is_not_compared_with_its_run(repo: GitRepo, cli: Cli) -> None:
    """One default unit per task (no `estimate:`, no history) says nothing of the run's
    length: the report makes no "actual -98%" comparison from it."""
    plan = _plan(repo)
    plan.write_text(
        "\n".join(x for x in plan.read_text().splitlines() if "estimate:" not in x) + "\n"
    )
    assert cli("run", cwd=repo.path).code == 0
    text = cli("report", cwd=repo.path)
    assert text.code == 0, text.err
    assert "speed-up" in text.out
    assert "estimate: " not in text.out and "actual" not in text.out


def test_report_with_no_runs_says_so(repo: GitRepo, cli: Cli) -> None:
    result = cli("report", cwd=repo.path)
    assert result.code == 2
    assert "no plait runs" in result.err or "no runs" in result.err


# --- paths the user names for output ---------------------------------------------------


def test_an_unusable_output_path_exits_2_in_one_line_and_writes_nothing(
    repo: GitRepo, cli: Cli, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    _plan(repo)
    assert cli("run", cwd=repo.path).code == 0
    (repo.path / "notes.txt").write_text("a file, not a folder\n")
    missing = tmp_path / "no-such-folder" / "x.html"
    before = _files(tmp_path)
    cases = [
        ("plan", "--html", str(missing)),
        ("plan", "--html", "."),
        ("plan", "--html", "notes.txt/x.html"),
        ("report", "--html", str(missing)),
        ("report", "--html", "."),
        ("report", "--json", "--html", str(repo.path)),
        ("demo", "--keep", "notes.txt"),
        ("demo", "--keep", "notes.txt/inside"),
    ]
    for argv in cases:
        done = plait_proc(*argv, cwd=repo.path)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, argv
        assert len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
        assert argv[-1] in done.stderr, (argv, done.stderr)
        # refused before anything was shown (with --json: only the error, as JSON)
        if "--json" in argv:
            assert set(json.loads(done.stdout)) == {"error"}, (argv, done.stdout)
        else:
            assert done.stdout == "", argv
    assert _files(tmp_path) == before


def test_demo_never_writes_over_an_earlier_demo(plait_proc: PlaitProc, tmp_path: Path) -> None:
    shop = tmp_path / "kept" / "shop"
    shop.mkdir(parents=True)
    (shop / "mine.txt").write_text("an earlier demo, or anything else\n")
    done = plait_proc("demo", "--keep", str(tmp_path / "kept"), cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "exists already" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in shop.iterdir()] == ["mine.txt"]


def _files(root: Path) -> dict[str, int]:
    """Every file and folder under `root` but plait's state, with its mtime."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if "plait-home" not in p.parts and ".git" not in p.parts
    }


# --- a run whose plait was killed -------------------------------------------------------


def test_report_of_a_crashed_run_says_interrupted_as_status_does(
    repo: GitRepo, cli: Cli, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
name: crashed
agents:
  sleeper:
    backend: command
    command: {yaml_list(agent_cmd("sleeper.py"))}
tasks:
  nap:
    agent: sleeper
    prompt: x
    writes: [nap.txt]
    env: {{SLEEP: "60", STARTED: "{started}"}}
  after:
    agent: sleeper
    prompt: x
    needs: [nap]
    writes: [after.txt]
    env: {{SLEEP: "0", STARTED: "{tmp_path / "after"}"}}
""",
    )
    first = plait_proc.start("run", cwd=repo.path)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "the agent never started"
        time.sleep(0.05)
    run = json.loads(cli("runs", "--json", cwd=repo.path).out)[0]["run"]
    try:
        time.sleep(0.5)  # the run lives a while before it is killed
        first.send_signal(signal.SIGKILL)  # no chance to record its end
        first.wait(timeout=30)
        time.sleep(0.3)  # the clock goes on; the run's wall time must not

        status = json.loads(cli("status", "--json", cwd=repo.path).out)
        assert status["status"] == "interrupted"
        # its task was under way when plait died: nothing runs it now
        shown = {t["id"]: t["status"] for t in status["tasks"]}
        assert shown == {"nap": "interrupted", "after": "pending"}, status["tasks"]
        runs = json.loads(cli("runs", "--json", cwd=repo.path).out)
        assert [r["status"] for r in runs] == ["interrupted"]
        assert runs[0]["wall_s"] == status["wall_s"]

        text = cli("report", cwd=repo.path)
        assert text.code == 0, text.err
        assert f"run {run} (crashed) · interrupted" in text.out
        assert "speed-up —" in text.out and "0.00×" not in text.out
        assert "actual -100%" not in text.out
        data = json.loads(cli("report", "--json", cwd=repo.path).out)
        assert data["status"] == "interrupted"
        assert data["wall_s"] == status["wall_s"] == status["totals"]["wall_s"]
        assert data["totals"]["speedup"] is None
        # it stopped when plait died: not 0, not growing with the clock
        assert 0 < data["wall_s"] < time.time() - status["started_at"] - 0.2
        again = json.loads(cli("status", "--json", cwd=repo.path).out)
        assert again["wall_s"] == status["wall_s"]
        page = cli("report", "--html", "crashed.html", cwd=repo.path)
        assert page.code == 0, page.err
        html = (repo.path / "crashed.html").read_text(encoding="utf-8")
        assert f"run {run} · interrupted" in html and f"run {run} · running" not in html
    finally:
        kill_marked(f"{run}/", prefix=True)  # the killed run's orphaned agent
