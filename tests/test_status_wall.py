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
