"""The live board: fixed-width snapshot renders at points of a run, many rows, event lines."""

from __future__ import annotations

import calendar
import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from plait.board import (
    BoardRow,
    BoardSnapshot,
    LiveBoard,
    render_board,
)
from plait.eventline import format_event_line

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("PLAIT_UPDATE_SNAPSHOTS") == "1"


def _row(task: str, state: str, **kw: object) -> BoardRow:
    base: dict[str, object] = {
        "waiting_on": (),
        "agent": "backend-engineer",
        "attempt": 0,
        "elapsed_s": None,
        "cost_usd": None,
        "last_line": "",
    }
    base.update(kw)
    return BoardRow(task, state, **base)  # type: ignore[arg-type]


def _snap(
    rows: list[BoardRow], done: int, elapsed: float, eta: float | None, spend: float | None
) -> BoardSnapshot:
    return BoardSnapshot(
        "20261127-195612-ab12", "oauth-login", tuple(rows), done, len(rows), elapsed, eta, spend, 4
    )


def run_points() -> dict[str, BoardSnapshot]:
    """Moments of synthetic runs: an eight-task run at three points, and a busy one."""
    start = [
        _row(
            "contract",
            "running",
            agent="architect",
            attempt=1,
            elapsed_s=2.1,
            cost_usd=0.01,
            last_line="Reading docs/ and the existing routes…",
        ),
        _row("schema", "running", attempt=1, elapsed_s=2.0, last_line="$ alembic revision"),
        _row("login-ui", "running", agent="frontend-engineer", attempt=1, elapsed_s=1.9),
        _row("lint-config", "running", agent="scripted", attempt=1, elapsed_s=1.2),
        _row("oauth-service", "waiting", waiting_on=("contract", "schema")),
        _row("docs", "ready", agent="architect"),
        _row("e2e-tests", "waiting", agent="qa", waiting_on=("oauth-service", "login-ui")),
        _row("migrate-data", "waiting", waiting_on=("schema",)),
    ]
    middle = [
        _row(
            "contract",
            "merged",
            agent="architect",
            attempt=1,
            elapsed_s=41.0,
            cost_usd=0.12,
            last_line="Wrote docs/api.md",
        ),
        _row(
            "schema",
            "failed",
            attempt=2,
            elapsed_s=95.5,
            cost_usd=0.31,
            last_line="E   AssertionError: users.email must be unique",
        ),
        _row(
            "login-ui",
            "rerunning",
            agent="frontend-engineer",
            attempt=2,
            elapsed_s=12.0,
            cost_usd=0.22,
            last_line="conflict in src/components/auth/Login.tsx; rebasing",
        ),
        _row("lint-config", "merging", agent="scripted", attempt=1, elapsed_s=30.2),
        _row("oauth-service", "skipped", waiting_on=("schema",)),
        _row(
            "docs",
            "verifying",
            agent="architect",
            attempt=1,
            elapsed_s=20.0,
            cost_usd=0.05,
            last_line="$ mkdocs build --strict " + "x" * 120,
        ),
        _row("e2e-tests", "skipped", agent="qa"),
        _row("migrate-data", "skipped"),
    ]
    end = [
        _row("contract", "merged", agent="architect", attempt=1, elapsed_s=41.0, cost_usd=0.12),
        _row(
            "schema",
            "failed",
            attempt=2,
            elapsed_s=95.5,
            cost_usd=0.31,
            last_line="E   AssertionError: users.email must be unique",
        ),
        _row(
            "login-ui",
            "merged",
            agent="frontend-engineer",
            attempt=2,
            elapsed_s=64.0,
            cost_usd=0.40,
        ),
        _row("lint-config", "merged", agent="scripted", attempt=1, elapsed_s=31.0),
        _row("oauth-service", "skipped"),
        _row("docs", "conflicted", agent="architect", attempt=3, elapsed_s=80.0, cost_usd=0.09),
        _row("e2e-tests", "skipped", agent="qa"),
        _row("migrate-data", "cancelled"),
    ]
    busy = [
        _row(
            "contract",
            "merged",
            agent="architect",
            attempt=1,
            elapsed_s=41.0,
            cost_usd=0.12,
            last_line="Wrote docs/api.md",
        ),
        _row(
            "oauth-service",
            "running",
            attempt=1,
            elapsed_s=48.3,
            cost_usd=0.19,
            last_line="Editing src/services/auth/oauth.py (+112 -4)",
        ),
        _row(
            "login-ui",
            "rerunning",
            agent="frontend-engineer",
            attempt=2,
            elapsed_s=12.0,
            cost_usd=0.22,
            last_line="conflict in src/components/auth/Login.tsx; redoing",
        ),
        _row(
            "token-store",
            "running",
            attempt=1,
            elapsed_s=31.0,
            cost_usd=0.08,
            last_line="$ pytest -q tests/services/test_tokens.py",
        ),
        _row("schema", "merging", attempt=1, elapsed_s=63.0, cost_usd=0.15),
        _row(
            "docs",
            "verifying",
            agent="architect",
            attempt=1,
            elapsed_s=20.0,
            cost_usd=0.05,
            last_line="$ mkdocs build --strict",
        ),
        _row("e2e-tests", "waiting", agent="qa", waiting_on=("oauth-service", "login-ui")),
        _row("rate-limits", "ready"),
        _row(
            "migrate-data",
            "failed",
            attempt=2,
            elapsed_s=95.5,
            cost_usd=0.31,
            last_line="E   AssertionError: users.email must be unique",
        ),
        _row("seed-data", "skipped", waiting_on=("migrate-data",)),
        _row("lint-config", "merged", agent="scripted", attempt=1, elapsed_s=3.1),
    ]
    return {
        "busy": _snap(busy, 4, 95.0, 70.0, 1.12),
        "start": _snap(start, 0, 2.2, None, 0.01),
        "middle": _snap(middle, 5, 130.0, 52.0, 0.70),
        "end": _snap(end, 8, 181.0, 0.0, 0.92),
    }


