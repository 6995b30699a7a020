"""A run's wall time across its processes, as `status`, `runs` and `report` show it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from plait.status import RESUMED_EVENT, run_wall_s, shown_status
from plait.store import Store

RUN = "20261128-010000-ab12"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_crashed_resume_counts_its_processes_not_the_gap(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.create_run(
            RUN, plan_name="p", plan_path=None, plan_json="{}", base=None, branch=None,
            jobs=1, started_at=time.time() - 100, task_ids=["a"],
        )  # fmt: skip
        # the first process ran 5 s, died; 95 s later a resume started and died at once
        store.add_event(RUN, RESUMED_EVENT, None, wall_before_s=5.0)
        store.update_run(RUN, pid=dead_pid())
        row = store.run(RUN)
        assert shown_status(row) == "interrupted"
        wall = run_wall_s(store, row)
    assert 5.0 <= wall < 10.0, wall  # not the 100 s since the run began


def test_a_finished_run_shows_the_wall_it_recorded(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.create_run(
            RUN, plan_name="p", plan_path=None, plan_json="{}", base=None, branch=None,
            jobs=1, started_at=time.time() - 100, task_ids=["a"],
        )  # fmt: skip
        store.update_run(RUN, status="succeeded", finished_at=time.time(), wall_s=42.0)
        assert run_wall_s(store, store.run(RUN)) == 42.0


def test_a_run_stopped_by_ctrl_c_keeps_its_times_where_they_stopped(tmp_path: Path) -> None:
    """A Ctrl-C records the run interrupted with its wall, no end time, and attempts
    left open: they count to the stop, not to now (they grew with the clock)."""
    from plait.reports import timeline_from_store
    from plait.status import run_json

    started = time.time() - 100
    with Store.open(tmp_path) as store:
        store.create_run(
            RUN, plan_name="p", plan_path=None, plan_json="{}", base=None, branch=None,
            jobs=1, started_at=started, task_ids=["a"],
        )  # fmt: skip
        store.start_attempt(RUN, "a", 1, kind="first", started_at=started + 1)
        store.update_task(RUN, "a", status="running", started_at=started + 1, attempts=1)
        store.update_run(RUN, status="interrupted", wall_s=5.0)
        data = run_json(store, RUN)
        timeline = timeline_from_store(store, RUN)
    assert data["status"] == "interrupted"
    assert data["totals"]["sequential_s"] == 4.0  # from 1 s in to the stop at 5 s
    assert [t["status"] for t in data["tasks"]] == ["interrupted"]
    assert [t.outcome for t in timeline.tasks] == ["interrupted"]  # not "running"
    assert [round(a.end_s, 3) for a in timeline.attempts] == [5.0]


def test_task_durations_add_up_to_the_sum_of_task_times_and_match_the_report(
    tmp_path: Path,
) -> None:
    """`a` conflicted for 2 s, then worked 1 s (its span, waits included, is 5 s); `b`
    conflicted and ended conflicted. status listed 5 s and 1 s beside a sum of 1 s."""
    from plait.reports import timeline_from_store
    from plait.status import run_json

    t0 = time.time() - 100
    with Store.open(tmp_path) as store:
        store.create_run(
            RUN, plan_name="p", plan_path=None, plan_json="{}", base=None, branch=None,
            jobs=2, started_at=t0, task_ids=["a", "b"],
        )  # fmt: skip
        for task, attempt, start, end, status in (
            ("a", 1, 0.0, 2.0, "conflict"),
            ("a", 2, 4.0, 5.0, "ok"),
            ("b", 1, 0.0, 1.0, "conflict"),
        ):
            store.start_attempt(RUN, task, attempt, kind="first", started_at=t0 + start)
            store.finish_attempt(RUN, task, attempt, status=status, finished_at=t0 + end)
        store.update_task(RUN, "a", status="succeeded", started_at=t0, finished_at=t0 + 5)
        store.update_task(RUN, "b", status="conflicted", started_at=t0, finished_at=t0 + 1)
        store.update_run(RUN, status="failed", finished_at=t0 + 6, wall_s=6.0)
        data = run_json(store, RUN)
        timeline = timeline_from_store(store, RUN)
    durations = {t["id"]: t["duration_s"] for t in data["tasks"]}
    assert durations == {"a": 1.0, "b": 0.0}
    assert sum(durations.values()) == data["totals"]["sequential_s"]
    assert {t.id: t.duration_s for t in timeline.tasks} == durations
    # the conflicted task's work shows as lost, not as nothing at all
    assert timeline.waits["b"] == {"conflict": 1.0}
