"""Where plait finds a plan and its agent profiles when it is not run at the top level.

- profiles at the repository's top level serve a plan in a subfolder (the plan
  folder's own profile wins);
- with no PLAN argument, `plan`, `run` and `agents` find `plait.yaml` in a folder
  above, up to the repository's top level, as git finds `.git`;
- `plait init` in a subfolder refuses to hide the top level's plan behind a new one.

Every command runs for real: `plait.cli.main` in-process, in git repositories made
under tmp_path.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from conftest import CliResult, write_plan
from gitrepo import GitRepo
from plait.planfind import profile_folders, repo_top

Cli = Callable[..., CliResult]

PROFILE = "---\nname: {name}\nbackend: command\ncommand: [{argv}]\n---\nYou are {name}.\n"


def profile(folder: Path, name: str, program: str = sys.executable) -> Path:
    """A `.plait/agents/<name>.md` profile under `folder` whose command is `program`."""
    argv = json.dumps([program, "-c", "pass"])[1:-1]
    return write_plan(
        folder / ".plait" / "agents" / f"{name}.md", PROFILE.format(name=name, argv=argv)
    )


SUB_PLAN = """\
tasks:
  a:
    agent: backend-engineer
    prompt: hi
"""


# --- profiles ---------------------------------------------------------------------------


def test_profiles_from_the_top_level_serve_a_plan_in_a_subfolder(cli: Cli, repo: GitRepo) -> None:
    # What a reviewer did: `plait init` at the top, then a plan in plans/.
    assert cli("init", cwd=repo.path).code == 0
    assert (repo.path / ".plait" / "agents" / "backend-engineer.md").is_file()
    write_plan(repo.path / "plans" / "sub.yaml", SUB_PLAN)
    result = cli("plan", "plans/sub.yaml", "--json", cwd=repo.path)
    assert result.code == 0, result.err
    assert [t["agent"] for t in json.loads(result.out)["tasks"]] == ["backend-engineer"]
    # The same from inside plans/, and `plait agents` says where the role comes from.
    agents = cli("agents", "sub.yaml", "--json", cwd=repo.path / "plans")
    rows = {r["role"]: r for r in json.loads(agents.out)}
    assert rows["backend-engineer"]["used"] is True
    assert (
        Path(rows["backend-engineer"]["source"]).resolve()
        == (repo.path / ".plait" / "agents" / "backend-engineer.md").resolve()
    )


def test_the_plan_folders_profile_wins_over_the_top_levels(cli: Cli, repo: GitRepo) -> None:
    profile(repo.path, "backend-engineer", "/top/level/program")
    profile(repo.path / "plans", "backend-engineer", "/plan/folder/program")
    write_plan(repo.path / "plans" / "sub.yaml", SUB_PLAN)
    rows = json.loads(cli("agents", "plans/sub.yaml", "--json", cwd=repo.path).out)
    row = next(r for r in rows if r["role"] == "backend-engineer")
    assert row["program"] == "/plan/folder/program"
    assert Path(row["source"]).resolve().is_relative_to((repo.path / "plans").resolve())


def test_a_broken_top_level_profile_is_reported_with_its_path(cli: Cli, repo: GitRepo) -> None:
    write_plan(repo.path / ".plait" / "agents" / "backend-engineer.md", "---\nbogus: 1\n---\n")
    write_plan(repo.path / "plans" / "sub.yaml", SUB_PLAN)
    result = cli("plan", "plans/sub.yaml", cwd=repo.path)
    assert result.code == 2
    assert "comes from ../.plait/agents/backend-engineer.md" in result.err


def test_outside_git_profiles_are_read_beside_the_plan_only(cli: Cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    profile(plain, "backend-engineer")
    write_plan(plain / "plans" / "sub.yaml", SUB_PLAN)
    assert repo_top(plain) is None
    result = cli("plan", "plans/sub.yaml", cwd=plain)
    assert result.code == 2
    assert "unknown agent 'backend-engineer'" in result.err


def test_profile_folders_put_the_plan_folder_last(repo: GitRepo) -> None:
    sub = repo.path / "plans"
    sub.mkdir()
    folders = profile_folders(sub)
    assert [f.parent.parent for f in folders] == [repo.path, repo.path, sub, sub]
    assert profile_folders(repo.path) == [repo.path / ".claude/agents", repo.path / ".plait/agents"]
