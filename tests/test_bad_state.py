"""A state plait cannot use (a corrupt state.db, a PLAIT_HOME that cannot be a folder)
is "the environment is wrong": exit 3 and one line naming the path, never a traceback.

Through the real CLI: `status`, `run --json` (one JSON error object) and `clean`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CliResult, PlaitProc, agent_cmd, write_plan
from gitrepo import GitRepo
from plait.errors import EnvironmentProblem
from plait.store import Store

Cli = Callable[..., CliResult]

PLAN = f"""\
version: 1
name: bad-state
agents:
  stamp:
    backend: command
    command: {json.dumps(agent_cmd("stamp.py"))}
tasks:
  one:
    agent: stamp
    prompt: write a file
    writes: ["one.txt"]
"""


@pytest.fixture
def corrupt(plait_home: Path) -> Path:
    """A state.db that is not a database, where plait keeps this test's state."""
    plait_home.mkdir(parents=True)
    db = plait_home / "state.db"
    db.write_text("garbage\n")
    return db


def _one_line_about(result: CliResult, path: Path, *words: str) -> None:
    assert result.code == 3, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err  # one line, no traceback
    assert str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_corrupt_state_exits_3_for_status_run_and_clean(
    repo: GitRepo, cli: Cli, corrupt: Path
) -> None:
    write_plan(repo.path / "plait.yaml", PLAN)
    for argv in (["status"], ["clean"], ["run"]):
        result = cli(*argv, cwd=repo.path)
        _one_line_about(result, corrupt, "not a database", "PLAIT_HOME")
    assert corrupt.read_text() == "garbage\n"  # left for the person to look at
    assert repo.branches("plait/*") == []


def test_with_json_a_corrupt_state_is_one_json_error(
    repo: GitRepo, cli: Cli, corrupt: Path
) -> None:
    write_plan(repo.path / "plait.yaml", PLAN)
    for argv in (["run", "--json"], ["status", "--json"]):
        result = cli(*argv, cwd=repo.path)
        _one_line_about(result, corrupt, "not a database")
        error = json.loads(result.out)["error"]  # the whole of stdout is one object
        assert error["exit_code"] == 3
        assert str(corrupt) in error["message"]


def test_a_plait_home_that_is_a_file_exits_3(
    repo: GitRepo, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plan(repo.path / "plait.yaml", PLAN)
    file = tmp_path / "a-file"
    file.write_text("not a folder\n")
    for home, why in ((file, "not a folder"), (file / "under", "Not a directory")):
        monkeypatch.setenv("PLAIT_HOME", str(home))
        result = cli("run", "--json", cwd=repo.path)
        _one_line_about(result, home, why, "PLAIT_HOME")
        assert json.loads(result.out)["error"]["exit_code"] == 3
    monkeypatch.setenv("PLAIT_HOME", str(file))  # not "no runs here": it cannot be here
    for command in ("status", "resume", "clean"):  # (clean said nothing and exited 0)
        _one_line_about(cli(command, cwd=repo.path), file, "not a folder", "PLAIT_HOME")
    assert file.read_text() == "not a folder\n"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_plait_home_under_proc_exits_3(
    repo: GitRepo, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plan(repo.path / "plait.yaml", PLAN)
    home = Path("/proc/plait-state-test")  # /proc refuses every new folder
    monkeypatch.setenv("PLAIT_HOME", str(home))
    _one_line_about(cli("run", cwd=repo.path), home, "PLAIT_HOME")


def test_a_state_db_sqlite_cannot_open_exits_3(plait_home: Path) -> None:
    (plait_home / "state.db").mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(EnvironmentProblem) as caught:
        Store.open(plait_home)
    assert caught.value.exit_code == 3
    assert str(plait_home / "state.db") in caught.value.message
    assert "cannot open" in caught.value.message


def test_a_database_of_another_program_is_refused_not_overwritten(plait_home: Path) -> None:
    """A real SQLite file whose tables clash with plait's: the migration's own error
    becomes the same exit 3, and the file keeps its rows."""
    plait_home.mkdir()
    db = plait_home / "state.db"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE runs (something_else TEXT)")
        other.execute("INSERT INTO runs VALUES ('mine')")
    other.close()
    with pytest.raises(EnvironmentProblem, match="cannot open its state"):
        Store.open(plait_home)
    with sqlite3.connect(db) as again:
        assert again.execute("SELECT * FROM runs").fetchall() == [("mine",)]
    again.close()


def test_the_real_program_prints_no_traceback(
    repo: GitRepo, plait_proc: PlaitProc, corrupt: Path
) -> None:
    write_plan(repo.path / "plait.yaml", PLAN)
    done = plait_proc("run", "--json", cwd=repo.path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert json.loads(done.stdout)["error"]["exit_code"] == 3


def test_plan_shows_the_plan_without_history_when_the_state_is_unreadable(
    repo: GitRepo, cli: Cli, corrupt: Path
) -> None:
    """`plait plan` reads the state only for earlier durations: it needs none of it."""
    write_plan(repo.path / "plait.yaml", PLAN)
    shown = cli("plan", "--json", cwd=repo.path)
    assert shown.code == 0, shown.err
    assert [t["id"] for t in json.loads(shown.out)["tasks"]] == ["one"]
