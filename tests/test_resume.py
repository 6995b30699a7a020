"""Crash safety: `plait run` killed with SIGKILL at many moments, then `plait resume`.

DESIGN §5: a task recorded as finished never runs again; an attempt in flight at
the crash runs again; the run completes with the outcomes an uninterrupted run
has. DESIGN §4 step 8: a kill during a merge leaves `plait/<run>` at the old or
the new commit, never anything else.

Every kill point is a real `python -m plait` subprocess killed with SIGKILL: plait
alone (its agents and git children live on, as after an OOM kill), or in one chain
its whole process group (git commands die mid-way; agents, in their own sessions,
live on until resume ends them). To keep the file fast, the kill points of one
test form a chain: the run is killed, the resume is killed later, the next resume
later still, until a resume is left to finish. Each kill is checked against the
store as it was right after that kill, so a chain of k kills proves k kill points.
Three chains: after the k-th new event of each process (and a few resumes killed
while reconciling), at time offsets after each process's start, and inside merges
(the moment a task's row says "merging", or the moment its merge moved the branch).

The agents (`agents/resume_agent.py`) append "<task> <attempt> <pid> <ppid>" to
a ledger outside the repository before doing anything, so the ledger says which
plait process started each execution.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gitrepo import IDENTITY, ISOLATION, GitRepo
from plait.pool import POOL_DIR
from plait.resume import RESUMED_EVENT
from plait.store import FINISHED_TASK_STATUSES, Store

PYTHON = sys.executable
AGENT = str(Path(__file__).parent / "agents" / "resume_agent.py")
SUCCEEDED = "succeeded"
#: Attempt statuses that mean the attempt itself failed (its worktree may be kept).
FAILED_ATTEMPTS = {"failed", "rejected", "errored", "timeout", "crashed", "conflict"}

# A diamond (a → b, c → d) then a chain (d → e → f → g), edges made by templates
# (each prompt holds the outputs of the tasks before it), with side tasks so that
# merges are frequent, a task that fails (its dependant is skipped), one that
# fails once and then succeeds, and one that fails every attempt. The failures
# are continue_on_error so that the run reaches the plan's verify (more kill points).
CHECK = (
    "import pathlib, sys; "
    "sys.exit(0 if all(pathlib.Path(f'out/{t}.txt').is_file() for t in 'abcdefg') else 1)"
)
PLAN = """\
version: 1
name: resume-proof
jobs: 3
defaults:
  retries: 0
verify: {check}
agents:
  ok: {{backend: command, command: {ok}}}
  slow: {{backend: command, command: {slow}}}
  fail: {{backend: command, command: {fail}}}
  flaky: {{backend: command, command: {flaky}}}
tasks:
  a: {{agent: ok, prompt: a, writes: [out/a.txt]}}
  b: {{agent: slow, prompt: "b {{{{ tasks.a.output }}}}", writes: [out/b.txt]}}
  c: {{agent: ok, prompt: "c {{{{ tasks.a.output }}}}", writes: [out/c.txt]}}
  d: {{agent: ok, prompt: "d {{{{ tasks.b.output }}}} {{{{ tasks.c.output }}}}",
      writes: [out/d.txt], verify: {verify_d}}}
  e: {{agent: ok, prompt: "e {{{{ tasks.d.output }}}}", writes: [out/e.txt]}}
  f: {{agent: slow, prompt: "f {{{{ tasks.e.output }}}}", writes: [out/f.txt]}}
  g: {{agent: ok, prompt: "g {{{{ tasks.f.output }}}}", writes: [out/g.txt]}}
  p1: {{agent: ok, prompt: "p1 {{{{ tasks.a.output }}}}", writes: [out/p1.txt]}}
  p2: {{agent: ok, prompt: "p2 {{{{ tasks.c.output }}}}", writes: [out/p2.txt]}}
  bad: {{agent: fail, prompt: x, writes: [out/bad.txt], needs: a, continue_on_error: true}}
  after-bad: {{agent: ok, prompt: x, writes: [out/after-bad.txt], needs: bad}}
  flaky: {{agent: flaky, prompt: x, writes: [out/flaky.txt], needs: b, retries: 1}}
  doomed: {{agent: fail, prompt: x, writes: [out/doomed.txt], needs: c, retries: 1,
           continue_on_error: true}}
