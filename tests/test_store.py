"""The run journal: rows, events and their jsonl mirror, batching, durability, state_home."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.errors import EnvironmentProblem, RunNotFound
from plait.eventlog import read_events
from plait.runjson import status_json
from plait.statehome import WORKTREES_RECORD, new_run_id, state_home, worktrees_home
from plait.store import Store


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    with Store.open(home) as s:
        yield s


def make_run(
    store: Store,
    run_id: str = "r1",
    tasks: tuple[str, ...] = ("a", "b", "c"),
    plan: str = "demo",
    started_at: float = 1000.0,
) -> None:
    store.create_run(
        run_id,
        plan_name=plan,
        plan_path="plait.yaml",
        plan_json='{"name": "demo"}',
        base="abc123",
        branch=f"plait/{run_id}",
        jobs=4,
        started_at=started_at,
        task_ids=list(tasks),
    )


def file_events(store: Store, run_id: str) -> list[dict[str, object]]:
    lines = store.events_path(run_id).read_bytes().splitlines()
    return [json.loads(line) for line in lines]


def run_child(code: str, home: Path) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script, str(home)], capture_output=True, text=True, timeout=60
    )


# --- runs and tasks ---------------------------------------------------------------------


def test_create_and_read_run(store: Store) -> None:
    make_run(store)
    run = store.run("r1")
    assert (run.id, run.plan_name, run.plan_path, run.base, run.branch, run.jobs) == (
        "r1",
        "demo",
        "plait.yaml",
        "abc123",
        "plait/r1",
        4,
    )
    assert run.status == "running" and run.started_at == 1000.0 and run.pid is not None
    assert run.finished_at is None and run.verify is None
    assert [(t.id, t.status, t.attempts, t.merged) for t in store.tasks("r1")] == [
        ("a", "pending", 0, False),
        ("b", "pending", 0, False),
        ("c", "pending", 0, False),
    ]

    store.update_run(
        "r1",
        status="succeeded",
        finished_at=1010.0,
        head="def456",
        verify={"ok": True, "output": "3 passed"},
        wall_s=10.0,
    )
    run = store.run("r1")
    assert (run.status, run.finished_at, run.head, run.wall_s) == (
        "succeeded",
        1010.0,
        "def456",
        10.0,
    )
    assert run.verify == {"ok": True, "output": "3 passed"}


def test_runs_newest_first_and_resolving_ids(store: Store) -> None:
    assert store.latest_run_id() is None
    with pytest.raises(RunNotFound):
        store.resolve_run_id(None)
    make_run(store, "20260101-100000-aaaa", started_at=1.0)
    make_run(store, "20260101-110000-bbbb", started_at=2.0)
    make_run(store, "20260102-090000-cccc", started_at=3.0)
    assert [r.id for r in store.runs()] == [
        "20260102-090000-cccc",
        "20260101-110000-bbbb",
        "20260101-100000-aaaa",
    ]
    assert [r.id for r in store.runs(limit=1)] == ["20260102-090000-cccc"]
    assert store.latest_run_id() == "20260102-090000-cccc"
    assert store.resolve_run_id(None) == "20260102-090000-cccc"
    assert store.resolve_run_id("20260101-11") == "20260101-110000-bbbb"
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.resolve_run_id("20260101")
    with pytest.raises(RunNotFound):
        store.resolve_run_id("1999")
    with pytest.raises(RunNotFound):
        store.run("nope")


def test_update_task_encodes_and_validates(store: Store) -> None:
    make_run(store)
    store.update_task(
        "r1",
        "b",
        status="succeeded",
        attempts=2,
        started_at=5.0,
        finished_at=7.5,
        commit="c0ffee",
        merged=True,
        changed_files=["src/x.py", "README.md"],
        scope_violations=[],
        output="done ✓",
        error="",
        cost_usd=0.25,
        tokens=1234,
    )
    t = store.task("r1", "b")
    assert (t.status, t.attempts, t.commit, t.merged, t.cost_usd, t.tokens) == (
        "succeeded",
        2,
        "c0ffee",
        True,
        0.25,
        1234,
    )
    assert t.changed_files == ("src/x.py", "README.md") and t.scope_violations == ()
    assert t.output == "done ✓" and t.duration_s == 2.5 and t.finished
    assert not store.task("r1", "a").finished

    with pytest.raises(TypeError, match="bogus"):
        store.update_task("r1", "a", bogus=1)
    with pytest.raises(ValueError, match="status"):
        store.update_task("r1", "a", status="done")
    with pytest.raises(ValueError, match="status"):
        store.update_run("r1", status="finished")
    with pytest.raises(RunNotFound):
        store.update_task("r1", "zzz", status="running")
    with pytest.raises(RunNotFound):
        store.task("r1", "zzz")
    with pytest.raises(RunNotFound):
        store.update_run("r2", status="failed")


def test_add_task_appends_a_pending_row(store: Store) -> None:
    make_run(store, tasks=("a", "b"))
    store.add_task("r1", "fixer")
    assert [t.id for t in store.tasks("r1")] == ["a", "b", "fixer"]
    assert store.task("r1", "fixer").status == "pending"
    assert store.run("r1").run_id == "r1"
    with pytest.raises(sqlite3.IntegrityError):
        store.add_task("r1", "a")


def test_text_that_is_not_utf8_is_kept_not_fatal(store: Store) -> None:
    make_run(store)
    raw = b"ok \xff\xfe end".decode("utf-8", "surrogateescape")
    store.update_task("r1", "a", output=raw)
    assert store.task("r1", "a").output == "ok ?? end"


def test_status_json_has_the_design_fields(store: Store) -> None:
    make_run(store, tasks=("a", "b"))
    store.update_task(
        "r1",
        "a",
        status="succeeded",
        attempts=1,
        started_at=1000.0,
        finished_at=1004.0,
        cost_usd=0.5,
        tokens=10,
    )
    store.update_task(
        "r1",
        "b",
        status="succeeded",
        attempts=1,
        started_at=1000.0,
        finished_at=1004.0,
        cost_usd=0.25,
        tokens=5,
    )
    store.update_run("r1", status="succeeded", finished_at=1004.0, wall_s=4.0, head="h")
    doc = store.status_json("r1")
    for key in ("run", "status", "base", "branch", "head", "wall_s", "tasks", "verify", "totals"):
        assert key in doc
    task_keys = {
        "id",
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "duration_s",
        "commit",
        "merged",
        "changed_files",
        "scope_violations",
        "output",
        "cost_usd",
        "tokens",
    }
    assert task_keys <= set(doc["tasks"][0])
    assert doc["totals"] == {
        "sequential_s": 8.0,
        "wall_s": 4.0,
        "speedup": 2.0,
        "cost_usd": 0.75,
        "tokens": 15,
    }
    json.dumps(doc)  # serialisable as is


# --- attempts -----------------------------------------------------------------------------


def test_attempts_and_unfinished_attempts(store: Store) -> None:
    make_run(store)
    assert store.next_attempt("r1", "a") == 1
    store.start_attempt(
        "r1", "a", 1, kind="first", started_at=10.0, workspace="/w/a", start_commit="base"
    )
    store.finish_attempt(
        "r1",
        "a",
        1,
        status="failed",
        finished_at=12.0,
        exit_code=1,
        error="boom",
        cost_usd=0.1,
        input_tokens=5,
        output_tokens=6,
        session_id="s1",
        commit=None,
    )
    store.start_attempt("r1", "a", 2, kind="retry", started_at=13.0)
    store.start_attempt("r1", "b", 1, kind="first", started_at=11.0)
    assert store.next_attempt("r1", "a") == 3

    all_attempts = store.attempts("r1")
    assert [(x.task_id, x.attempt) for x in all_attempts] == [("a", 1), ("b", 1), ("a", 2)]
    first = store.attempts("r1", "a")[0]
    assert (first.kind, first.status, first.exit_code, first.error, first.session_id) == (
        "first",
        "failed",
        1,
        "boom",
        "s1",
    )
    assert first.workspace == "/w/a" and first.start_commit == "base" and first.duration_s == 2.0

    left = store.unfinished_attempts("r1")
    assert [(x.task_id, x.attempt, x.status) for x in left] == [
        ("b", 1, "running"),
        ("a", 2, "running"),
    ]
    closed = store.close_unfinished_attempts("r1", finished_at=20.0)
    assert [(x.task_id, x.attempt) for x in closed] == [("b", 1), ("a", 2)]
    assert store.unfinished_attempts("r1") == []
    assert store.attempts("r1", "b")[0].status == "interrupted"

    with pytest.raises(ValueError, match="kind"):
        store.start_attempt("r1", "c", 1, kind="second", started_at=1.0)
    with pytest.raises(RunNotFound):
        store.finish_attempt("r1", "c", 9, status="ok", finished_at=1.0)
    with pytest.raises(sqlite3.IntegrityError):
        store.start_attempt("r1", "a", 2, kind="retry", started_at=1.0)


# --- events ---------------------------------------------------------------------------------


def test_events_are_mirrored_to_jsonl(store: Store) -> None:
    make_run(store)
    e1 = store.add_event("r1", "run_started")
    e2 = store.add_event("r1", "task_started", "a", attempt=1, path=Path("/x"))
    with store.batch():
        store.add_event("r1", "task_finished", "a", outcome="succeeded", files=["a", "b"])
        store.add_event("r1", "task_started", "b", attempt=1)
    assert (e1["seq"], e2["seq"]) == (1, 2)
    assert e2["run"] == "r1" and e2["task"] == "a" and e2["kind"] == "task_started"
    events = store.events("r1")
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[1]["path"] == "/x" and events[2]["files"] == ["a", "b"]
    assert file_events(store, "r1") == events
    assert store.events("r1", after_seq=2) == events[2:]
    with pytest.raises(ValueError, match="reserved"):
        store.add_event("r1", "x", seq=5)


def test_events_mirror_without_fsync_too(home: Path) -> None:
    with Store.open(home, fsync_events=False) as store:
        make_run(store)
        with store.batch():
            store.add_event("r1", "a")
            store.add_event("r1", "b", x=1)
        assert file_events(store, "r1") == store.events("r1")
        assert len(store.events("r1")) == 2


def test_event_lines_appear_at_commit_and_vanish_on_rollback(store: Store) -> None:
    make_run(store)
    store.add_event("r1", "one")
    path = store.events_path("r1")
    with store.batch():
        store.add_event("r1", "two")
        assert len(path.read_bytes().splitlines()) == 1  # not before the commit
    assert len(path.read_bytes().splitlines()) == 2

    with pytest.raises(RuntimeError), store.batch():
        store.add_event("r1", "lost")
        store.update_task("r1", "a", status="running")
        raise RuntimeError("step failed")
    assert store.task("r1", "a").status == "pending"
    assert [e["kind"] for e in store.events("r1")] == ["one", "two"]
    assert store.add_event("r1", "three")["seq"] == 3  # the lost seq is reused
    assert file_events(store, "r1") == store.events("r1")


def test_nested_batch_joins_outer_and_rolls_back_alone(store: Store) -> None:
    make_run(store)
    before = store.commits
    with store.batch():
        store.update_task("r1", "a", status="running")
        store.add_event("r1", "kept")
        with store.batch():
            store.update_task("r1", "b", status="running")
        with pytest.raises(KeyError), store.batch():
            store.update_task("r1", "c", status="running")
            store.add_event("r1", "undone")
            raise KeyError("inner")
        store.add_event("r1", "after")
    assert store.commits == before + 1
    assert [t.status for t in store.tasks("r1")] == ["running", "running", "pending"]
    assert [(e["seq"], e["kind"]) for e in store.events("r1")] == [(1, "kept"), (2, "after")]
    assert file_events(store, "r1") == store.events("r1")


def test_a_follower_reads_whole_lines_only(store: Store, tmp_path: Path) -> None:
    make_run(store)
    store.add_event("r1", "one", n=1)
    store.add_event("r1", "two")
    events, offset = read_events(store.events_path("r1"))
    assert events == store.events("r1")
    assert read_events(store.events_path("r1"), offset) == ([], offset)
    store.add_event("r1", "three")
    more, _ = read_events(store.events_path("r1"), offset)
    assert [e["kind"] for e in more] == ["three"]

    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b'{"seq": 1}\n{"seq": 2, "ki')
    events, offset = read_events(partial)
    assert events == [{"seq": 1}] and offset == len(b'{"seq": 1}\n')
    assert read_events(tmp_path / "missing.jsonl") == ([], 0)


def test_inner_rollback_of_a_run_first_seen_inside(store: Store) -> None:
    make_run(store, "r1")
    make_run(store, "r2")
    with store.batch():
        store.add_event("r1", "a")
        with pytest.raises(OSError), store.batch():
            store.add_event("r2", "gone")
            raise OSError("inner")
        store.add_event("r2", "b")
        store.add_event("r1", "c")
    for run_id in ("r1", "r2"):
        assert [e["seq"] for e in store.events(run_id)] == ([1, 2] if run_id == "r1" else [1])
        assert file_events(store, run_id) == store.events(run_id)


def test_events_file_is_repaired_from_the_database(home: Path) -> None:
    with Store.open(home) as store:
        make_run(store)
        for i in range(5):
            store.add_event("r1", "tick", i=i)
        path = store.events_path("r1")
    # A crash after the database commit, before the file write: the file lacks lines.
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3]))
    with Store.open(home) as store:
        store.add_event("r1", "tock")
        assert [e["seq"] for e in file_events(store, "r1")] == [1, 2, 3, 4, 5, 6]
        assert file_events(store, "r1") == store.events("r1")
    # A crash in the middle of a line: the cut line is replaced by the whole history.
    path.write_bytes(path.read_bytes() + b'{"t": 1.0, "seq": 7, "ru')
    with Store.open(home) as store:
        store.add_event("r1", "tack")
        assert file_events(store, "r1") == store.events("r1")
        assert [e["seq"] for e in store.events("r1")] == [1, 2, 3, 4, 5, 6, 7]


# --- batching and durability -------------------------------------------------------------


def test_batches_commit_once(store: Store) -> None:
    make_run(store, tasks=tuple(f"t{i}" for i in range(200)))
    commits: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    start = store.commits
    for step in range(200):
        with store.batch():
            for j in range(10):
                store.update_task("r1", f"t{(step * 10 + j) % 200}", attempts=step)
    assert len(commits) == 200 and store.commits - start == 200

    commits.clear()
    for i in range(20):  # outside a batch, every write is its own commit
        store.update_task("r1", f"t{i}", status="running")
    assert len(commits) == 20


def test_write_survives_sigkill_right_after_it_returns(home: Path) -> None:
    proc = run_child(
        """
        import os, signal, sys
        from pathlib import Path
        from plait.store import Store
        s = Store.open(Path(sys.argv[1]))
        s.create_run("r1", plan_name="p", plan_path=None, plan_json="{}", base=None,
                     branch=None, jobs=1, started_at=1.0, task_ids=["a", "b"])
        s.update_task("r1", "a", status="succeeded", output="out")
        with s.batch():
            s.update_task("r1", "b", status="running")
            s.add_event("r1", "task_started", "b")
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        home,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Store.open(home) as store:
        assert [(t.id, t.status) for t in store.tasks("r1")] == [
            ("a", "succeeded"),
            ("b", "running"),
        ]
        assert store.task("r1", "a").output == "out"
        assert [e["kind"] for e in store.events("r1")] == ["task_started"]
        assert file_events(store, "r1") == store.events("r1")


