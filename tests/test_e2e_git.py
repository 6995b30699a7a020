"""Whole runs through the real CLI on real repositories: isolation, merges, conflicts, hostiles.

Every test here starts `python -m plait run` as a subprocess in a throwaway git
repository, with `command` agents (tests/agents/e2e_agent.py) that do what their
prompt's `do:` lines say, and then inspects the repository with plain git: what the
result branch `plait/<run>` holds, what the user's branch, index and working tree
look like, which hooks ran. The unit tests of git.py, the workspace modules and merge.py
cover the pieces; these cover the pieces put together.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gitrepo import GitRepo, git_identity
from plait.pool import POOL_DIR

AGENT = Path(__file__).parent / "agents" / "e2e_agent.py"

#: Every hook git could run while plait commits, merges or moves refs.
CANARY_HOOKS = (
    "pre-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-merge-commit",
    "post-merge",
    "post-checkout",
    "post-rewrite",
    "reference-transaction",
    "post-index-change",
)


# -- helpers (each e2e test file keeps its own few) -------------------------------------


def plan_text(tasks: Mapping[str, Mapping[str, Any]], **top: Any) -> str:
    """A plan (JSON is YAML) whose tasks all use the e2e agent; `do` lists its steps."""
    agent = {"backend": "command", "command": [sys.executable, str(AGENT), "{task}"]}
    body: dict[str, Any] = {"version": 1, "name": "e2e", **top, "agents": {"e2e": agent}}
    body["tasks"] = {
        tid: {
            "agent": "e2e",
            "prompt": "\n".join(f"do: {s}" for s in spec["do"]) + "\n",
            **{k: v for k, v in spec.items() if k != "do"},
        }
        for tid, spec in tasks.items()
    }
    return json.dumps(body, indent=2)


def plait(repo: GitRepo, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real CLI, in the repository, as a user would start it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    return subprocess.run(
        [sys.executable, "-m", "plait", *args],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_plan(repo: GitRepo, plan: str, *args: str) -> tuple[int, dict[str, Any]]:
    """`plait run --json` on `plan` (written untracked as plait.yaml); exit code, status."""
    (repo.path / "plait.yaml").write_text(plan)
    done = plait(repo, "run", "plait.yaml", "--json", *args)
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON from plait run:\n{done.stdout}\n{done.stderr}") from None
    status = plait(repo, "status", data["run"], "--json")
    assert status.returncode == 0, status.stderr
    return done.returncode, json.loads(status.stdout)


def tasks_by_id(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in status["tasks"]}


def outline(status: Mapping[str, Any]) -> str:
    """A failed assertion's message: each task's status, attempts and error."""
    lines = [f"run {status['run']}: {status['status']}, verify {status.get('verify')}"]
    for t in status["tasks"]:
        lines.append(f"  {t['id']}: {t['status']} x{t['attempts']} {t['error'] or ''}")
    return "\n".join(lines)


def tree_files(repo: GitRepo, ref: str) -> set[str]:
    return set(repo.git("ls-tree", "-r", "--name-only", ref).split())


def install_canaries(repo: GitRepo, canary: Path) -> None:
    """Real hooks in the user's repository that leave a trace if anything runs them."""
    hooks = repo.common_dir / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in CANARY_HOOKS:
        hook = hooks / name
        hook.write_text(f'#!/bin/sh\necho "{name} $*" >> {canary}\nexit 0\n')
        hook.chmod(0o755)


