"""The HTML report in a real headless browser: drawn geometry and pixels against the attempts.

Needs Debian's chromium (`apt-get install chromium`; `.ci/run` installs it). Set
PLAIT_SAVE_SCREENSHOTS=1 to copy the screenshots to docs/img/ for the README.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.terminal_theme import SVG_EXPORT_THEME

from plait.board import BoardSnapshot, render_board
from plait.report import Timeline, predicted_timeline
from plait.report_gantt import BAR_H, axis_max, tick_label, tick_step
from plait.report_html import render_html
from test_board import run_points
from test_report import make_run, small_run


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


CHROMIUM = _find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not found (/usr/bin/chromium, chromium or chromium-browser on PATH); "
    "install it with `apt-get install -y chromium` to check the HTML report in a browser",
)
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
WIDTH, HEIGHT = 1366, 768


def chromium(tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless chromium run over a local file, with everything network-ish off."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self._axis = False
        self.axis_labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = {k: v or "" for k, v in attrs}
        self.elements.append((tag, d))
        if tag == "svg":
            self._axis = d.get("id") == "axis"

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._axis = False

    def handle_data(self, data: str) -> None:
        if self._axis and data.strip():
            self.axis_labels.append(data.strip())


def read_png(path: Path) -> tuple[int, int, int, list[bytearray]]:
    """A small PNG reader (8-bit RGB/RGBA, not interlaced): width, height, channels, rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
            depth, color, interlace = body[8], body[9], body[12]
            assert depth == 8 and interlace == 0 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(bytes(idat))
    stride, rows = width * channels, []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        f, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif f in (1, 3, 4):
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                up = prev[i]
                if f == 1:
                    line[i] = (line[i] + left) & 255
                elif f == 3:
                    line[i] = (line[i] + (left + up) // 2) & 255
                else:
                    ul = prev[i - channels] if i >= channels else 0
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else ul
                    line[i] = (line[i] + pred) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows


def open_report(t: Timeline, tmp_path: Path, name: str, shot: str = "always") -> tuple[_Dom, Path]:
    """The report's DOM after its script ran, and (`shot`: always | saving | never) a
    1366x768 screenshot, copied to docs/img/ when PLAIT_SAVE_SCREENSHOTS=1."""
    page = tmp_path / f"{name}.html"
    page.write_text(render_html(t), encoding="utf-8")
    png = tmp_path / f"{name}.png"
    saving = os.environ.get("PLAIT_SAVE_SCREENSHOTS") == "1" and shot != "never"
    if shot == "always" or saving:
        chromium(tmp_path, page, f"--screenshot={png}")
    if saving:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, DOCS_IMG / f"{name}.png")
    dom = _Dom()
    dom.feed(chromium(tmp_path, page, "--dump-dom").stdout)
    return dom, png


def check_geometry(t: Timeline, dom: _Dom) -> None:
    """The laid-out bars sit where the attempts' times put them on the drawn axis."""
    plot = next(d for tag, d in dom.elements if tag == "svg" and d.get("id") == "plot")
    axis = next(d for tag, d in dom.elements if tag == "svg" and d.get("id") == "axis")
    assert "data-laid-out" in plot, "the page's script did not run"
    w = float(plot["width"])
    assert w == float(plot["data-laid-out"]) == float(axis["width"])
    assert 900 < w < WIDTH  # laid out to the window, not left at the default width
    pad, span, minw = float(plot["data-pad"]), float(plot["data-max"]), float(plot["data-minw"])
    assert abs(span - axis_max(t)) < 1e-3
    k = (w - 2 * pad) / span
    bars = {
        (d["data-task"], int(d["data-attempt"])): d
        for tag, d in dom.elements
        if tag == "rect" and "bar" in d.get("class", "").split() and "data-task" in d
    }
    assert len(bars) == len(t.attempts)
    for a in t.attempts:
        b = bars[(a.task_id, a.attempt)]
        # times travel in data-* with millisecond precision; allow that, times the scale
        tol = 0.02 + 0.001 * k
        assert abs(float(b["x"]) - (pad + a.start_s * k)) < tol, (a, b)
        assert abs(float(b["width"]) - max(minw, (a.end_s - a.start_s) * k)) < 2 * tol, (a, b)
    # the axis was redrawn for this width, with round steps, starting at zero
    step = tick_step(span, w - 2 * pad)
    n = int(span / step + 1e-9) + 1
    assert dom.axis_labels == [tick_label(i * step) for i in range(n)]


def check_pixels(t: Timeline, dom: _Dom, shot: Path) -> int:
    """Sample the screenshot inside and just left of plain successful bars."""
    width, height, ch, rows = read_png(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    plot = next(d for tag, d in dom.elements if tag == "svg" and d.get("id") == "plot")
    left, top = float(plot["data-left"]), float(plot["data-top"])
    green = (0x2D, 0xA4, 0x4E)
    checked = 0
    for tag, d in dom.elements:
        if tag != "rect" or "bar" not in d.get("class", "").split() or "data-task" not in d:
            continue
        x, w, y = left + float(d["x"]), float(d["width"]), top + float(d["y"]) + BAR_H / 2
        if "s-ok" not in d["class"] or "k-first" not in d["class"] or w < 12 or y > height - 4:
            continue
        mid, before = int(x + w / 2), int(x - 3)
        assert _near(rows[int(y)][mid * ch : mid * ch + 3], green), d
        assert not _near(rows[int(y)][before * ch : before * ch + 3], green), d
        checked += 1
    return checked


def _near(px: bytes | bytearray, rgb: tuple[int, int, int], tol: int = 24) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(px, rgb, strict=True))