def test_sigkill_inside_a_batch_keeps_nothing_of_it(home: Path) -> None:
    proc = run_child(
        """
        import os, signal, sys
        from pathlib import Path
        from plait.store import Store
        s = Store.open(Path(sys.argv[1]))
        s.create_run("r1", plan_name="p", plan_path=None, plan_json="{}", base=None,
                     branch=None, jobs=1, started_at=1.0, task_ids=["a"])
        with s.batch():
            s.update_task("r1", "a", status="running")
            s.add_event("r1", "task_started", "a")
            os.kill(os.getpid(), signal.SIGKILL)
        """,
        home,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Store.open(home) as store:
        assert store.task("r1", "a").status == "pending"
        assert store.events("r1") == []


def test_another_process_reads_the_last_commit_while_a_batch_is_open(store: Store) -> None:
    make_run(store)
    reader = """
        import sys
        from pathlib import Path
        from plait.store import Store
        with Store.open(Path(sys.argv[1])) as s:
            print(s.task("r1", "a").status)
        """
    with store.batch():
        store.update_task("r1", "a", status="running")
        seen = run_child(reader, store.home)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.strip() == "pending"
    seen = run_child(reader, store.home)
    assert seen.stdout.strip() == "running"


def test_pragmas_and_schema_version(store: Store, home: Path) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert Store.exists(home) and not Store.exists(home / "elsewhere")
    conn.execute("PRAGMA user_version = 999")
    with pytest.raises(EnvironmentProblem, match="newer"):
        Store.open(home)


# --- history, files, ids -------------------------------------------------------------------


def test_durations_come_from_succeeded_tasks_of_the_same_plan(store: Store) -> None:
    for n, (run_id, plan) in enumerate([("r1", "p"), ("r2", "p"), ("r3", "other"), ("r4", "p")]):
        make_run(store, run_id, tasks=("a", "b"), plan=plan, started_at=100.0 * n)
        store.update_task(run_id, "a", status="succeeded", started_at=0.0, finished_at=n + 1.0)
        store.update_task(run_id, "b", status="failed", started_at=0.0, finished_at=99.0)
    store.update_task("r4", "b", status="merged", started_at=10.0, finished_at=13.0)
    assert store.durations("p") == {"a": [1.0, 2.0, 4.0], "b": [3.0]}
    assert store.durations("p", ["b"]) == {"b": [3.0]}
    assert store.durations("p", exclude_run="r4") == {"a": [1.0, 2.0]}
    assert store.durations("p", per_task=2) == {"a": [2.0, 4.0], "b": [3.0]}
    assert store.durations("nobody") == {}
    assert store.durations("p", before=300.0) == {"a": [1.0, 2.0]}  # r4 started at 300


def test_durations_are_the_tasks_work_without_conflicts_or_waits(store: Store) -> None:
    """A task's span holds a conflicted attempt, its waits and a stop; its history holds
    its work, as its `duration_s` does, so that plans estimate what one run will take."""
    make_run(store, "r1", tasks=("q",), plan="p")
    store.update_task("r1", "q", status="succeeded", started_at=0.0, finished_at=60.0)
    for n, (start, end, status) in enumerate(
        [(0.0, 5.0, "conflict"), (20.0, 22.0, "failed"), (40.0, 43.0, "succeeded")], 1
    ):
        store.start_attempt("r1", "q", n, kind="first", started_at=start)
        store.finish_attempt("r1", "q", n, status=status, finished_at=end)
    assert store.durations("p") == {"q": [5.0]}


def test_run_and_attempt_stems(store: Store) -> None:
    d = store.attempt_stem("r1", "api", 2)
    assert d == store.home / "runs" / "r1" / "api.2" and not d.exists()
    assert store.run_dir("r1") == store.home / "runs" / "r1"
    assert store.events_path("r1") == store.home / "runs" / "r1" / "events.jsonl"
    for bad in ("..", "a/b", ""):
        with pytest.raises(ValueError):
            store.attempt_stem("r1", bad, 1)


def test_new_run_id_shape() -> None:
    now = time.mktime((2026, 11, 27, 19, 56, 12, 0, 0, -1))
    rid = new_run_id(now)
    assert rid.startswith("20261127-195612-") and len(rid) == 20
    assert int(rid[-4:], 16) >= 0
    assert len({new_run_id(now) for _ in range(50)}) > 1


# --- state_home -------------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_state_home_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("PLAIT_HOME", raising=False)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert state_home(plain) == plain / ".plait"
    assert state_home(plain, {"PLAIT_HOME": str(tmp_path / "st")}) == tmp_path / "st"
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "env"))
    assert state_home(plain) == tmp_path / "env"
    assert state_home(plain, {}) == plain / ".plait"
    monkeypatch.delenv("PLAIT_HOME")

    repo = tmp_path / "repo"
    (repo / "src" / "deep").mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "f").write_text("x")
    git("add", "f", cwd=repo)
    git("commit", "-q", "-m", "init", cwd=repo)
    common = (repo / ".git").resolve() / "plait"
    assert state_home(repo) == common
    assert state_home(repo / "src" / "deep") == common
    git("worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side", cwd=repo)
    assert state_home(tmp_path / "wt") == common
    assert state_home(tmp_path / "wt", {"PLAIT_HOME": "/x/y"}) == Path("/x/y")


