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
from plait.planfind import find_plan, profile_folders, repo_top

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


# --- the default plan -------------------------------------------------------------------


def test_plan_run_and_agents_find_the_top_levels_plan_from_a_subfolder(
    cli: Cli, repo: GitRepo
) -> None:
    assert cli("init", cwd=repo.path).code == 0
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "plait init")
    deep = repo.path / "src" / "pkg"
    deep.mkdir(parents=True)
    shown = cli("plan", "--json", cwd=deep)
    assert shown.code == 0, shown.err
    assert {t["id"] for t in json.loads(shown.out)["tasks"]} == {
        "contract",
        "server",
        "client",
        "tests",
    }
    assert "using ../../plait.yaml" in shown.err
    agents = cli("agents", cwd=deep)
    assert agents.code == 0, agents.err
    assert "scribe" in agents.out
    ran = cli("run", "--json", cwd=deep)
    assert ran.code == 0, ran.err
    # The plan's folder is its root as before: the notes land at the top level.
    branch = json.loads(ran.out)["branch"]
    listed = repo.git("ls-tree", "-r", "--name-only", branch).split()
    assert "notes/contract.md" in listed
    assert not (deep / "plait.yaml").exists()


def test_the_nearest_plan_wins_and_a_plan_argument_is_used_as_given(
    cli: Cli, repo: GitRepo
) -> None:
    write_plan(repo.path / "plait.yaml", "name: top\n" + SUB_PLAN.replace("backend-engineer", "x"))
    write_plan(repo.path / "a" / "plait.yaml", "name: middle\n" + SUB_PLAN)
    (repo.path / "a" / "b").mkdir()
    assert find_plan(repo.path / "a" / "b") == repo.path / "a" / "plait.yaml"
    # A PLAN argument is never looked for elsewhere.
    named = cli("plan", "plait.yaml", cwd=repo.path / "a" / "b")
    assert named.code == 2
    assert "plait.yaml: no such plan file" in named.err


def test_the_search_stops_at_the_repositorys_top_level(
    cli: Cli, tmp_path: Path, git_env: None
) -> None:
    # A plait.yaml above the repository belongs to something else.
    write_plan(tmp_path / "outer" / "plait.yaml", SUB_PLAN)
    inner = GitRepo.create(tmp_path / "outer" / "inner")
    sub = inner.path / "sub"
    sub.mkdir()
    result = cli("plan", cwd=sub)
    assert result.code == 2
    assert f"no plait.yaml in {sub}" in result.err
    assert f"up to the repository's top level {inner.path}" in result.err
    assert "Create one with `plait init`" in result.err


def test_outside_git_only_the_current_folder_is_looked_in(cli: Cli, tmp_path: Path) -> None:
    write_plan(tmp_path / "plait.yaml", SUB_PLAN)
    here = tmp_path / "plain"
    here.mkdir()
    result = cli("plan", cwd=here)
    assert result.code == 2
    assert f"no plait.yaml in {here}." in result.err


# --- init in a subfolder ----------------------------------------------------------------


def test_init_in_a_subfolder_refuses_to_hide_the_top_levels_plan(cli: Cli, repo: GitRepo) -> None:
    assert cli("init", cwd=repo.path).code == 0
    sub = repo.path / "sub"
    sub.mkdir()
    refused = cli("init", cwd=sub)
    assert refused.code == 2
    assert "../plait.yaml is this repository's plan already" in refused.err
    assert "--force" in refused.err
    assert list(sub.iterdir()) == []
    forced = cli("init", "--force", cwd=sub)
    assert forced.code == 0, forced.err
    assert (sub / "plait.yaml").is_file()
    assert "using" not in cli("plan", cwd=sub).err  # its own plan now


def test_init_in_a_subfolder_writes_there_when_the_repository_has_no_plan(
    cli: Cli, repo: GitRepo
) -> None:
    sub = repo.path / "sub"
    sub.mkdir()
    result = cli("init", cwd=sub)
    assert result.code == 0, result.err
    assert (sub / "plait.yaml").is_file()
    assert (sub / ".plait" / "agents" / "architect.md").is_file()
    assert not (repo.path / "plait.yaml").exists()