def test_fifty_task_report_in_chromium(tmp_path: Path) -> None:
    t = make_run()
    dom, shot = open_report(t, tmp_path, "report-50")
    check_geometry(t, dom)
    assert check_pixels(t, dom, shot) >= 10
    # scrolled down the 50 rows, the header and the time axis stay on screen
    probe = (
        "<script>scrollTo(0, 700); const h = document.querySelector('header')"
        ".getBoundingClientRect(), a = document.getElementById('axis').getBoundingClientRect();"
        "document.body.dataset.probe = [scrollY, h.top, a.top, a.bottom].join(' ');</script>"
    )
    page = tmp_path / "scrolled.html"
    page.write_text(render_html(t).replace("</body>", probe + "</body>"), encoding="utf-8")
    scrolled = _Dom()
    scrolled.feed(chromium(tmp_path, page, "--dump-dom").stdout)
    body = next(d for tag, d in scrolled.elements if tag == "body")
    scroll_y, header_top, axis_top, axis_bottom = map(float, body["data-probe"].split())
    assert scroll_y == 700 and header_top == 0 and 0 < axis_top < axis_bottom < 200
    print(f"screenshot: {shot}")


def test_small_report_and_estimate_in_chromium(tmp_path: Path) -> None:
    t = small_run(error="<script>alert(1)</script>")
    dom, _ = open_report(t, tmp_path, "report-small", shot="never")
    check_geometry(t, dom)
    # the hostile error is text in the page, never an element
    assert sum(1 for tag, _ in dom.elements if tag == "script") == 1
    big = make_run()
    est = predicted_timeline(
        "big-refactor",
        {x: f - s for x, (s, f) in big.predicted.items()},
        {x: s for x, (s, _) in big.predicted.items()},
        {x: f for x, (_, f) in big.predicted.items()},
        big.edges,
        big.critical_path,
        big.jobs,
    )
    dom, _ = open_report(est, tmp_path, "plan-50", shot="saving")
    check_geometry(est, dom)


def test_board_in_chromium(tmp_path: Path) -> None:
    """The board as a terminal shows it (rich's HTML export, no fonts fetched), in colour."""
    console = Console(width=120, record=True, file=io.StringIO(), color_system="truecolor")
    console.print(render_board(run_points()["busy"]))
    page = tmp_path / "board.html"
    page.write_text(console.export_html(theme=SVG_EXPORT_THEME, inline_styles=True), "utf-8")
    assert "http" not in page.read_text(encoding="utf-8")
    shot = tmp_path / "board.png"
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1240,290")
    width, _, ch, rows = read_png(shot)
    pixels = {bytes(row[i : i + 3]) for row in rows for i in range(0, width * ch, ch)}
    # the progress bar and the states' colours reached the screen: green, red, blue, magenta
    for n in (2, 1, 4, 5):
        rgb = SVG_EXPORT_THEME.ansi_colors[n]
        assert any(_near(p, (rgb.red, rgb.green, rgb.blue), 12) for p in pixels), n
    if os.environ.get("PLAIT_SAVE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_IMG / "board.png")


def test_demo_run_report_in_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`plait demo`'s plan run for real (scripted agents), its report drawn and checked."""
    from plait.demo import create_repository
    from plait.planfile import load_plan
    from plait.reports import timeline_from_store
    from plait.session import RunSettings, start_run
    from plait.store import Store

    for key in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{key}_NAME", "plait test")
        monkeypatch.setenv(f"{key}_EMAIL", "test@plait.invalid")
    repo = create_repository(tmp_path / "shop", speed=0.3)
    home = tmp_path / "home"
    board = _BoardCapture()
    settings = RunSettings(jobs=4, sink=board)
    outcome = asyncio.run(start_run(load_plan(repo / "plait.yaml"), settings, home=home))
    with Store.open(home) as store:
        t = timeline_from_store(store, outcome.run_id)
    assert outcome.status == "succeeded"
    assert any(a.kind == "conflict" for a in t.attempts)  # the demo's collision re-ran
    dom, shot = open_report(t, tmp_path, "report-demo")
    check_geometry(t, dom)
    assert check_pixels(t, dom, shot) >= 3
    # The live board as it stood when the colliding task started its re-run.
    assert board.seen is not None
    rows = {r.task_id: r for r in board.seen.rows}
    assert rows["feature-gift-cards"].state == "rerunning"
    assert rows["feature-gift-cards"].attempt == 2
    assert rows["contract"].state == "merged"
    console = Console(width=120, record=True, file=io.StringIO(), color_system="truecolor")
    console.print(render_board(board.seen))
    page = tmp_path / "board-demo.html"
    page.write_text(console.export_html(theme=SVG_EXPORT_THEME, inline_styles=True), "utf-8")
    picture = tmp_path / "board-demo.png"
    chromium(tmp_path, page, f"--screenshot={picture}", "--window-size=1240,260")
    assert picture.stat().st_size > 0
    if os.environ.get("PLAIT_SAVE_SCREENSHOTS") == "1":
        shutil.copyfile(picture, DOCS_IMG / "board-demo.png")


class _BoardCapture:
    """An event sink that keeps the board's snapshot at the first conflict re-run."""

    def __init__(self) -> None:
        self.driver: Any = None
        self.seen: BoardSnapshot | None = None

    def attach(self, driver: Any) -> None:
        self.driver = driver

    def __call__(self, event: Mapping[str, Any]) -> None:
        from plait.live import snapshot

        rerun = event.get("kind") == "attempt_started" and event.get("attempt_kind") == "conflict"
        if rerun and self.seen is None and self.driver is not None:
            self.seen = snapshot(self.driver)