"""
#: Failed attempts per task in any run of the plan: interruptions must not add any.
#: (flaky fails on its attempt number 1 only, so a kill during that attempt spares it.)
FAILURES = {"bad": 1, "doomed": 2}
TASKS = ("a", "b", "c", "d", "e", "f", "g", "p1", "p2", "bad", "after-bad", "flaky", "doomed")


def _plan_text(ledger: Path) -> str:
    def agent(mode: str, sleep: str) -> str:
        return json.dumps([PYTHON, AGENT, str(ledger), mode, sleep])

    verify_d = json.dumps(
        [PYTHON, "-c", "import pathlib; assert pathlib.Path('out/d.txt').read_text()[:2] == 'd\\n'"]
    )
    return PLAN.format(
        check=json.dumps([PYTHON, "-c", CHECK]),
        ok=agent("ok", "0.05"),
        slow=agent("ok", "0.3"),
        fail=agent("fail", "0.05"),
        flaky=agent("flaky", "0.05"),
        verify_d=verify_d,
    )


@dataclass(frozen=True)
class Reference:
    """How the plan ends when nothing interrupts it."""

    status: str
    outcomes: dict[str, str]
    tree: str  # `git ls-tree -r` of out/ on plait/<run>: every file's blob id


@dataclass
class Kill:
    """What the store and git said right after one SIGKILL."""

    pid: int  # the plait process that was killed
    finished: dict[str, str]  # task -> its finished status
    in_flight: set[str]  # tasks with an attempt started and no outcome
    merging: dict[str, str]  # task -> its commit, for rows in "merging"
    succeeded_commits: set[str]  # integration commits recorded for succeeded tasks
    tip: str  # plait/<run> right after the kill
    #: The killed process had written no event but the one a resume records as it starts
    #: (killed while starting, before it ran anything).
    quiet: bool = False


@dataclass
class Chain:
    """The processes of one chain of kills and what each kill saw."""

    pids: list[int] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    returncode: int | None = None


class Harness:
    """A fresh repository, PLAIT_HOME and ledger; starts and kills plait in it."""

    def __init__(self, root: Path, plan: str | None = None) -> None:
        self.root = root
        self.home = root / "plait-home"
        self.ledger_path = root / "ledger.txt"
        self.repo = GitRepo.create(root / "repo")
        self.repo.write("plan.yaml", plan or _plan_text(self.ledger_path))
        self.repo.commit("plan")
        self.base = self.repo.head()
        self.env = {**os.environ, **IDENTITY, **ISOLATION, "PLAIT_HOME": str(self.home)}
        for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
            self.env.pop(key, None)
        self._logs = 0
        self.kill_group = False

    # --- processes -------------------------------------------------------------------

    def spawn(self, *argv: str) -> subprocess.Popen[bytes]:
        """Start `python -m plait ARGV` in the repository; output goes to a log file."""
        self._logs += 1
        log = (self.root / f"plait-{self._logs}.log").open("wb")
        with log:
            return subprocess.Popen(
                [PYTHON, "-m", "plait", *argv],
                cwd=self.repo.path,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group, so `kill_group` spares pytest
            )

    def kill_when(
        self, process: subprocess.Popen[bytes], trigger: Callable[[], bool], timeout: float = 60
    ) -> bool:
        """SIGKILL `process` as soon as `trigger()` holds; False if it ended first."""
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if trigger():
                if self.kill_group:  # plait and its git children, as a container kill
                    os.killpg(process.pid, signal.SIGKILL)
                else:  # plait alone, as the OOM killer does: its children finish
                    os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return True
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise AssertionError(f"plait did not reach the kill point in {timeout}s")
            time.sleep(0.002)
        return False

    # --- state -------------------------------------------------------------------------

    def run_id(self) -> str | None:
        runs = self.home / "runs"
        found = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
        return found[0] if found else None

    def run_events(self, *, after: int) -> list[str]:
        """The kinds of the events after the first `after`, but a resume's start."""
        run = self.run_id()
        assert run is not None
        path = self.home / "runs" / run / "events.jsonl"
        lines = path.read_text().splitlines()[after:] if path.exists() else []
        kinds = [json.loads(line)["kind"] for line in lines]
        return [kind for kind in kinds if kind != RESUMED_EVENT]

    def event_count(self) -> int:
        run = self.run_id()
        if run is None:
            return 0
        path = self.home / "runs" / run / "events.jsonl"
        try:
            return path.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def tip(self) -> str:
        run = self.run_id()
        assert run is not None
        return self.repo.head(f"refs/heads/plait/{run}")

    def out_tree(self, commit: str) -> str:
        """`git ls-tree -r COMMIT out/`: each file's mode, blob id and path."""
        return self.repo.git("ls-tree", "-r", commit, "out/")

    def tip_fast(self) -> str:
        """`plait/<run>` read from its loose ref file (cheap enough to poll)."""
        run = self.run_id()
        assert run is not None
        ref = self.repo.common_dir / "refs" / "heads" / "plait" / run
        try:
            return ref.read_text().strip()
        except FileNotFoundError:
            return self.tip()

    def snapshot(self, pid: int) -> Kill:
        """Read the store and the integration branch right after `pid` was killed."""
        run = self.run_id()
        assert run is not None
        with Store.open(self.home) as store:
            rows = store.tasks(run)
        finished = {r.id: r.status for r in rows if r.status in FINISHED_TASK_STATUSES}
        in_flight = {r.id for r in rows if r.status in ("running", "verifying", "merging")}
        merging = {r.id: r.commit or "" for r in rows if r.status == "merging"}
        commits = {r.commit for r in rows if r.status == SUCCEEDED and r.commit}
        return Kill(pid, finished, in_flight, merging, commits, self.tip())

    def ledger(self) -> list[tuple[str, int, int, int]]:
        """(task, attempt, pid, parent pid) of every agent execution so far."""
        text = self.ledger_path.read_text() if self.ledger_path.exists() else ""
        out = []
        for line in text.splitlines():
            task, attempt, pid, ppid = line.split()
            out.append((task, int(attempt), int(pid), int(ppid)))
        return out

    def final_state(self) -> tuple[str, dict[str, str]]:
        run = self.run_id()
        assert run is not None
        with Store.open(self.home) as store:
            return store.run(run).status, {r.id: r.status for r in store.tasks(run)}

    def failed_attempts(self) -> dict[str, int]:
        """How many attempts of each task failed (interrupted ones did not)."""
        counts: dict[str, int] = {}
        for (task, _number), status in self.attempts().items():
            if status in FAILED_ATTEMPTS:
                counts[task] = counts.get(task, 0) + 1
        return counts

    def attempts(self) -> dict[tuple[str, int], str]:
        run = self.run_id()
        assert run is not None
        with Store.open(self.home) as store:
            return {(a.task_id, a.attempt): a.status for a in store.attempts(run)}

    # --- chains ------------------------------------------------------------------------

    def chain(self, triggers: list[Callable[[Harness, float, int], bool]]) -> Chain:
        """`plait run`, then kill/resume at each trigger; the last resume runs to the end.

        A trigger gets the harness, the process's start time and the event count when
        it started; the chain stops early once a process ends before its trigger.
        """
        result = Chain()
        process = self.spawn("run", "plan.yaml")
        for trigger in triggers:
            result.pids.append(process.pid)
            before = self.event_count()
            armed = functools.partial(trigger, self, time.monotonic(), before)
            if not self.kill_when(process, armed):
                break
            kill = self.snapshot(process.pid)
            kill.quiet = not self.run_events(after=before)
            result.kills.append(kill)
            process = self.spawn("resume")
        else:
            result.pids.append(process.pid)
        try:
            result.returncode = process.wait(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return result


# --- triggers ------------------------------------------------------------------------------


def after_events(k: int) -> Callable[[Harness, float, int], bool]:
    """Kill right after this process wrote its k-th event."""
    return lambda h, _started, before: h.event_count() >= before + k


def after_seconds(offset: float) -> Callable[[Harness, float, int], bool]:
    """Kill `offset` seconds after this process wrote its first event (its run start)."""
    state: dict[str, float] = {}

    def trigger(h: Harness, _started: float, before: int) -> bool:
        if "t0" not in state:
            if h.event_count() <= before:
                return False
            state["t0"] = time.monotonic()
        return time.monotonic() - state["t0"] >= offset

    return trigger


def during_reconcile() -> Callable[[Harness, float, int], bool]:
    """Kill a resume while it reconciles: once it has closed the attempts left in flight,
    before it starts running tasks (or at its first event if nothing was in flight)."""
    had: list[bool] = []

    def trigger(h: Harness, _started: float, before: int) -> bool:
        run = h.run_id()
        assert run is not None
        conn = sqlite3.connect(f"file:{h.home / 'state.db'}?mode=ro", uri=True)
        try:
            (open_attempts,) = conn.execute(
                "SELECT count(*) FROM attempts WHERE run_id = ? AND finished_at IS NULL", (run,)
            ).fetchone()
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
        if not had:
            had.append(open_attempts > 0)
        return open_attempts == 0 if had[0] else h.event_count() > before

    return trigger


def on_merge(seen: set[tuple[str, str]], *, landed: bool) -> Callable[[Harness, float, int], bool]:
    """Kill inside a merge: the moment a task's row says "merging" for a commit not seen
    merging before, or (`landed`) the moment after that merge moved `plait/<run>`,
    before the run has recorded the task as merged."""
    conn: list[sqlite3.Connection] = []
    tip_then: list[str] = []

    def trigger(h: Harness, _started: float, _before: int) -> bool:
        if tip_then:
            return h.tip_fast() != tip_then[0]
        run = h.run_id()
        if run is None or not (h.home / "state.db").exists():
            return False
        if not conn:
            conn.append(sqlite3.connect(f"file:{h.home / 'state.db'}?mode=ro", uri=True))
        try:
            rows = (
                conn[0]
                .execute(
                    "SELECT task_id, commit_sha FROM tasks WHERE run_id = ? AND status = 'merging'",
                    (run,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError:
            return False  # the database is being created or checkpointed
        fresh = {(str(t), str(c)) for t, c in rows} - seen
        if not fresh:
            return False
        seen.update(fresh)
        conn.pop().close()
        if not landed:
            return True
        tip_then.append(h.tip_fast())
        return False

    return trigger


# --- checks --------------------------------------------------------------------------------


def _first_parents(repo: GitRepo, tip: str, base: str) -> list[tuple[str, list[str], str]]:
    """(commit, parents, subject) along the first-parent line from `tip` back to `base`."""
    out = repo.git("log", "--first-parent", "--format=%H %P%x00%s", f"{base}..{tip}")
    rows = []
    for line in out.splitlines():
        ids, _, subject = line.partition("\0")
        commit, *parents = ids.split()
        rows.append((commit, parents, subject))
    return rows


def _check_merge_window(h: Harness, kill: Kill, known: set[str]) -> int:
    """The branch after a kill is each in-progress merge's old or new commit.

    Walking first parents back from the tip seen after the kill, every commit newer
    than one the store (or an earlier kill) knew must be the merge commit of a task
    whose row said "merging", with that task's commit as second parent. Returns how
    many such landed-but-unrecorded merges there were.
    """
    commit, landed = kill.tip, 0
    while commit not in known:
        parents = h.repo.git("rev-list", "--parents", "-n", "1", commit).split()[1:]
        assert len(parents) == 2, f"{commit} on plait/<run> is not a merge commit"
        assert parents[1] in kill.merging.values(), (
            f"plait/<run> at {commit}: merges {parents[1]}, which no 'merging' row names "
            f"({kill.merging})"
        )
        landed += 1
        assert landed <= len(kill.merging)
        commit = parents[0]
    return landed


def _check_chain(h: Harness, chain: Chain, reference: Reference) -> dict[str, int]:
    """Every property a chain of kills must keep; counts for the summary."""
    assert chain.kills, "no kill point was reached"
    status, outcomes = h.final_state()
    # (1) the run completes, with the outcomes of an uninterrupted run
    assert chain.returncode == 0, (h.root / f"plait-{len(chain.pids)}.log").read_text()
    assert (status, outcomes) == (reference.status, reference.outcomes)
    # retries spent before an interruption stay spent: no more failures than allowed
    failed = h.failed_attempts()
    assert failed.pop("flaky", 0) <= 1
    assert failed == FAILURES

    ledger = h.ledger()
    by_process: dict[int, list[str]] = {}
    for task, _attempt, _pid, ppid in ledger:
        if ppid > 1:  # 1: plait died before its agent asked; it cannot be told apart
            by_process.setdefault(ppid, []).append(task)
    once = [t for t in TASKS if t not in ("bad", "flaky", "doomed")]
    for pid, tasks in by_process.items():
        twice = {t for t in once if tasks.count(t) > 1}
        assert not twice, f"process {pid} ran {sorted(twice)} more than once"
    in_flight = re_executed = landed_total = 0
    known = {h.base}
    for number, kill in enumerate(chain.kills):
        later = chain.pids[number + 1 :]
        # (2) nothing recorded as finished at this kill runs in any later process
        ran_later = {t for pid in later for t in by_process.get(pid, [])}
        assert not ran_later & kill.finished.keys(), (
            f"kill {number}: finished tasks ran again: {sorted(ran_later & kill.finished.keys())}"
        )
        # an attempt in flight runs again in the next process (unless its merge landed)
        next_run = by_process.get(chain.pids[number + 1], [])
        in_flight += len(kill.in_flight)
        re_executed += len(kill.in_flight & set(next_run))
        # (5) the integration branch is at an old or a new commit of each merge
        known |= kill.succeeded_commits
        landed = _check_merge_window(h, kill, known)
        landed_total += landed
        known.add(kill.tip)

    # (3) plait/<run> holds exactly the succeeded tasks' files, each merged once, with
    # the same bytes as after an uninterrupted run (so the same outputs reached prompts)
    tip = h.tip()
    files = set(h.repo.git("ls-tree", "-r", "--name-only", tip, "out/").split())
    succeeded = {t for t, s in outcomes.items() if s == SUCCEEDED}
    assert files == {f"out/{t}.txt" for t in succeeded}
    assert h.out_tree(tip) == reference.tree
    history = _first_parents(h.repo, tip, h.base)
    merges = sorted(s.split()[2] for _c, parents, s in history if len(parents) == 2)
    assert merges == sorted(succeeded), "each succeeded task is merged exactly once"
    for kill in chain.kills:
        assert kill.tip in {h.base, *(c for c, _p, _s in history)}, "history was rewritten"

    # (4) git is sound; worktrees left are failed attempts' only
    h.repo.fsck()
    attempts = _attempts_by_worktree(h)
    for path, status_of_attempt in attempts.items():
        assert status_of_attempt in FAILED_ATTEMPTS, f"stray worktree {path} ({status_of_attempt})"
    run = h.run_id()
    left = {b.rsplit("/", 1)[1] for b in h.repo.branches(f"plait/tasks/{run}/*")}
    assert left <= {t for t, s in outcomes.items() if s == "failed"}, f"stray branches {left}"
    # no agent of any process lives on
    _assert_gone([pid for _t, _a, pid, _pp in ledger])
    return {
        "kills": len(chain.kills),
        "in_flight": in_flight,  # tasks with an attempt under way at the kill
        "re_executed": re_executed,  # of those, run again by the very next process
        "landed": landed_total,  # merges found in git and recorded, not run again
    }


def _attempts_by_worktree(h: Harness) -> dict[str, str]:
    """Each worktree plait left in PLAIT_HOME → the status of the attempt it belongs to.

    Parked ones (the pool, kept for the next run) belong to no attempt: at most one
    per job is left."""
    statuses = h.attempts()
    out = {}
    parked = 0
    for path in h.repo.worktrees()[1:]:
        rel = Path(path).relative_to(h.home.resolve())
        assert rel.parts[0] == "worktrees", f"stray worktree {path}"
        if rel.parts[1] == POOL_DIR:
            parked += 1
            continue
        task, _, number = rel.parts[-1].rpartition("-")
        out[path] = statuses.get((task, int(number)), "unknown")
    assert parked <= 3, "the pool keeps one worktree per job (the plan's jobs: 3)"
    return out


def _assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    for pid in pids:
        while _alive(pid):
            assert time.monotonic() < deadline, f"agent process {pid} survived"
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# --- tests ---------------------------------------------------------------------------------

SUMMARY: dict[str, dict[str, int]] = {}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """The outcome of the same plan run without interruption."""
    h = Harness(tmp_path_factory.mktemp("reference"))
    process = h.spawn("run", "plan.yaml")
    assert process.wait(timeout=90) == 0, (h.root / "plait-1.log").read_text()
    status, outcomes = h.final_state()
    state = (status, outcomes)
    assert state[1] == {
        **dict.fromkeys(["a", "b", "c", "d", "e", "f", "g", "p1", "p2", "flaky"], SUCCEEDED),
        "bad": "failed",
        "after-bad": "skipped",
        "doomed": "failed",
    }
    assert state[0] == SUCCEEDED
    failed = h.failed_attempts()
    assert failed.pop("flaky", 0) <= 1
    assert failed == FAILURES
    executions = [t for t, _a, _p, _pp in h.ledger()]
    ran = [t for t in TASKS if t != "after-bad"]
    assert sorted(executions) == sorted([*ran, "flaky", "doomed"])  # one retry each
    yield Reference(status, outcomes, h.out_tree(h.tip()))
    keys = ("kills", "in_flight", "re_executed", "landed")
    total = {k: sum(s[k] for s in SUMMARY.values()) for k in keys}
    sys.stdout.write(f"\nresume summary: {SUMMARY} total: {total}\n")


def test_kill_after_each_kth_event(tmp_path: Path, reference: Reference) -> None:
    """Kill every process right after its k-th event (k = 1, 2, 3, …), resume, repeat;
    three of the resumes are killed while they reconcile instead."""
    h = Harness(tmp_path)
    triggers = [after_events(k) for k in range(1, 14)]
    for position in (3, 7, 11):  # and a few resumes killed while reconciling
        triggers.insert(position, during_reconcile())
    chain = h.chain(triggers)
    SUMMARY["events"] = _check_chain(h, chain, reference)
    assert len(chain.kills) >= 8
    assert any(kill.quiet for kill in chain.kills), "no resume was killed while starting"


def test_kill_at_time_offsets(tmp_path: Path, reference: Reference) -> None:
    """Kill every process at a growing time offset after its start, resume, repeat.

    These kills take plait's whole process group (its git commands die mid-way too).
    """
    h = Harness(tmp_path)
    h.kill_group = True
    chain = h.chain([after_seconds(0.05 + 0.1 * i) for i in range(20)])
    SUMMARY["time"] = _check_chain(h, chain, reference)
    assert len(chain.kills) >= 5


def test_kill_during_merges(tmp_path: Path, reference: Reference) -> None:
    """Kill inside merges, before and after the ref moved: old or new commit, never else."""
    h = Harness(tmp_path)
    seen: set[tuple[str, str]] = set()
    chain = h.chain([on_merge(seen, landed=i % 2 == 1) for i in range(8)])
    SUMMARY["merge"] = counts = _check_chain(h, chain, reference)
    assert len(chain.kills) >= 7
    assert sum(1 for kill in chain.kills if kill.merging) >= 6, "kills hit merges in progress"
    # both sides of the compare-and-swap were hit: the old tip and the new merge commit
    assert 0 < counts["landed"] < len(chain.kills)


OUTPUT_PLAN = """\
version: 1
name: output-file
agents:
  writer:
    backend: command
    command: ["sh", "-c", "echo from-file > result.md; echo work > a.txt; echo stdout"]
  reader: {backend: command, command: ["sh", "-c", "cat > b.txt"]}
tasks:
  a: {agent: writer, prompt: a, output: result.md, writes: [a.txt]}
  b: {agent: reader, prompt: "got {{ tasks.a.output }}", writes: [b.txt]}
"""


def test_output_of_a_merge_that_landed_before_the_kill(tmp_path: Path) -> None:
    """Kill right after a's merge moved the branch: b still gets a's `output:` file."""
    h = Harness(tmp_path, OUTPUT_PLAN)
    chain = h.chain([on_merge(set(), landed=True)])
    assert chain.returncode == 0, (h.root / f"plait-{len(chain.pids)}.log").read_text()
    [kill] = chain.kills
    assert "a" in kill.merging and _check_merge_window(h, kill, {h.base}) == 1
    tip = h.tip()
    assert h.repo.show(tip, "b.txt") == "got from-file\n"
    run = h.run_id()
    assert run is not None
    with Store.open(h.home) as store:
        row = store.task(run, "a")
    # the output file is plait's channel, not the task's work: a.txt alone is committed
    assert (row.status, row.output, row.changed_files) == (SUCCEEDED, "from-file\n", ("a.txt",))
    # its commit is the merge commit on plait/<run>, as after an uninterrupted run
    assert row.commit in h.repo.git("rev-list", "--first-parent", tip).split()
    assert not h.repo.branches(f"plait/tasks/{run}/*")
    assert _attempts_by_worktree(h) == {}  # none but the pool's
