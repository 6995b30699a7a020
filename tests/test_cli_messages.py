"""What the command line says where a first-time user following the README meets it:
the starter plan's advice, `runs` with no runs, `init --backend`, `agents` with a
relative program, `logs` of a task the run does not have, `--version`, event lines,
and the end of a run that merged nothing.

Every command runs for real (`plait.cli.main` in-process, or `python -m plait`) in
git repositories made under tmp_path.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from conftest import CliResult
from gitrepo import GitRepo

Cli = Callable[..., CliResult]


def command_plan(agents: dict[str, list[str]], tasks: str) -> str:
    lines = ["version: 1", "name: msg", "agents:"]
    for name, argv in agents.items():
        lines += [f"  {name}:", "    backend: command", f"    command: {json.dumps(argv)}"]
    return "\n".join(lines) + "\ntasks:\n" + tasks


# --- init --backend ---------------------------------------------------------------------


def test_init_backend_command_explains_what_init_writes(cli: Cli, repo: GitRepo) -> None:
    result = cli("init", "--backend", "command", cwd=repo.path)
    assert result.code == 2
    assert "is not a backend" not in result.err
    assert "init writes agent profiles for the coding-agent CLIs" in result.err
    assert "claude, codex" in result.err
    assert not (repo.path / "plait.yaml").exists()
    unknown = cli("init", "--backend", "nosuch", cwd=repo.path)
    assert unknown.code == 2 and "'nosuch' is not a backend; use one of claude" in unknown.err