def user_state(repo: GitRepo) -> dict[str, Any]:
    """Everything of the user's checkout that a run must leave byte-identical."""
    quiet = {"GIT_OPTIONAL_LOCKS": "0"}  # a plain status could refresh (rewrite) the index
    state: dict[str, Any] = {
        "HEAD file": (repo.common_dir / "HEAD").read_text(),
        "HEAD": repo.head(),
        "status": repo.git(
            "status", "--porcelain=v1", "--untracked-files=all", "--ignored", env=quiet
        ),
        "staged": repo.git("diff", "--cached", "--binary", env=quiet),
        "unstaged": repo.git("diff", "--binary", env=quiet),
        "index": repo.git("ls-files", "-s", env=quiet),
        "user refs": [
            line
            for line in repo.git("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
            if not line.startswith(("refs/heads/plait/", "refs/plait/"))
        ],
        "config": (repo.common_dir / "config").read_bytes(),
        "hooks": {
            p.name: (p.read_bytes(), p.stat().st_mode)
            for p in sorted((repo.common_dir / "hooks").iterdir())
        },
    }
    for path in sorted(repo.path.rglob("*")):
        rel = path.relative_to(repo.path)
        if rel.parts[0] == ".git" or (path.is_dir() and not path.is_symlink()):
            continue
        data = str(path.readlink()).encode() if path.is_symlink() else path.read_bytes()
        state[f"file {rel.as_posix()}"] = (
            hashlib.sha256(data).hexdigest(),
            path.lstat().st_mode,
        )
    return state


def prove_canaries_work(repo: GitRepo, canary: Path) -> None:
    """A plain `git commit` with the user's hooks leaves a trace: the canaries are live."""
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "hooks on"],
        cwd=repo.path,
        check=True,
        capture_output=True,
    )
    assert "pre-commit" in canary.read_text()


def stamps(folder: Path) -> dict[str, dict[str, Any]]:
    """The e2e agent's stamp files: `<task>-<attempt>` → start, end, seen files."""
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    git_identity(monkeypatch)
    monkeypatch.delenv("PLAIT_HOME", raising=False)
    made = GitRepo.create(
        tmp_path / "repo",
        {
            "README.md": "# calc\n",
            ".gitignore": "*.log\n",
            "calc/__init__.py": "",
            "calc/core.py": 'GREETING = "hello"\n\n\ndef add(a, b):\n    return a + b\n',
            "tests/__init__.py": "",
            "tests/test_core.py": (
                "import unittest\n\nfrom calc.core import add\n\n\n"
                "class CoreTest(unittest.TestCase):\n"
                "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
                "    def test_add_negative(self):\n        self.assertEqual(add(-2, 1), -1)\n"
            ),
            "obsolete.txt": "remove me\n",
            "lists.py": "ITEMS = []\n",
            "value.py": 'VALUE = "base"\n',
        },
    )
    made.write("CHANGELOG.md", "# changes\n")
    made.commit("second commit")  # so that a reset below the base has somewhere to go
    return made


# -- 1. a run of nine agents leaves the user's checkout alone ----------------------------


def module_task(n: int) -> dict[str, Any]:
    test = (
        f"import unittest\\n\\nfrom calc.m{n} import f\\n\\n\\n"
        f"class M{n}Test(unittest.TestCase):\\n"
        f"    def test_f(self):\\n        self.assertEqual(f(), {n})\\n"
    )
    return {
        "do": [
            "sleep 0.4",
            f"write calc/m{n}.py 'def f():\\n    return {n}'",
            f"write tests/test_m{n}.py '{test}'",
        ],
        "writes": [f"calc/m{n}.py", f"tests/test_m{n}.py"],
    }


