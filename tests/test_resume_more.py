"""Resume and start-up follow-ups, through the CLI: a resumed run's wall time is its
processes' wall time added up; `plait run` and `plait resume` end what killed runs
left running; a run whose result branch was cleaned is refused with a clear message.

Every plait here is a real `python -m plait` subprocess; kills are SIGKILL to plait
alone, so its agents (in sessions of their own) live on, as after an OOM kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gitrepo import IDENTITY, ISOLATION, GitRepo
from plait.store import Store
from test_procsweep import alive, gone

PYTHON = sys.executable

#: Prints a line every 0.1 s (plait's log of it is the run's sign of life) for
#: argv[1] seconds, then writes out/<task>.txt.
TICKER = """
import os, pathlib, sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    print("tick", flush=True)
    time.sleep(0.1)
out = pathlib.Path("out", os.environ["PLAIT_TASK_ID"] + ".txt")
out.parent.mkdir(exist_ok=True)
out.write_text("done\\n")
"""

AGENT_S = 4.0
TICKER_PLAN = """\
version: 1
name: ticks
jobs: 3
agents:
  ticker:
    backend: command
    command: {command}
defaults:
  agent: ticker
tasks:
  a: {{prompt: a, writes: ["out/a.txt"]}}
  b: {{prompt: b, writes: ["out/b.txt"]}}
  c: {{prompt: c, writes: ["out/c.txt"]}}
"""

#: Leaves a `setsid` escapee (its pid in argv[1]) and its own pid (argv[2]), then waits.
ESCAPER = 'setsid sh -c \'echo $$ > "$0"; exec sleep 300\' "$1" & echo $$ > "$2"; exec sleep 300'

ESCAPE_PLAN = """\
version: 1
name: escapes
agents:
  escaper:
    backend: command
    command: ["sh", "-c", {script}, "escaper", {escapee}, {agent}]
tasks:
  hang: {{agent: escaper, prompt: hang, writes: ["out/hang.txt"]}}
"""

QUICK_PLAN = """\
version: 1
name: quick
agents:
  quick:
    backend: command
    command: ["sh", "-c", "mkdir -p out && echo ok > out/quick.txt"]
tasks:
  quick: {agent: quick, prompt: quick, writes: ["out/quick.txt"]}
"""


class Cli:
    """A repository with plans, a PLAIT_HOME, and plait started in it."""

    def __init__(self, root: Path, plans: dict[str, str]) -> None:
        self.root = root
        self.home = root / "plait-home"
        self.repo = GitRepo.create(root / "repo")
        for name, text in plans.items():
            self.repo.write(name, text)
        self.repo.commit("plans")
        self.env = {**os.environ, **IDENTITY, **ISOLATION, "PLAIT_HOME": str(self.home)}
        for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            self.env.pop(key, None)
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [PYTHON, "-m", "plait", *argv],
            cwd=self.repo.path,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def run(self, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "plait", *argv],
            cwd=self.repo.path,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_ids(self) -> list[str]:
        if not Store.exists(self.home):
            return []
        with Store.open(self.home) as store:
            return [r.id for r in store.runs()]

    def attempts_started(self, run_id: str) -> int:
        with Store.open(self.home) as store:
            return len(store.attempts(run_id))

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def first_run_with_attempts(self, count: int) -> str:
        """The one run's id, once `count` of its attempts have started."""
        found: list[str] = []

        def ready() -> bool:
            ids = self.run_ids()
            if ids and self.attempts_started(ids[0]) >= count:
                found.append(ids[0])
                return True
            return False

        self.wait_for(ready, f"{count} attempts to start")
        return found[0]

    def killed_run(self, plan: str, attempts: int = 3) -> str:
        """Start `plait run <plan>`, kill -9 it once `attempts` attempts started; its id."""
        first = self.spawn("run", plan)
        run_id = self.first_run_with_attempts(attempts)
        self.kill(first)
        return run_id

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)  # plait alone: its agents live on
        process.communicate()

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.communicate()


MakeCli = Callable[[dict[str, str]], Cli]


@pytest.fixture
def cli_factory(tmp_path: Path) -> Iterator[MakeCli]:
    """Makes the test's `Cli`; kills whatever plait it left running."""
    made: list[Cli] = []

    def make(plans: dict[str, str]) -> Cli:
        made.append(Cli(tmp_path, plans))
        return made[-1]

    yield make
    for cli in made:
        cli.close()


def read_pid(path: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)


# --- 1. a resumed run's wall time is all of its processes' ---------------------------------


