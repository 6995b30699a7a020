"""The live view: what feeds the board while a run goes, and the choice of board or lines."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from plait.board import BoardSnapshot
from plait.live import LiveView, open_display, snapshot
from plait.taskrun import TaskView


class FakeDriver:
    """What the live view reads of a driver: its task views, plan and scheduler."""

    def __init__(self, n: int = 1) -> None:
        ids = ["slow"] if n == 1 else [f"t{i:04d}" for i in range(n)]
        self.run_id = "r1"
        self.started = time.monotonic()
        self.jobs = 4
        self.scheduler_jobs = 4
        self.plan = SimpleNamespace(name="demo", tasks=dict.fromkeys(ids))
        self.scheduler = SimpleNamespace(waiting_on=lambda task_id: [])
        self.ctx = SimpleNamespace(views={i: TaskView(i, "scripted") for i in ids}, spent_usd=0.0)

    def start(self, task_id: str) -> TaskView:
        view: TaskView = self.ctx.views[task_id]
        view.state, view.attempt, view.started = "running", 1, time.monotonic()
        return view


def console(width: int = 100, height: int = 12) -> Console:
    return Console(
        file=io.StringIO(), width=width, height=height, force_terminal=True, color_system=None
    )


def test_the_last_state_of_a_burst_is_shown_though_no_event_follows() -> None:
    driver = FakeDriver(50)
    view = LiveView(console())
    view.attach(driver)  # type: ignore[arg-type]

    async def burst() -> BoardSnapshot | None:
        for task_id in driver.ctx.views:  # 50 events in a few milliseconds
            driver.start(task_id)
            view({"kind": "attempt_started", "task": task_id})
        last = driver.ctx.views["t0049"]
        last.last_line = "tick 1"  # agent output: no event at all
        await asyncio.sleep(0.5)
        return view.board._snapshot

    seen = asyncio.run(burst())
    assert seen is not None
    rows = {r.task_id: r for r in seen.rows}
    assert all(r.state == "running" for r in rows.values())
    assert rows["t0049"].last_line == "tick 1"
    assert seen.taken_at is not None and rows["t0049"].ticking  # its clock runs on


def test_board_moves_between_events() -> None:
    """The reported case: one task printing a line at intervals and no event meanwhile;
    the board's frames must show each line and a growing elapsed time."""
    driver = FakeDriver()
    out = console()
    with LiveView(out) as view:
        view.attach(driver)  # type: ignore[arg-type]

        async def agent() -> None:
            view({"kind": "run_started"})
            task = driver.start("slow")
            for n in range(3):
                task.last_line = f"tick {n}"
                await asyncio.sleep(0.45)

        asyncio.run(agent())
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "tick 0" in text and "tick 1" in text  # drawn while newer ones came
    assert "▶ running" in text
    clocks = set(re.findall(r"elapsed (\d+\.\ds)", text))
    assert len(clocks) >= 3, clocks  # the run's clock moved from frame to frame


def test_an_interrupted_run_ends_with_its_tasks_interrupted() -> None:
    driver = FakeDriver(3)
    driver.start("t0000").last_line = "working"
    finished = driver.ctx.views["t0001"]
    finished.state, finished.attempt, finished.started, finished.ended = "merged", 1, 0.0, 2.0
    out = console()
    with LiveView(out) as view:
        view.attach(driver)  # type: ignore[arg-type]
        view({"kind": "attempt_started", "task": "t0000"})  # no loop: drawn at once
        # Ctrl-C: the run's coroutine returns "interrupted", no run_finished is emitted
    final = view.board._snapshot
    assert final is not None and final.taken_at is None  # the clocks have stopped
    rows = {r.task_id: r for r in final.rows}
    assert rows["t0000"].state == "interrupted" and not rows["t0000"].ticking
    assert rows["t0001"].state == "merged" and rows["t0002"].state == "ready"
    last_frame = out.file.getvalue().rsplit("plait demo", 1)[-1]  # type: ignore[attr-defined]
    assert "■ interrupted" in last_frame and "▶ running" not in last_frame
    assert "left —" in last_frame


def test_a_finished_snapshot_keeps_its_times() -> None:
    driver = FakeDriver()
    task = driver.start("slow")
    task.state, task.ended = "succeeded", task.started + 1.5  # type: ignore[operator]
    snap = snapshot(driver, final=True)  # type: ignore[arg-type]
    assert snap.rows[0].state == "succeeded" and snap.rows[0].elapsed_s == pytest.approx(1.5)
    assert snap.done == 1 and not snap.rows[0].ticking


def test_an_event_costs_the_run_one_check() -> None:
    """Per-event work is O(1) whatever the number of tasks; snapshots run on a timer."""
    driver = FakeDriver(2000)
    view = LiveView(console())
    view.attach(driver)  # type: ignore[arg-type]
    event = {"kind": "attempt_started", "task": "t0001"}

    async def many() -> tuple[float, int]:
        view(event)  # starts the timer: one snapshot now
        taken = view.board._snapshot
        t0 = time.perf_counter()
        for _ in range(20_000):
            view(event)
        per = (time.perf_counter() - t0) / 20_000
        return per, int(view.board._snapshot is not taken)

    per, retaken = asyncio.run(many())
    t0 = time.perf_counter()
    snapshot(driver)  # type: ignore[arg-type]
    took = time.perf_counter() - t0
    print(f"live: an event costs {per * 1e9:.0f} ns; a 2000-task snapshot {took * 1e3:.1f} ms")
    assert retaken == 0  # the events took no snapshot themselves
    assert per < 20e-6  # measured ~0.3 µs


def test_a_real_run_shows_the_agents_lines_as_they_come(tmp_path: Path) -> None:
    """A one-task plan whose agent prints a line every 0.4 s: the board's snapshots
    follow its lines and clock though the run emits no event meanwhile."""
    from plait import load_plan, run_plan

    code = "import time\nfor i in range(4):\n    print(f'tick {i}', flush=True); time.sleep(0.4)"
    command = json.dumps([sys.executable, "-c", code])
    plan_file = tmp_path / "plait.yaml"
    plan_file.write_text(
        "version: 1\nname: ticks\nisolation: none\n"
        f"agents:\n  t:\n    backend: command\n    command: {command}\n"
        "tasks:\n  slow:\n    agent: t\n    prompt: go\n",
        encoding="utf-8",
    )
    seen: list[BoardSnapshot] = []
    with LiveView(console()) as view:
        keep = view.board.update

        def update(snap: BoardSnapshot) -> None:
            seen.append(snap)
            keep(snap)

        view.board.update = update  # type: ignore[method-assign]
        result = run_plan(load_plan(plan_file), on_event=view, home=tmp_path / "home")
    assert result.status == "succeeded"
    running = [s.rows[0] for s in seen if s.rows[0].state == "running"]
    lines = {r.last_line for r in running}
    assert {"tick 1", "tick 2"} <= lines, lines
    assert len({r.elapsed_s for r in running}) >= 4
    assert seen[-1].rows[0].state == "succeeded"


def test_a_dumb_terminal_gets_event_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    event: dict[str, Any] = {"t": 0.0, "kind": "attempt_started", "task": "api", "attempt": 1}
    monkeypatch.setenv("TERM", "dumb")
    with open_display(False, console()) as sink:
        assert not isinstance(sink, LiveView)
        sink(event)
    assert "api        started attempt 1" in capsys.readouterr().out
    monkeypatch.setenv("TERM", "xterm-256color")
    with open_display(False, console()) as sink:
        assert isinstance(sink, LiveView)
    with open_display(True, console()) as sink:
        assert sink is None