def big(n: int = 200) -> BoardSnapshot:
    """A run of `n` quick tasks, most finished, four running, some waiting."""
    rows = []
    for i in range(n):
        state = "merged" if i < n - 30 else "running" if i < n - 26 else "waiting"
        if i in (7, 50):
            state = "failed"
        rows.append(
            _row(
                f"task-{i:03d}",
                state,
                agent="scripted",
                attempt=1,
                elapsed_s=0.4 + i / 100,
                cost_usd=None,
                waiting_on=("task-001",) if state == "waiting" else (),
                last_line=f"step {i} done",
            )
        )
    return _snap(rows, n - 28, 61.0, 9.5, None)


def render(snapshot: BoardSnapshot, height: int | None = None, width: int = 100) -> str:
    console = Console(
        width=width, record=True, force_terminal=False, color_system=None, file=io.StringIO()
    )
    console.print(render_board(snapshot, height=height))
    return console.export_text()


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} missing: run once with PLAIT_UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("point", ["start", "middle", "busy", "end"])
def test_board_snapshot(point: str) -> None:
    text = render(run_points()[point])
    check_snapshot(f"board-{point}", text)
    assert all(len(line) <= 100 for line in text.splitlines())


def test_board_order_and_content() -> None:
    text = render(run_points()["middle"])
    lines = text.splitlines()
    assert "5/8 done" in lines[1] and "left ~52s" in lines[1] and "spend $0.70" in lines[1]
    assert "█" in lines[1] and "░" in lines[1]
    order = [ln.split()[0] for ln in lines[3:]]
    # moving first, then finished with failures before successes and skips
    assert order[:3] == ["login-ui", "lint-config", "docs"]
    assert order.index("schema") < order.index("oauth-service") < order.index("contract")
    assert "↻ rerunning" in text and "⇢ merging" in text and "◎ verifying" in text
    assert "✘ failed" in text and "E   AssertionError" in text
    assert "…" in next(ln for ln in lines if ln.startswith("docs"))  # long line cut to fit
    start = render(run_points()["start"])
    assert "◷ waiting on contract, schema" in start and "○ ready" in start
    assert "left —" in start