def test_nine_agents_merge_everything_and_leave_the_user_checkout_byte_identical(
    repo: GitRepo, tmp_path: Path
) -> None:
    canary = tmp_path / "canary.txt"
    install_canaries(repo, canary)
    # The user is in the middle of something: unstaged, staged, untracked and ignored work.
    repo.write("README.md", "# calc\n\nuser's unsaved edit\n")
    repo.write("calc/core.py", 'GREETING = "hi from the user"\n')
    repo.git("add", "calc/core.py")
    repo.write("calc/core.py", 'GREETING = "hi from the user, edited again"\n')
    repo.write("notes/todo.txt", "untracked notes\n")
    repo.write("debug.log", "ignored\n")
    (repo.path / "link-to-readme").symlink_to("README.md")
    tasks = {f"mod{n}": module_task(n) for n in range(1, 7)}
    tasks["greet"] = {
        "do": ["sleep 0.2", "replace calc/core.py '\"hello\"' '\"hello, world\"'"],
        "writes": ["calc/core.py"],
    }
    tasks["docs"] = {"do": ["append README.md 'Now with modules.'"], "writes": ["README.md"]}
    tasks["cleanup"] = {"do": ["delete obsolete.txt"], "writes": ["obsolete.txt"]}
    plan = plan_text(tasks, verify=[sys.executable, "-m", "unittest"])
    (repo.path / "plait.yaml").write_text(plan)  # the plan is untracked user work too
    before = user_state(repo)

    code, status = run_plan(repo, plan, "-j", "4")

    assert code == 0, outline(status)
    assert status["status"] == "succeeded"
    result = status["branch"]
    assert result == f"plait/{status['run']}"
    assert repo.head(result) == status["head"]
    by_id = tasks_by_id(status)
    assert len(by_id) == 9
    for task in by_id.values():
        assert task["status"] == "succeeded" and task["merged"], task
    # every task's change is on the result branch
    for n in range(1, 7):
        assert repo.show(result, f"calc/m{n}.py") == f"def f():\n    return {n}\n"
        assert f"assertEqual(f(), {n})" in repo.show(result, f"tests/test_m{n}.py")
    assert repo.show(result, "calc/core.py").startswith('GREETING = "hello, world"\n')
    assert repo.show(result, "README.md") == "# calc\nNow with modules.\n"
    assert "obsolete.txt" not in tree_files(repo, result)
    # the plan's verify ran the whole suite on it and passed
    assert status["verify"]["ok"] is True
    assert status["verify"]["commit"] == status["head"]
    assert "Ran 8 tests" in status["verify"]["output"]
    # the user's branch, index, working tree, config and hooks are exactly as they were
    assert user_state(repo) == before
    # no hook ran, merged tasks left no task branch, and no worktree but the pool's
    assert not canary.exists(), canary.read_text()
    left = [Path(p).parent.name for p in repo.worktrees()[1:]]
    assert left == [POOL_DIR] * len(left) and len(left) <= 4, left
    assert repo.branches(f"plait/tasks/{status['run']}/*") == []
    assert repo.branches(f"plait/{status['run']}/*") == []
    repo.fsck()
    prove_canaries_work(repo, canary)


# -- 2. shared files wait, undeclared collisions re-run, hopeless ones end conflicted ---


