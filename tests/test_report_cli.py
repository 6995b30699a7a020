"""`plait report` and `plait plan --html` through the CLI, on a real run."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from conftest import Cli, write_plan, yaml_list
from gitrepo import GitRepo

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
    data = json.loads(cli("report", "--json", cwd=repo.path).out)
    assert data["run"] == status["run"]
    assert {t["id"] for t in data["tasks"]} == {"a", "b", "c"}
    html = cli("report", status["run"], "--html", "report.html", cwd=repo.path)
    assert html.code == 0, html.err
    page = (repo.path / "report.html").read_text(encoding="utf-8")
    assert sorted(_bars(page)) == [("a", "1"), ("b", "1"), ("c", "1")]
    assert "<script src" not in page and "<link" not in page


def test_report_with_no_runs_says_so(repo: GitRepo, cli: Cli) -> None:
    result = cli("report", cwd=repo.path)
    assert result.code == 2
    assert "no plait runs" in result.err or "no runs" in result.err
