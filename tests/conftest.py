"""Shared fixtures for end-to-end tests of `plait run` and friends.

- `git_env`: a git identity and no global/system git config (monkeypatched), and
  `PLAIT_HOME` pointed into `tmp_path`, so no test touches the machine's state.
- every test: `XDG_DATA_HOME` in `tmp_path`, where a run whose state is in `.git`
  puts its worktrees (never the real home's).
- `repo`: a fresh git repository under `tmp_path` (one commit on `main`).
- `cli`: runs `plait.cli.main([...])` in-process in a chosen directory and returns
  the exit code with what it printed.
- `plait_proc`: runs `python -m plait ...` as a real subprocess (blocking), or
  `plait_proc.start(...)` for one that keeps running.

Agent scripts live in `tests/agents/`; `agent_cmd("name.py", ...)` is the argv of one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gitrepo import GitRepo, git_identity

AGENTS_DIR = Path(__file__).parent / "agents"
PYTHON = sys.executable


def agent_cmd(script: str, *args: str) -> list[str]:
    """The argv of a test agent: this interpreter running `tests/agents/<script>`."""
    return [PYTHON, str(AGENTS_DIR / script), *args]


@dataclass
class CliResult:
    """What one CLI invocation returned and printed."""

    code: int
    out: str
    err: str


#: The type of the `cli` fixture.
Cli = Callable[..., CliResult]


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`XDG_DATA_HOME` for this test: worktrees of a run whose state is in `.git` go there."""
    path = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(path))
    return path


@pytest.fixture
def plait_home(tmp_path: Path) -> Path:
    """Where plait keeps its state in this test (PLAIT_HOME is set by `git_env`)."""
    return tmp_path / "plait-home"


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch, plait_home: Path) -> None:
    """Git identity, isolated git config, and PLAIT_HOME inside tmp_path."""
    git_identity(monkeypatch)
    monkeypatch.setenv("PLAIT_HOME", str(plait_home))


@pytest.fixture
def repo(tmp_path: Path, git_env: None) -> GitRepo:
    """A git repository with one commit, at `tmp_path/repo`."""
    return GitRepo.create(tmp_path / "repo")


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """`cli(*argv, cwd=path)`: run `plait.cli.main` in-process in `cwd`."""
    from plait.cli import main

    def invoke(*argv: str, cwd: Path) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            code = main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


class PlaitProc:
    """Runs `python -m plait` as a real subprocess, with the test's environment."""

    def __call__(
        self, *argv: str, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run to the end; the completed process with text stdout/stderr."""
        return subprocess.run(
            [PYTHON, "-m", "plait", *argv],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(
        self, *argv: str, cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start one and return at once; the caller waits or kills it."""
        process = subprocess.Popen(
            [PYTHON, "-m", "plait", *argv],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        return process

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []


@pytest.fixture
def plait_proc(git_env: None) -> Iterator[PlaitProc]:
    """Runs `python -m plait`; any process it started is killed at the end of the test."""
    runner = PlaitProc()
    yield runner
    for process in runner.started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def wait_until(
    done: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 60
) -> None:
    """Poll `done` until it holds, failing if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while not done():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"not done within {timeout}s"
        time.sleep(0.05)


def write_plan(path: Path, text: str) -> Path:
    """Write a plan file (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def yaml_list(items: Sequence[str]) -> str:
    """A flow-style YAML list of double-quoted strings (JSON is valid YAML)."""
    import json

    return json.dumps(list(items))
