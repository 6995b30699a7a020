"""Which changes to git config the user may make while a run works, unreverted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import PlaitProc, wait_until, write_plan, yaml_list
from gitrepo import GitRepo
from plait.configrisk import harmless_change

BASE = b"[core]\n\trepositoryformatversion = 0\n\tbare = false\n"


ORIGIN = b'[remote "origin"]\n\turl = /srv/x.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n'


@pytest.mark.parametrize(
    "added",
    [
        ORIGIN,  # `git remote add origin /srv/x.git`
        b'[branch "Feature/X"]\n\tremote = origin\n\tmerge = refs/heads/feature/x\n',
        b"[user]\n\tname = Me\n\temail = me@example.com\n",
        b"# only a comment\n",
    ],
)
def test_what_everyday_commands_write_is_harmless(added: bytes) -> None:
    assert harmless_change(BASE, BASE + added)
    assert harmless_change(BASE + added, BASE)  # (`git remote remove`, unset)


@pytest.mark.parametrize(
    "added",
    [
        b"[core]\n\tpager = evil\n",
        b"[core]\n\tfsmonitor = ./x\n",
        b"[include]\n\tpath = /tmp/evil.cfg\n",
        b"[alias]\n\tst = !evil\n",
        b'[remote "origin"]\n\turl = x\n\tuploadpack = evil\n',
        # a new remote whose fetch would overwrite the user's own branches
        b'[remote "up"]\n\turl = x\n\tfetch = +refs/heads/none/*:refs/heads/*\n',
        b'[submodule "lib"]\n\tupdate = !evil\n',
        b'[branch "main"]\n\tmergeoptions = -s evil\n',
        b'[filter "lfs"]\n\tclean = evil %f\n',
        b"[broken\n",
    ],
)
def test_what_can_make_git_run_a_program_is_not(added: bytes) -> None:
    assert not harmless_change(BASE, BASE + added)


@pytest.mark.parametrize(
    "changed",
    [
        b'[remote "origin"]\n\turl = /srv/x.git\n\tfetch = +refs/heads/none/*:refs/heads/*\n',
        ORIGIN.replace(b"/srv/x.git", b"/srv/attacker.git"),
        ORIGIN + b"\tmirror = true\n",
        ORIGIN + b"\tprune = true\n",
        ORIGIN + b"\tpushurl = /srv/elsewhere.git\n",
    ],
)
def test_changing_a_remote_that_was_there_is_not(changed: bytes) -> None:
    """A fetch refspec into refs/heads with prune, or mirror, deletes the user's branches
    at their next fetch or push; a new url sends their pushes elsewhere."""
    assert not harmless_change(BASE + ORIGIN, BASE + changed)


#: Writes its file once $GO exists (so the test can act while it runs).
WAITING_AGENT = """\
import os, pathlib, sys, time
sys.stdin.read()
task = os.environ["PLAIT_TASK_ID"]
pathlib.Path(os.environ["STARTED"], task).touch()
while not pathlib.Path(os.environ["GO"]).exists():
    time.sleep(0.05)
pathlib.Path(task + ".txt").write_text(task)
"""


def _run_while(repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path, user_does: str) -> dict:
    """Run two waiting tasks; once both work, the user runs `git <user_does>`."""
    script, started, go = tmp_path / "agent.py", tmp_path / "started", tmp_path / "go"
    script.write_text(WAITING_AGENT, encoding="utf-8")
    started.mkdir()
    write_plan(
        repo.path / "plait.yaml",
        f"""\
version: 1
agents:
  a: {{backend: command, command: {yaml_list([sys.executable, str(script)])},
      env: {{STARTED: "{started}", GO: "{go}"}}}}
tasks:
  x: {{agent: a, prompt: x, writes: [x.txt]}}
  y: {{agent: a, prompt: y, writes: [y.txt]}}
""",
    )
    repo.commit("plan")
    run = plait_proc.start("run", "--json", cwd=repo.path)
    wait_until(lambda: len(list(started.iterdir())) == 2, run)
    repo.git(*user_does.split())
    go.touch()
    out, err = run.communicate(timeout=60)
    return {"code": run.returncode, "err": err, **json.loads(out)}


def test_a_remote_the_user_adds_during_a_run_stays_and_fails_nothing(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path
) -> None:
    """Both tasks failed, and the user's `git remote add` was undone."""
    done = _run_while(repo, plait_proc, tmp_path, "remote add origin /srv/shop.git")
    assert done["code"] == 0, done
    assert [t["status"] for t in done["tasks"]] == ["succeeded", "succeeded"]
    assert repo.git("remote", "get-url", "origin").strip() == "/srv/shop.git"
    assert "put back" not in done["err"]


def test_a_risky_config_change_is_put_back_and_the_users_copy_kept(
    repo: GitRepo, plait_proc: PlaitProc, tmp_path: Path, plait_home: Path
) -> None:
    """An alias (a program git would run) is put back as before; what was written is
    kept aside, in case the user wrote it, and the failures say where."""
    done = _run_while(repo, plait_proc, tmp_path, "config alias.st !echo-pwned")
    assert done["code"] == 1, done
    assert repo.git("config", "--get-all", "alias.st", check=False).strip() == ""
    (copy,) = (plait_home / "git-files-put-aside").rglob("config")
    assert "echo-pwned" in copy.read_text()
    for task in done["tasks"]:
        assert task["status"] == "failed"
        assert f"the changed copy is kept in {plait_home / 'git-files-put-aside'}" in task["error"]