def test_declared_sharers_take_turns_and_undeclared_collisions_rerun_on_merged_code(
    repo: GitRepo, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    tasks = {
        # both declare CHANGELOG.md: never at the same time, the second sees the first
        "log-a": {
            "do": [f"stamp {marks}", "see CHANGELOG.md", "sleep 0.5", "append CHANGELOG.md a"],
            "writes": ["CHANGELOG.md"],
        },
        "log-b": {
            "do": [f"stamp {marks}", "see CHANGELOG.md", "sleep 0.5", "append CHANGELOG.md b"],
            "writes": ["CHANGELOG.md"],
        },
        # no writes: they run side by side and edit the same line. `first` waits
        # until `second` has started (so both start from the base), `second` waits
        # until `first` is merged (so its merge must conflict).
        "first": {"do": [f"waitflag {marks} second-started", "addlist lists.py first"]},
        "second": {
            "do": [
                f"flag {marks} second-started",
                "addlist lists.py second",
                "waittip lists.py first",
            ]
        },
    }
    code, status = run_plan(repo, plan_text(tasks), "-j", "4")

    assert code == 0, outline(status)
    by_id = tasks_by_id(status)
    assert all(t["status"] == "succeeded" and t["merged"] for t in by_id.values()), by_id
    result = status["branch"]
    # declared sharers: disjoint in time, the later one started from the earlier's result
    seen = stamps(marks)
    a, b = seen["log-a-1"], seen["log-b-1"]
    earlier, later = (a, b) if a["start"] < b["start"] else (b, a)
    assert earlier["end"] <= later["start"], (earlier, later)
    line = "a" if earlier is a else "b"
    assert earlier["seen"]["CHANGELOG.md"] == "# changes\n"
    assert later["seen"]["CHANGELOG.md"] == f"# changes\n{line}\n"
    assert by_id["log-a"]["attempts"] == 1 and by_id["log-b"]["attempts"] == 1
    changelog = repo.show(result, "CHANGELOG.md")
    assert sorted(changelog.splitlines()[1:]) == ["a", "b"]
    # the undeclared collision: `second` was re-run on top of `first` and kept both
    assert by_id["first"]["attempts"] == 1
    assert by_id["second"]["attempts"] == 2
    assert repo.show(result, "lists.py") == 'ITEMS = ["first", "second"]\n'
    repo.fsck()


def test_rerun_after_a_conflict_takes_turns_on_the_conflicted_file(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Four tasks without `writes` append to one file at once: the first merged, the
    other three conflict. Their re-runs hold that file one at a time, each starting from
    the tip that holds the one before, so each settles with one re-run (before, started
    together, they kept colliding until one ran out of re-runs and ended conflicted)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    names = ["log-a", "log-b", "log-c", "log-d"]
    tasks = {
        name: {"do": [f"stamp {marks}", "sleep 0.4", f"append CHANGELOG.md {name}"]}
        for name in names
    }
    code, status = run_plan(repo, plan_text(tasks), "-j", "4")

    assert code == 0, outline(status)
    by_id = tasks_by_id(status)
    assert all(t["status"] == "succeeded" and t["merged"] for t in by_id.values()), by_id
    assert sorted(t["attempts"] for t in by_id.values()) == [1, 2, 2, 2], by_id
    changelog = repo.show(status["branch"], "CHANGELOG.md").splitlines()
    assert sorted(changelog[1:]) == names
    # the re-runs never overlapped in time
    seen = stamps(marks)
    reruns = sorted((seen[f"{n}-2"] for n in names if f"{n}-2" in seen), key=lambda s: s["start"])
    assert len(reruns) == 3
    for earlier, later in itertools.pairwise(reruns):
        assert earlier["end"] <= later["start"], (earlier, later)


def test_a_rerun_waiting_for_its_lane_lends_its_job_slot_to_a_ready_task(
    repo: GitRepo, tmp_path: Path
) -> None:
    """At -j 3, three tasks append to one file and two conflict. The first re-run
    runs, the second waits for it: a ready task runs in its slot meanwhile, and one
    in the winner's (before, the waiting re-run kept its slot: the second ready task
    started only once the first re-run had merged). No more than three agents ever
    run at once."""
    marks = tmp_path / "marks"
    marks.mkdir()
    names = ["log-a", "log-b", "log-c"]
    tasks: dict[str, dict[str, Any]] = {
        name: {
            "do": [f"stamp {marks}", "sleep 0.5", f"append CHANGELOG.md {name}"],
            "estimate": "60s",  # first in line (critical path first)
        }
        for name in names
    }
    for n in (1, 2):
        tasks[f"side-{n}"] = {
            "do": [f"stamp {marks}", "sleep 1", f"write side{n}.txt {n}"],
            "writes": [f"side{n}.txt"],
        }
    code, status = run_plan(repo, plan_text(tasks), "-j", "3")

    assert code == 0, outline(status)
    by_id = tasks_by_id(status)
    assert sorted(by_id[n]["attempts"] for n in names) == [1, 2, 2], by_id
    seen = stamps(marks)
    reruns = sorted((seen[f"{n}-2"] for n in names if f"{n}-2" in seen), key=lambda s: s["start"])
    assert len(reruns) == 2
    # both side tasks started while the first re-run ran (the second waiting for it)
    sides = [seen[f"side-{n}-1"] for n in (1, 2)]
    assert max(s["start"] for s in sides) < reruns[0]["end"], (sides, reruns)
    # and never more agents at once than -j allows
    spans = list(seen.values())
    for one in spans:
        at_once = [s for s in spans if s["start"] <= one["start"] < s["end"]]
        assert len(at_once) <= 3, at_once
    assert sorted(repo.show(status["branch"], "CHANGELOG.md").splitlines()[1:]) == names


def test_rerun_turns_on_a_file_survive_an_interruption(repo: GitRepo, tmp_path: Path) -> None:
    """Three tasks append to one file: one merges, two conflict and re-run in turn.
    Ctrl-C while the first re-run works: on resume both re-runs were due at once, and
    (before) started together from one tip, so one conflicted again and, with no
    re-run left, ended `conflicted`. They still take turns after the resume."""
    marks = tmp_path / "marks"
    marks.mkdir()
    names = ["log-a", "log-b", "log-c"]
    tasks = {
        name: {"do": [f"flag {marks} {name}-@", "sleep 0.5", f"append CHANGELOG.md {name}"]}
        for name in names
    }
    (repo.path / "plait.yaml").write_text(plan_text(tasks, max_conflict_reruns=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    run = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "plait.yaml", "-j", "3", "--json"],
        cwd=repo.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(marks.glob("*-2")):  # the first re-run has started
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    run.communicate(timeout=60)
    assert run.returncode == 130
    resumed = plait(repo, "resume", "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    status = json.loads(plait(repo, "status", "--json").stdout)
    by_id = tasks_by_id(status)
    assert all(t["status"] == "succeeded" for t in by_id.values()), outline(status)
    assert sorted(repo.show(status["branch"], "CHANGELOG.md").splitlines()[1:]) == names


def test_a_rerun_waiting_its_turn_shows_as_waiting_in_the_state(
    repo: GitRepo, tmp_path: Path
) -> None:
    """`plait status` read the row of a re-run waiting for its lane as "merging"."""
    import sqlite3

    names = ["log-a", "log-b", "log-c"]
    tasks = {name: {"do": ["sleep 0.6", f"append CHANGELOG.md {name}"]} for name in names}
    (repo.path / "plait.yaml").write_text(plan_text(tasks))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    run = subprocess.Popen(
        [sys.executable, "-m", "plait", "run", "plait.yaml", "-j", "3", "--json"],
        cwd=repo.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    db = repo.common_dir / "plait" / "state.db"
    seen: set[str] = set()
    while run.poll() is None:
        if db.exists():
            uri = f"file:{db}?mode=ro"
            with (
                contextlib.suppress(sqlite3.Error),
                contextlib.closing(sqlite3.connect(uri, uri=True)) as con,
            ):
                seen.update(row[0] for row in con.execute("SELECT status FROM tasks"))
        time.sleep(0.02)
    run.communicate()
    assert run.returncode == 0
    assert "waiting" in seen, seen


def test_a_conflict_that_rerunning_cannot_fix_ends_conflicted_naming_the_file(
    repo: GitRepo, tmp_path: Path
) -> None:
    # `stubborn` sets VALUE; while each of its attempts runs, one of w1, w2, w3 sets
    # VALUE too and is merged first, so every attempt conflicts: after the default
    # two re-runs the task is `conflicted`.
    marks = tmp_path / "marks"
    marks.mkdir()

    def writer(n: int) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "do": [f"waitflag {marks} stubborn-{n}", f"setline value.py 'VALUE =' '\"w{n}\"'"]
        }
        if n > 1:
            spec["needs"] = [f"w{n - 1}"]
        return spec

    tasks = {f"w{n}": writer(n) for n in (1, 2, 3)}
    tasks["stubborn"] = {
        "do": [
            f"flag {marks} stubborn-@",
            "setline value.py 'VALUE =' '\"stubborn\"'",
            "waittip value.py '\"w@\"'",
        ]
    }
    code, status = run_plan(repo, plan_text(tasks), "-j", "4")

    assert code == 1
    assert status["status"] == "failed"
    by_id = tasks_by_id(status)
    stubborn = by_id["stubborn"]
    assert stubborn["status"] == "conflicted", stubborn
    assert stubborn["attempts"] == 3  # the first try and max_conflict_reruns (2) re-runs
    assert "value.py" in stubborn["error"]
    assert not stubborn["merged"]
    assert all(by_id[f"w{n}"]["status"] == "succeeded" for n in (1, 2, 3))
    assert repo.show(status["branch"], "value.py") == 'VALUE = "w3"\n'
    repo.fsck()


# -- 3. hostile agents ---------------------------------------------------------------


def test_hostile_agents_fail_are_never_merged_and_no_hook_runs(
    repo: GitRepo, tmp_path: Path
) -> None:
    canary = tmp_path / "canary.txt"
    evil = tmp_path / "evil-hook-ran.txt"
    install_canaries(repo, canary)
    config_before = (repo.common_dir / "config").read_bytes()
    base = repo.head()
    # The three that write outside their worktree claim every path, so they run
    # alone: a change to the shared git dir, or a file written beside the worktrees,
    # cannot be pinned on one attempt and fails every attempt open at the time.
    everything = ["**"]
    tasks: dict[str, dict[str, Any]] = {
        "scope": {
            "do": ["write allowed/ok.txt ok", "write not-allowed.txt sneaky"],
            "writes": ["allowed/**"],
        },
        "parent": {
            "do": ["write parent/ok.txt ok", "write ../outside.txt escaped"],
            "writes": everything,
        },
        "hooks": {"do": ["write hooks.txt x", f"hook post-merge {evil}"], "writes": everything},
        "fsmonitor": {
            "do": ["write fsmonitor.txt x", f"git config core.fsmonitor {evil}"],
            "writes": everything,
        },
        "branch": {
            "do": [
                "git checkout -q -b other",
                "write branch/x.txt x",
                "git add branch/x.txt",
                "git commit -q -m other",
            ],
            "writes": ["branch/**"],
        },
        "reset": {"do": ["git reset -q --hard HEAD~"], "writes": ["reset/**"]},
        "dotgit": {"do": ["write dotgit/x.txt x", "rmdotgit"], "writes": ["dotgit/**"]},
        "good": {"do": ["write good.txt fine"], "writes": ["good.txt"]},
    }
    code, status = run_plan(repo, plan_text(tasks), "-j", "4")

    assert code == 1
    by_id = tasks_by_id(status)
    expected = {
        "scope": "not-allowed.txt",
        "parent": "../outside.txt",
        "hooks": ".git/hooks/post-merge",
        "fsmonitor": ".git/config",
        "branch": "HEAD",
        "reset": "start commit",
        "dotgit": ".git",
    }
    for task_id, named in expected.items():
        task = by_id[task_id]
        assert task["status"] == "failed", task
        assert not task["merged"], task
        assert named in task["error"], task
    assert by_id["scope"]["scope_violations"] == ["not-allowed.txt"]
    assert by_id["good"]["status"] == "succeeded" and by_id["good"]["merged"]
    result = status["branch"]
    # nothing of the hostiles reached the result: exactly the base plus good.txt
    assert tree_files(repo, result) == tree_files(repo, base) | {"good.txt"}
    assert repo.git("diff", "--name-only", base, result).split() == ["good.txt"]
    other = repo.rev("refs/heads/other")
    if other is not None:  # the agent's own branch may stay; it is never merged
        assert not repo.git("merge-base", "--is-ancestor", other, result, check=False).strip()
        assert repo.git("branch", "--contains", other, "--list", result).strip() == ""
    # what escaped to ../ is where the agent put it, beside its kept worktree, and
    # nowhere in the user's tree
    kept = [Path(p) for p in repo.worktrees() if Path(p).name == "parent-1"]
    assert len(kept) == 1, repo.worktrees()
    assert (kept[0].parent / "outside.txt").read_text() == "escaped\n"
    assert not (repo.path / "outside.txt").exists()
    # the shared git dir is as it was, and no hook ran: not the user's, not the agent's
    assert (repo.common_dir / "config").read_bytes() == config_before
    assert not (repo.common_dir / "hooks" / "post-merge").read_text().count(str(evil))
    assert not canary.exists(), canary.read_text()
    assert not evil.exists()
    repo.fsck()
    prove_canaries_work(repo, canary)