def test_many_rows_fold_into_a_summary_and_render_fast() -> None:
    snap = big(200)
    text = render(snap, height=33)
    check_snapshot("board-200", text)
    lines = text.splitlines()
    assert len(lines) == 33
    assert "✔ 168 finished and merged" in text  # 170 ended, two of them failed
    for i in range(170, 174):
        assert f"task-{i:03d}" in text  # every running task stays visible
    assert "task-007" in text and "task-050" in text  # failures stay visible
    assert "… " in text and "more: " in text and "waiting" in text
    # one render of 200 rows, timed: the refresh thread does this ~4 times a second
    console = Console(width=100, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        console.print(render_board(snap, height=43))
    per = (time.perf_counter() - t0) / reps
    print(f"board: one 200-task render (40 rows drawn) took {per * 1000:.1f} ms")
    assert per < 0.1  # measured ~4 ms here; rich.Table took ~90 ms
    t0 = time.perf_counter()
    console.print(render_board(snap))
    print(f"board: unfolded 200 rows took {(time.perf_counter() - t0) * 1000:.1f} ms")


def test_agent_output_cannot_drive_the_terminal() -> None:
    hostile = "\x1b[2J\x1b[31m[bold red]pwned[/] \x07done\r\n"
    snap = _snap([_row("x", "running", attempt=1, last_line=hostile)], 0, 1.0, None, None)
    console = Console(width=100, file=io.StringIO(), force_terminal=True, color_system="standard")
    console.print(render_board(snap))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[2J" not in out and "\x07" not in out and "\r" not in out
    assert "[bold red]pwned[/] done" in render(snap)  # markup shown, not interpreted


def test_latest_line_shows_a_progress_line_as_it_stands() -> None:
    line = "progress 0%\rprogress 10%\r"
    snap = _snap([_row("x", "running", attempt=1, last_line=line)], 0, 1.0, None, None)
    row = next(ln for ln in render(snap).splitlines() if ln.startswith("x "))
    assert row.endswith("progress 10%") and "0%" not in row.replace("10%", "")


def test_clocks_run_on_between_snapshots() -> None:
    """A snapshot of a run still going says when it was taken: each frame adds the time
    since to the run's clock and to the rows still running, not to those that ended."""
    rows = [
        _row("a", "running", attempt=1, elapsed_s=2.0, ticking=True),
        _row("b", "merged", attempt=1, elapsed_s=2.0),
    ]
    snap = BoardSnapshot(
        "r1", "p", tuple(rows), 1, 2, 5.0, None, None, 4, taken_at=time.monotonic() - 60
    )
    lines = render(snap).splitlines()
    assert re.search(r"elapsed 1m 0[56]s", lines[1])
    assert re.search(r"▶ running .* 1 +1m 0[23]s", lines[3])
    assert re.search(r"✔ merged .* 1 +2\.0s", lines[4])


def test_live_board_update_only_stores() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, height=30, force_terminal=True, color_system=None)
    snaps = run_points()
    with LiveBoard(console, refresh_per_second=20) as board:
        t0 = time.perf_counter()
        for _ in range(100_000):
            board.update(snaps["start"])
        spent = time.perf_counter() - t0
        board.update(snaps["middle"])
        time.sleep(0.3)  # rich's thread draws meanwhile
    print(f"board: update() costs {spent / 100_000 * 1e9:.0f} ns")
    assert spent < 1.0
    text = out.getvalue()
    assert "5/8 done" in text and "↻ rerunning" in text


def test_live_board_fits_terminal_height() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, height=24, force_terminal=True, color_system=None)
    board = LiveBoard(console, refresh_per_second=4)
    board.update(big(200))
    frame = Console(width=100, record=True, file=io.StringIO(), color_system=None)
    frame.print(board._renderable())
    assert len(frame.export_text().splitlines()) <= 24