def test_resumed_wall_adds_up_the_processes_and_leaves_out_the_gap(cli_factory: MakeCli) -> None:
    command = json.dumps([PYTHON, "-c", TICKER, str(AGENT_S)])
    cli = cli_factory({"plan.yaml": TICKER_PLAN.format(command=command)})
    spawned = time.time()
    first = cli.spawn("run", "plan.yaml")
    run_id = cli.first_run_with_attempts(3)
    time.sleep(2.5)  # the agents tick (plait logs each tick) and are not done
    assert first.poll() is None
    killed = time.time()
    cli.kill(first)
    with Store.open(cli.home) as store:
        started_at = store.run(run_id).started_at
    time.sleep(2.0)  # a gap in which no plait runs: it is no part of the run's wall
    resumed = time.time()
    second = cli.spawn("resume")
    _, err = second.communicate(timeout=90)
    ended = time.time()
    assert second.returncode == 0, err.decode()

    shown = cli.run("status", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    wall = data["wall_s"]
    assert data["totals"]["wall_s"] == wall
    # The first process lived until the kill; its log ticks every 0.1 s, so its last
    # sign of life is within half a second of the kill. The resume ran the three
    # interrupted agents again, each for AGENT_S.
    first_span = killed - 0.5 - started_at
    assert wall >= first_span + AGENT_S, (wall, first_span)
    # Each process counts only while it lived: the gap between them does not.
    assert wall <= (killed - spawned) + (ended - resumed) + 0.5, wall
    assert ended - spawned - wall >= 1.5  # the 2 s gap left out
    speedup = data["totals"]["speedup"]
    assert speedup is not None and speedup <= 3.05  # never more than the 3 jobs


def test_resume_says_when_the_plan_file_changed_since_the_run_started(
    cli_factory: MakeCli,
) -> None:
    """Resume goes on with the plan as the run started it; an edit since is not silently
    ignored."""
    command = json.dumps([PYTHON, "-c", TICKER, "1.0"])
    plan = TICKER_PLAN.format(command=command)
    cli = cli_factory({"plan.yaml": plan})
    cli.killed_run("plan.yaml")
    (cli.repo.path / "plan.yaml").write_text(plan + "  d: {prompt: d}\n", encoding="utf-8")
    resumed = cli.run("resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "plan.yaml changed since run" in resumed.stderr
    assert "went on with the plan as it was then" in resumed.stderr


def test_resume_after_the_repository_moved_says_so_and_exits_2(cli_factory: MakeCli) -> None:
    command = json.dumps([PYTHON, "-c", TICKER, "30"])
    cli = cli_factory({"plan.yaml": TICKER_PLAN.format(command=command)})
    run_id = cli.killed_run("plan.yaml")
    moved = cli.repo.path.with_name("moved")
    cli.repo.path.rename(moved)
    subprocess.run(["git", "worktree", "repair"], cwd=moved, check=False, capture_output=True)
    resumed = subprocess.run(
        [PYTHON, "-m", "plait", "resume", run_id],
        cwd=moved,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    assert "which is gone (moved or renamed?)" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    subprocess.run(  # its agents, which outlived the kill, are ended
        [PYTHON, "-m", "plait", "clean"], cwd=moved, env=cli.env, capture_output=True, timeout=60
    )


# --- 2. a new run ends what killed runs left running ---------------------------------------


def with_escape_plans(cli_factory: MakeCli) -> tuple[Cli, Path, Path]:
    """A repository with escape.yaml and quick.yaml; where the escaper writes its pids."""
    cli = cli_factory({})
    escapee_pid, agent_pid = cli.root / "escapee.pid", cli.root / "agent.pid"
    plan = ESCAPE_PLAN.format(
        script=json.dumps(ESCAPER),
        escapee=json.dumps(str(escapee_pid)),
        agent=json.dumps(str(agent_pid)),
    )
    cli.repo.write("escape.yaml", plan)
    cli.repo.write("quick.yaml", QUICK_PLAN)
    cli.repo.commit("plans")
    return cli, escapee_pid, agent_pid


def test_new_run_ends_the_agents_and_escapees_of_a_killed_run(cli_factory: MakeCli) -> None:
    cli, escapee_pid, agent_pid = with_escape_plans(cli_factory)
    first = cli.spawn("run", "escape.yaml")
    escapee, agent = read_pid(escapee_pid), read_pid(agent_pid)
    cli.kill(first)
    time.sleep(0.3)
    assert alive(escapee) and alive(agent)  # nothing ended them: plait died first

    done = cli.run("run", "quick.yaml")
    assert done.returncode == 0, done.stderr
    assert gone(escapee), "the setsid escapee of the killed run lives on"
    assert gone(agent), "the agent of the killed run lives on"


def test_resume_ends_the_leftovers_of_every_killed_run(cli_factory: MakeCli) -> None:
    cli, escapee_pid, _ = with_escape_plans(cli_factory)
    # A run of the quick plan, killed before it ended: the run to resume.
    quick = cli.spawn("run", "quick.yaml")
    cli.wait_for(lambda: bool(cli.run_ids()), "the quick run to be recorded")
    cli.kill(quick)
    # Then a run that leaves an escapee, killed too (the lock of the first is taken over).
    first = cli.spawn("run", "escape.yaml")
    escapee = read_pid(escapee_pid)
    cli.kill(first)
    ids = cli.run_ids()
    assert len(ids) == 2
    quick_id = ids[-1]  # newest first
    with Store.open(cli.home) as store:
        assert store.run(quick_id).plan_name == "quick"

    resumed = cli.run("resume", quick_id)
    assert resumed.returncode == 0, resumed.stderr
    assert gone(escapee), "resume left another killed run's escapee running"


# --- 3. a run whose result branch was cleaned ----------------------------------------------


def _state(cli: Cli, run_id: str) -> tuple[object, ...]:
    with Store.open(cli.home) as store:
        row = store.run(run_id)
        return (
            row,
            store.tasks(run_id),
            store.attempts(run_id),
            len(store.events(run_id)),
        )


def test_resume_of_a_run_whose_branch_was_cleaned_is_refused(cli_factory: MakeCli) -> None:
    cli = cli_factory({})
    escapee_pid = cli.root / "escapee.pid"
    agent_pid = cli.root / "agent.pid"
    plan = ESCAPE_PLAN.format(
        script=json.dumps(ESCAPER),
        escapee=json.dumps(str(escapee_pid)),
        agent=json.dumps(str(agent_pid)),
    )
    cli.repo.write("escape.yaml", plan)
    cli.repo.commit("plan")
    first = cli.spawn("run", "escape.yaml")
    read_pid(agent_pid)
    cli.kill(first)
    run_id = cli.run_ids()[0]
    cleaned = cli.run("clean", run_id, "--branches")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not cli.repo.git("branch", "--list", f"plait/{run_id}").strip()
    before = _state(cli, run_id)
    refs = cli.repo.git("for-each-ref")

    # `status` does not send the user to a resume that cannot work.
    shown = cli.run("status", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "interrupted" in shown.stdout
    assert "cannot be resumed" in shown.stdout
    assert "plait resume" not in shown.stdout

    resumed = cli.run("resume", run_id)
    assert resumed.returncode == 2, (resumed.returncode, resumed.stdout, resumed.stderr)
    message = resumed.stdout + resumed.stderr
    assert f"result branch plait/{run_id} is gone" in message
    assert "rev-parse" not in message  # no raw git error
    assert _state(cli, run_id) == before  # nothing recorded, nothing reconciled
    assert cli.repo.git("for-each-ref") == refs


# --- 4. the fixer's and the verify's settings on the Plan, for plans built in Python ---

WRITER = """
import os, pathlib
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out", os.environ["PLAIT_TASK_ID"] + ".txt").write_text("done\\n")
"""

#: Fails its first attempt; then writes the file its environment names.
MENDER = """
import os, pathlib, sys
if os.environ["PLAIT_ATTEMPT"] == "1":
    sys.exit(1)
pathlib.Path(os.environ["FIX_FILE"]).write_text("fixed\\n")
"""

#: Passes once fixed.txt is there; hangs otherwise (only a time limit ends it).
HANGING_CHECK = """
import pathlib, sys, time
if pathlib.Path("fixed.txt").exists():
    sys.exit(0)
time.sleep(120)
"""


def test_a_plan_built_in_python_gives_its_fixer_and_verify_their_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitrepo import git_identity
    from plait import Agent, Fixer, Plan, Task, run_plan

    git_identity(monkeypatch)
    repo = GitRepo.create(tmp_path / "repo")
    plan = Plan(
        tasks=[Task(id="t", prompt="write", agent="writer", writes=("out/t.txt",))],
        agents=[
            Agent("writer", command=(PYTHON, "-c", WRITER)),
            Agent("mender", command=(PYTHON, "-c", MENDER)),
        ],
        verify=(PYTHON, "-c", HANGING_CHECK),
        verify_timeout_s=2.0,
        on_verify_failure=Fixer("mender", "fix it", retries=1, env={"FIX_FILE": "fixed.txt"}),
        root=repo.path,
    )
    began = time.monotonic()
    result = run_plan(plan, home=tmp_path / "home")
    took = time.monotonic() - began
    # The hanging check was ended by the plan's own limit (not the 1 h default), the
    # fixer's first attempt failed and its retry wrote the file its env named.
    assert result.status == "succeeded", result
    assert took < 60
    with Store.open(tmp_path / "home") as store:
        fixer_attempts = [a for a in store.attempts(result.run_id) if a.task_id != "t"]
    assert [a.status for a in sorted(fixer_attempts, key=lambda a: a.attempt)] == ["failed", "ok"]
    assert repo.git("show", f"plait/{result.run_id}:fixed.txt") == "fixed\n"


def test_stale_ref_locks_of_the_run_are_cleared_and_no_one_elses(tmp_path: Path) -> None:
    """A git killed while writing one of the run's refs leaves `<ref>.lock`: every later
    write of that ref would fail with "File exists"."""
    from plait.branches import clear_stale_ref_locks

    run = "20261128-010000-ab12"
    common = tmp_path / ".git"
    stale = [
        common / "refs/heads/plait/tasks" / run / "p1.lock",
        common / "refs/heads/plait" / f"{run}.lock",
        common / "refs/plait/snapshots" / run / "p1" / "2.lock",
    ]
    others = [common / "refs/heads/main.lock", common / "refs/heads/plait/tasks/other/x.lock"]
    for path in stale + others:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0" * 40 + "\n")
    assert sorted(clear_stale_ref_locks(common, run)) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in others)


def test_resume_goes_on_past_a_ref_lock_a_killed_git_left(cli_factory: MakeCli) -> None:
    command = json.dumps([PYTHON, "-c", TICKER, "1.0"])
    cli = cli_factory({"plan.yaml": TICKER_PLAN.format(command=command)})
    run_id = cli.killed_run("plan.yaml")
    # as a git killed in the middle of `worktree add -B` (with plait) leaves it
    lock = cli.repo.common_dir / "refs/heads/plait/tasks" / run_id / "a.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("0" * 40 + "\n")

    resumed = cli.run("resume", run_id, "--json")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert not lock.exists()
    assert all(t["status"] == "succeeded" for t in json.loads(resumed.stdout)["tasks"])


def test_resume_removes_a_worktree_git_was_still_making(cli_factory: MakeCli) -> None:
    command = json.dumps([PYTHON, "-c", TICKER, "1.0"])
    cli = cli_factory({"plan.yaml": TICKER_PLAN.format(command=command)})
    run_id = cli.killed_run("plan.yaml")
    # as `git worktree add` killed half-way leaves one: HEAD still its placeholder
    half = cli.home / "worktrees" / run_id / "d-1"
    cli.repo.git("worktree", "add", "-q", "--no-checkout", "--detach", str(half), "HEAD")
    (cli.repo.common_dir / "worktrees" / "d-1" / "HEAD").write_text("0" * 40 + "\n")
    broken = subprocess.run(["git", "fsck", "--no-progress"], cwd=cli.repo.path, env=cli.env,
                            capture_output=True, text=True)  # fmt: skip
    assert "points at nothing" in broken.stderr

    resumed = cli.run("resume", run_id)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert str(half.resolve()) not in cli.repo.worktrees()
    cli.repo.fsck()


def test_resume_keeps_a_worktree_an_agent_put_on_an_orphan_branch(cli_factory: MakeCli) -> None:
    """`git checkout --orphan` leaves HEAD without a commit too, but on a branch: the
    agent's files there are work, not a half-made worktree."""
    command = json.dumps([PYTHON, "-c", TICKER, "1.0"])
    cli = cli_factory({"plan.yaml": TICKER_PLAN.format(command=command)})
    run_id = cli.killed_run("plan.yaml")
    orphan = cli.home / "worktrees" / run_id / "o-1"
    cli.repo.git("worktree", "add", "-q", "--detach", str(orphan), "HEAD")
    subprocess.run(["git", "checkout", "-q", "--orphan", "scratch"], cwd=orphan, env=cli.env,
                   check=True)  # fmt: skip
    (orphan / "work.txt").write_text("the agent's\n")

    resumed = cli.run("resume", run_id)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (orphan / "work.txt").read_text() == "the agent's\n"