# --- speed (printed, not asserted tightly) ---------------------------------------------------


def test_micro_benchmark_task_transitions(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    n = 1000
    ids = [f"t{i}" for i in range(n)]
    make_run(store, tasks=tuple(ids))
    start = time.perf_counter()
    for chunk in range(0, n, 10):  # a scheduler step finishing 10 tasks and starting 10 more
        with store.batch():
            for task_id in ids[chunk : chunk + 10]:
                store.update_task("r1", task_id, status="running", started_at=1.0, attempts=1)
                store.start_attempt("r1", task_id, 1, kind="first", started_at=1.0)
                store.add_event("r1", "task_started", task_id, attempt=1)
                store.finish_attempt("r1", task_id, 1, status="ok", finished_at=2.0)
                store.update_task("r1", task_id, status="succeeded", finished_at=2.0)
                store.add_event("r1", "task_finished", task_id, outcome="succeeded")
    batched = (time.perf_counter() - start) / (n * 6) * 1e6
    start = time.perf_counter()
    for task_id in ids[:200]:
        store.update_task("r1", task_id, status="merged")
    unbatched = (time.perf_counter() - start) / 200 * 1e6
    with capsys.disabled():
        print(
            f"\nstore: {batched:.1f} us per transition in batches of 10 tasks; "
            f"{unbatched:.1f} us per transition committed alone"
        )
    assert batched < unbatched * 2 + 1000  # sanity only; the figure is the point
    assert all(t.status in ("succeeded", "merged") for t in store.tasks("r1"))


def test_worktrees_home_keeps_agents_out_of_dot_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    data = tmp_path / "data"
    # State elsewhere (PLAIT_HOME, .plait outside git): worktrees beside it.
    assert (
        worktrees_home(tmp_path / "st", {"XDG_DATA_HOME": str(data)}) == tmp_path / "st/worktrees"
    )
    # State in a repository's .git: under XDG_DATA_HOME, one folder per repository.
    home = tmp_path / "my proj" / ".git" / "plait"
    found = worktrees_home(home, {"XDG_DATA_HOME": str(data)})
    assert found.parent == data / "plait" / "worktrees"
    assert found.name.startswith("my_proj-")
    assert ".git" not in found.parts
    other = worktrees_home(
        tmp_path / "other" / "my proj" / ".git" / "plait", {"XDG_DATA_HOME": str(data)}
    )
    assert other != found  # two repositories of one name do not share a folder
    assert worktrees_home(home, {"XDG_DATA_HOME": str(data)}) == found  # and it is stable
    # A relative XDG_DATA_HOME is ignored (the XDG rule): ~/.local/share.
    fallback = worktrees_home(home, {"XDG_DATA_HOME": "rel"})
    assert fallback.parent == Path.home() / ".local" / "share" / "plait" / "worktrees"


def test_sum_of_task_times_leaves_out_conflict_reruns(store: Store) -> None:
    """A one-at-a-time run would not conflict: the sum counts a task's attempts but the
    conflicted ones (a retry and an interrupted attempt count: that time was spent)."""
    make_run(store, tasks=("a", "b", "c"))
    spans = {
        ("a", 1): ("conflict", 1000.0, 1005.0),
        ("a", 2): ("ok", 1006.0, 1009.0),
        ("b", 1): ("failed", 1000.0, 1002.0),
        ("b", 2): ("ok", 1002.0, 1004.0),
    }
    for (task, n), (status, start, end) in spans.items():
        store.start_attempt("r1", task, n, kind="first" if n == 1 else "retry", started_at=start)
        store.finish_attempt("r1", task, n, status=status, finished_at=end)
    for task, end in (("a", 1010.0), ("b", 1004.0), ("c", 1007.0)):
        store.update_task(
            "r1", task, status="succeeded", started_at=1000.0, finished_at=end, attempts=1
        )
    store.update_run("r1", status="succeeded", finished_at=1010.0, wall_s=10.0)
    doc = status_json(store.run("r1"), store.tasks("r1"), attempts=store.attempts("r1"))
    # a: 3 (its conflicted 5 s left out), b: 2 + 2, c: no attempt recorded, its span 7
    assert doc["totals"]["sequential_s"] == 3.0 + 4.0 + 7.0
    assert doc["totals"]["speedup"] == 1.4


def test_worktrees_home_is_chosen_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded in the state: a later command with another XDG_DATA_HOME or HOME (sudo,
    cron), or the repository moved, still finds the worktrees its runs made."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    home = tmp_path / "proj" / ".git" / "plait"
    home.mkdir(parents=True)
    first = worktrees_home(home, {"XDG_DATA_HOME": str(tmp_path / "a")})
    assert first.parent == tmp_path / "a" / "plait" / "worktrees" and first.is_dir()
    assert json.loads((home / WORKTREES_RECORD).read_text())["worktrees"] == str(first)
    assert worktrees_home(home, {"XDG_DATA_HOME": str(tmp_path / "b")}) == first
    assert worktrees_home(home, {}) == first
    # Copied (`cp -a`): the copy must not share, and so delete, the original's worktrees.
    copy = tmp_path / "copy" / ".git" / "plait"
    shutil.copytree(home, copy)
    copied = worktrees_home(copy, {"XDG_DATA_HOME": str(tmp_path / "a")})
    assert copied != first
    assert worktrees_home(home, {"XDG_DATA_HOME": str(tmp_path / "a")}) == first
    # Moved: the original state folder is gone; the record follows the move.
    moved = tmp_path / "moved" / ".git" / "plait"
    moved.parent.parent.mkdir()
    (tmp_path / "proj").rename(tmp_path / "moved")
    assert worktrees_home(moved, {"XDG_DATA_HOME": str(tmp_path / "b")}) == first
    assert json.loads((moved / WORKTREES_RECORD).read_text())["state"] == str(moved)


def test_a_forged_worktrees_record_is_not_followed(tmp_path: Path) -> None:
    """An agent can write the record (a file in .git), and plait creates and deletes in
    the folder it names: only the folder plait chose for this state is followed."""
    data = tmp_path / "data"
    env = {"XDG_DATA_HOME": str(data)}
    home = tmp_path / "proj" / ".git" / "plait"
    home.mkdir(parents=True)
    own = worktrees_home(home, env)
    other_home = tmp_path / "other" / ".git" / "plait"
    other_home.mkdir(parents=True)
    others = worktrees_home(other_home, env)  # another repository's folder, which exists
    victim = tmp_path / "victim"
    victim.mkdir()
    link = data / "plait" / "worktrees" / "x-aaaaaaaaaaaa"
    link.symlink_to(victim)
    gone = str(tmp_path / "nonexistent" / ".git" / "plait")  # "moved" from nowhere
    record = home / WORKTREES_RECORD
    for state, folder in [
        (gone, "/tmp/victim"),  # not one of plait's folders
        (gone, str(others)),  # another repository's, passed off as this one moved
        (gone, str(link)),  # a link to elsewhere
        (str(home), str(others)),
        (str(other_home), str(others)),  # copied from the other repository
    ]:
        record.write_text(json.dumps({"state": state, "worktrees": folder}))
        assert worktrees_home(home, env) == own, (state, folder)
    # the record itself a link (to the other repository's record): not read
    record.unlink()
    record.symlink_to(other_home / WORKTREES_RECORD)
    assert worktrees_home(home, env) == own
    assert victim.is_dir() and others.is_dir()


def test_worktrees_home_beside_the_state_when_the_data_folder_cannot_be_made(
    tmp_path: Path,
) -> None:
    home = tmp_path / "proj" / ".git" / "plait"
    home.mkdir(parents=True)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert worktrees_home(home, {"XDG_DATA_HOME": str(blocked)}) == home / "worktrees"
    assert not (home / WORKTREES_RECORD).exists()  # the next command may do better


def test_an_open_attempt_counts_to_the_moment_not_to_the_run_clock(store: Store) -> None:
    """After a resume the run's clock (its processes added up) is behind the moment by
    the gap between them: an attempt still open counts to the moment itself."""
    make_run(store, tasks=("a", "b"))
    store.start_attempt("r1", "a", 1, kind="first", started_at=1000.0)
    store.finish_attempt("r1", "a", 1, status="ok", finished_at=1002.0)
    store.update_task("r1", "a", status="succeeded", started_at=1000.0, finished_at=1002.0)
    store.start_attempt("r1", "b", 1, kind="resume", started_at=1010.0)  # after a 5 s gap
    doc = status_json(
        store.run("r1"), store.tasks("r1"), now=1008.0, attempts=store.attempts("r1"),
        open_until=1013.0,
    )  # fmt: skip
    assert doc["totals"]["sequential_s"] == 2.0 + 3.0