def twenty() -> BoardSnapshot:
    """20 tasks with `-j 4`: three merged, four running, one failed, the rest queued."""
    states = ["merged"] * 3 + ["running"] * 4 + ["failed"] + ["ready"] * 5 + ["waiting"] * 7
    rows = [
        _row(
            f"task-{i:02d}",
            state,
            agent="scripted",
            attempt=1 if state in ("merged", "running", "failed") else 0,
            elapsed_s=3.0 if state in ("merged", "running", "failed") else None,
            waiting_on=("task-03",) if state == "waiting" else (),
            last_line=f"tick {i}" if state == "running" else "",
        )
        for i, state in enumerate(states)
    ]
    return _snap(rows, 4, 12.0, 30.0, None)


def frame(board: LiveBoard, width: int) -> list[str]:
    """The lines of the frame the live board draws next."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(board._renderable())
    return console.export_text().splitlines()


@pytest.mark.parametrize(("width", "height"), [(80, 6), (40, 10), (100, 12), (60, 8)])
def test_small_terminal_shows_every_running_task_on_every_line(width: int, height: int) -> None:
    console = Console(
        file=io.StringIO(), width=width, height=height, force_terminal=True, color_system=None
    )
    board = LiveBoard(console)
    board.update(twenty())
    lines = frame(board, width)
    assert len(lines) == height  # no line left blank, none past the screen
    assert all(line.strip() for line in lines)
    assert all(cell_len(line) <= width for line in lines)
    for i in range(3, 7):  # running rows, each with its latest line
        [row] = [ln for ln in lines if ln.startswith(f"task-{i:02d} ")]
        assert "▶ running" in row and row.endswith(f"tick {i}")
    progress = next(ln for ln in lines if "done" in ln)
    assert "4/20 done  elapsed 12s" in progress  # whole, not cut
    # what is not shown is counted: shown rows + folded ones make the 20 tasks
    shown = sum(1 for ln in lines if ln.startswith("task-"))
    text = "\n".join(lines)
    more = re.search(r"… (\d+) more: ", text)
    merged = re.search(r"✔ (\d+) finished", text)
    assert shown + sum(int(m.group(1)) for m in (more, merged) if m) == 20


def test_header_fits_narrow_terminals() -> None:
    snap = twenty()
    wide = render(snap, width=100).splitlines()
    assert "run 20261127-195612-ab12" in wide[0]
    assert all(part in wide[1] for part in ("░ 4/20 done", "left ~30s", "spend —", "jobs 4"))
    narrow = render(snap, width=40).splitlines()
    assert narrow[0] == "plait oauth-login"  # the run id gives way
    assert narrow[1].endswith(" 4/20 done  elapsed 12s") and "█" in narrow[1]
    tiny = render(snap, width=24).splitlines()
    assert tiny[1] == "4/20 done  elapsed 12s"  # no room for a bar worth drawing
    assert all(cell_len(line) <= 40 for line in narrow)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


T = float(calendar.timegm((2026, 11, 27, 16, 23, 4, 0, 0, 0)))


@pytest.mark.parametrize(
    ("event", "line"),
    [
        (
            {"kind": "attempt_started", "task": "api", "attempt": 1},
            "16:23:04 api        started attempt 1",
        ),
        (
            {"kind": "attempt_started", "task": "api", "attempt": 2, "reason": "retry"},
            "16:23:04 api        started attempt 2 (retry)",
        ),
        (
            {
                "kind": "attempt_finished",
                "task": "api",
                "attempt": 1,
                "status": "failed",
                "duration_s": 12.34,
                "error": "exit 1\nTraceback...",
            },
            "16:23:04 api        attempt 1 failed in 12s: exit 1 Traceback...",
        ),
        (
            {
                "kind": "task_finished",
                "task": "oauth-service-long",
                "outcome": "succeeded",
                "duration_s": 75,
            },
            "16:23:04 oauth-service-long succeeded in 1m 15s",
        ),
        (
            {"kind": "merged", "task": "api", "commit": "0123456789abcdef", "files": ["a", "b"]},
            "16:23:04 api        merged 0123456789 (2 files)",
        ),
        (
            {"kind": "conflict", "task": "ui", "files": ["src/a.ts"]},
            "16:23:04 ui         merge conflict in src/a.ts, re-running on the new tip",
        ),
        (
            {"kind": "run_started", "task": None, "run": "r1", "tasks": 8, "jobs": 4},
            "16:23:04 run        run r1 started · tasks 8 · jobs 4",
        ),
        (
            {"kind": "run_finished", "task": None, "status": "failed", "wall_s": 181},
            "16:23:04 run        run finished: failed in 3m 01s",
        ),
        (
            {"kind": "verify_finished", "task": None, "ok": True},
            "16:23:04 run        verify passed",
        ),
        (
            {"kind": "skipped", "task": "e2e", "reason": "needs schema, which failed"},
            "16:23:04 e2e        skipped: needs schema, which failed",
        ),
        (
            {"kind": "rate_limited", "task": "api", "wait_s": 30},
            "16:23:04 api        rate-limited, retrying in 30s",
        ),
        (
            {"kind": "retry", "task": "api", "attempt": 1, "error": "exited with code 1"},
            "16:23:04 api        attempt 1 failed, retrying: exited with code 1",
        ),
        (
            {"kind": "run_started", "task": None, "tasks": 2, "jobs": 4, "isolation": "none"},
            "16:23:04 run        run r1 started · tasks 2 · jobs 4 · isolation none: the agents"
            " work in the checkout itself",
        ),
        (
            {"kind": "conflict_rerun", "task": "api", "attempt": 1},
            "16:23:04 api        attempt 1 conflicted, re-running",
        ),
        (
            {"kind": "stopping", "task": None, "reason": "bad failed (--fail-fast)"},
            "16:23:04 run        run stopping: bad failed (--fail-fast)",
        ),
        (
            {"kind": "run_resumed", "task": None, "wall_before_s": 12.5},
            "16:23:04 run        run r1 resumed · 12s run before",
        ),
        ({"kind": "something_new", "task": "api", "x": 1}, "16:23:04 api        something new x=1"),
    ],
)
def test_event_lines(utc: None, event: dict[str, object], line: str) -> None:
    assert format_event_line({"t": T, "seq": 1, "run": "r1", **event}) == line


def test_event_line_is_one_clean_line(utc: None) -> None:
    line = format_event_line(
        {
            "t": T,
            "kind": "task_finished",
            "task": "a\x1b[2Jb",
            "outcome": "failed",
            "error": "x" * 1000 + "\n\x1b[31mred",
        }
    )
    assert "\n" not in line and "\x1b" not in line
    assert len(line) < 220 and re.match(r"16:23:04 ab +failed: x", line)


def test_wide_terminal_shows_everything_narrow_keeps_latest() -> None:
    snap = run_points()["busy"]
    wide = Console(width=160, record=True, file=io.StringIO(), color_system=None)
    wide.print(render_board(snap))
    text = wide.export_text()
    assert "waiting on oauth-service, login-ui" in text and "frontend-engineer" in text
    assert "Editing src/services/auth/oauth.py (+112 -4)" in text
    narrow = render(snap)  # 100 columns: the agent column gives way to the latest line
    assert "agent" not in narrow.splitlines()[2]
    assert "Editing src/services/auth/oa" in narrow
