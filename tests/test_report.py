"""The report: text numbers, JSON, and the self-contained, escaped HTML timeline."""

from __future__ import annotations

import dataclasses
import heapq
import json
import random
import re
from html.parser import HTMLParser

from plait.report import (
    AttemptSpan,
    TaskSummary,
    Timeline,
    predicted_timeline,
    render_text,
    to_json,
)
from plait.report_gantt import axis_max, tick_label, tick_step
from plait.report_html import render_html

AREAS = ("api", "db", "ui", "auth", "billing", "search", "docs", "infra", "mail", "cli")
PARTS = ("schema", "models", "routes", "tests", "forms")

HOSTILE = "<script>alert(1)</script>"


def make_run(n: int = 50, jobs: int = 6, seed: int = 7) -> Timeline:
    """A synthetic finished run: a DAG, list-scheduled on `jobs` slots, with retries,
    conflict re-runs, a rate limit, exclusion waits, a failure and its skipped dependants."""
    rng = random.Random(seed)
    ids = [f"{AREAS[i % len(AREAS)]}-{PARTS[i // len(AREAS) % len(PARTS)]}" for i in range(n)]
    needs = {
        t: sorted(set(rng.sample(ids[max(0, i - 12) : i], k=min(i, rng.choice((0, 1, 1, 2))))))
        for i, t in enumerate(ids)
    }
    est = {t: rng.uniform(20, 200) for t in ids}
    kinds = {t: rng.choices(("plain", "retry", "conflict"), (80, 10, 10))[0] for t in ids}
    kinds[ids[3]] = "rate"
    needs[ids[40]], needs[ids[47]] = [ids[12]], [ids[40]]  # skipped when ids[12] fails
    kinds[ids[12]] = "fail"

    def schedule(
        actual: bool,
    ) -> tuple[dict[str, float], dict[str, float], dict[str, list[AttemptSpan]], dict[str, float]]:
        slots = [0.0] * jobs
        start: dict[str, float] = {}
        end: dict[str, float] = {}
        spans: dict[str, list[AttemptSpan]] = {}
        held: dict[str, float] = {}
        dead: set[str] = set()
        for t in ids:
            if any(x in dead for x in needs[t]):
                dead.add(t)
                continue
            free = heapq.heappop(slots)
            ready = max([0.0, *(end[x] for x in needs[t])])
            s = max(free, ready)
            if actual and rng.random() < 0.15:
                held[t] = rng.uniform(4, 30)
                s += held[t]
            start[t] = s
            d = est[t] * (rng.uniform(0.6, 1.5) if actual else 1.0)
            plan = kinds[t] if actual else "plain"
            attempts: list[AttemptSpan] = []
            cost = lambda: round(rng.uniform(0.01, 0.3), 4)  # noqa: E731
            if plan == "plain":
                attempts.append(AttemptSpan(t, 1, "first", "ok", s, s + d, cost()))
            elif plan == "retry":
                f = d * 0.4
                attempts.append(AttemptSpan(t, 1, "first", "failed", s, s + f, cost()))
                attempts.append(AttemptSpan(t, 2, "retry", "ok", s + f + 2, s + f + 2 + d, cost()))
            elif plan == "conflict":
                attempts.append(AttemptSpan(t, 1, "first", "conflict", s, s + d, cost()))
                attempts.append(
                    AttemptSpan(t, 2, "conflict", "ok", s + d + 1, s + 1.6 * d + 1, cost())
                )
            elif plan == "rate":
                attempts.append(AttemptSpan(t, 1, "first", "rate_limited", s, s + 3, None))
                attempts.append(AttemptSpan(t, 2, "rate_limit", "ok", s + 33, s + 33 + d, cost()))
            else:
                attempts.append(AttemptSpan(t, 1, "first", "timeout", s, s + d, cost()))
                attempts.append(
                    AttemptSpan(t, 2, "retry", "failed", s + d + 1, s + 1.5 * d, cost())
                )
                dead.add(t)
            spans[t] = attempts
            end[t] = attempts[-1].end_s
            heapq.heappush(slots, end[t])
        return start, end, spans, held

    p_start, p_end, _, _ = schedule(actual=False)
    start, end, spans, held = schedule(actual=True)
    tasks = []
    for t in ids:
        if t not in spans:
            tasks.append(
                TaskSummary(
                    t,
                    "engineer",
                    "skipped",
                    0,
                    None,
                    None,
                    0.0,
                    None,
                    None,
                    False,
                    (),
                    "skipped: a task it needs failed",
                )
            )
            continue
        a = spans[t]
        failed = a[-1].status != "ok"
        costs = [x.cost_usd for x in a if x.cost_usd is not None]
        tasks.append(
            TaskSummary(
                t,
                "architect" if t.startswith("docs") else "engineer",
                "failed" if failed else "succeeded",
                len(a),
                start[t],
                end[t],
                sum(x.end_s - x.start_s for x in a),
                sum(costs) if costs else None,
                1000 * len(a),
                not failed,
                (f"src/{t}.py",),
                "attempt 2: tests failed\nAssertionError: 3 != 4" if failed else "",
            )
        )
    # the critical path: back from the latest end through the latest-ending need
    last = max(end, key=lambda t: end[t])
    chain = [last]
    while needs[chain[-1]]:
        chain.append(max(needs[chain[-1]], key=lambda x: end.get(x, 0.0)))
    waits = {
        t: {"needs": max([0.0, *(end.get(x, 0.0) for x in needs[t])]), "exclusion": h}
        for t, h in held.items()
    }
    for t in ids:
        if kinds[t] == "conflict" and t in spans:
            waits.setdefault(t, {})["conflict"] = spans[t][0].end_s - spans[t][0].start_s + 1
    return Timeline(
        run_id="20261127-195612-ab12",
        plan_name="big-refactor",
        status="failed",
        started_at=1_795_808_172.0,
        wall_s=max(end.values()),
        jobs=jobs,
        tasks=tuple(tasks),
        attempts=tuple(x for t in ids for x in spans.get(t, [])),
        edges=tuple((x, t, "needs") for t in ids for x in needs[t]),
        critical_path=tuple(reversed(chain)),
        predicted={t: (p_start[t], p_end[t]) for t in p_start},
        predicted_makespan_s=max(p_end.values()),
        waits=waits,
        verify={"status": "passed", "command": "pytest -q"},
    )


def small_run(error: str = "") -> Timeline:
    """Three tasks: a retry, a conflict re-run, known numbers."""
    a = (
        AttemptSpan("contract", 1, "first", "ok", 0.0, 10.0, 0.10),
        AttemptSpan("schema", 1, "first", "failed", 0.0, 4.0, 0.05),
        AttemptSpan("schema", 2, "retry", "ok", 5.0, 20.0, 0.15),
        AttemptSpan("service", 1, "first", "conflict", 20.0, 30.0, 0.20),
        AttemptSpan("service", 2, "conflict", "ok", 30.0, 40.0, 0.20),
    )
    tasks = (
        TaskSummary(
            "contract",
            "architect",
            "succeeded",
            1,
            0.0,
            10.0,
            10.0,
            0.10,
            900,
            True,
            ("docs/api.md",),
        ),
        TaskSummary(
            "schema", "backend", "succeeded", 2, 0.0, 20.0, 19.0, 0.20, 1500, True, ("db/1.sql",)
        ),
        TaskSummary(
            "service",
            "backend",
            "failed" if error else "succeeded",
            2,
            20.0,
            40.0,
            20.0,
            0.40,
            3000,
            not error,
            ("src/a.py",),
            error,
        ),
    )
    return Timeline(
        run_id="r1",
        plan_name="oauth",
        status="succeeded",
        started_at=0.0,
        wall_s=40.0,
        jobs=2,
        tasks=tasks,
        attempts=a,
        edges=(("contract", "service", "template"), ("schema", "service", "needs")),
        critical_path=("schema", "service"),
        predicted={"contract": (0, 12), "schema": (0, 15), "service": (15, 35)},
        predicted_makespan_s=35.0,
        waits={"service": {"exclusion": 3.0, "conflict": 11.0}},
    )


def test_totals_are_sum_over_wall() -> None:
    t = small_run()
    assert t.sequential_s == 49.0
    assert t.speedup == 49.0 / 40.0
    assert abs((t.cost_usd or 0) - 0.70) < 1e-9
    text = render_text(t)
    assert "wall 40s" in text
    assert "sum of task times 49s" in text
    assert "speed-up 1.23×" in text
    assert "cost $0.70" in text
    assert "outcomes: 3 succeeded" in text
    assert "attempts: 5 (1 retry, 1 conflict re-run) · conflicts: 1" in text
    assert "critical path: schema → service" in text
    # one line per task, in start order
    rows = [
        line.split()[0]
        for line in text.splitlines()
        if line.startswith("  ") and line.split()[0] in ("contract", "schema", "service")
    ]
    assert rows == ["contract", "schema", "service"]


def test_time_saved_is_the_sum_less_the_wall_in_plans_words() -> None:
    t = small_run()
    assert t.saved_s == 9.0
    assert "saving 9.0s (18%)" in render_text(t)
    assert to_json(t)["totals"]["saved_s"] == 9.0
    assert "<b>9.0s (18%)</b> saving" in render_html(t)
    # merges and verifies can cost more than running side by side gave back
    slow = dataclasses.replace(t, wall_s=60.0)
    assert slow.saved_s == -11.0 and "saving -11s (-22%)" in render_text(slow)
    # nothing finished: no saving to speak of, rather than a loss of the whole wall
    unfinished = dataclasses.replace(
        t, tasks=tuple(dataclasses.replace(x, end_s=None) for x in t.tasks)
    )
    assert unfinished.saved_s is None and "saving —" in render_text(unfinished)


def test_a_task_that_never_started_has_no_duration() -> None:
    t = small_run()
    skipped = TaskSummary("after", "x", "skipped", 0, None, None, None, None, None, False, ())
    t = dataclasses.replace(t, tasks=(*t.tasks, skipped))
    assert t.sequential_s == 49.0
    assert to_json(t)["tasks"][-1]["duration_s"] is None
    row = next(line.split() for line in render_text(t).splitlines() if "  after " in line)
    assert row[3:6] == ["0", "—", "—"], row
    assert "after · x · skipped · —" in render_html(t)


def test_cost_and_speedup_unknown() -> None:
    t = small_run()
    none = Timeline(
        **{
            **t.__dict__,
            "wall_s": 0.0,
            "tasks": tuple(TaskSummary(**{**x.__dict__, "cost_usd": None}) for x in t.tasks),
        }
    )
    assert none.speedup is None and none.cost_usd is None
    assert "speed-up — · cost —" in render_text(none)


def test_an_unfinished_run_has_no_speedup_and_no_estimate_comparison() -> None:
    t = small_run()
    assert "estimate: 35s, actual 40s (+14%)" in render_text(t)
    for status in ("interrupted", "running"):
        cut = Timeline(
            **{
                **t.__dict__,
                "status": status,
                "tasks": tuple(
                    TaskSummary(**{**x.__dict__, "duration_s": 0.0, "outcome": "running"})
                    for x in t.tasks
                ),
            }
        )
        assert cut.speedup is None  # nothing finished: no speed-up, rather than 0
        text = render_text(cut)
        assert "speed-up —" in text and "0.00×" not in text
        assert "actual" not in text  # no "-100%" for want of an end
        assert to_json(cut)["totals"]["speedup"] is None


def test_json_round_trips_and_has_totals() -> None:
    t = small_run(error="boom")
    data = json.loads(json.dumps(to_json(t)))
    assert data["totals"]["sequential_s"] == 49.0
    assert data["totals"]["speedup"] == 49.0 / 40.0
    assert data["totals"]["conflicts"] == 1
    assert data["totals"]["outcomes"] == {"succeeded": 2, "failed": 1}
    assert [x["id"] for x in data["tasks"]] == ["contract", "schema", "service"]
    assert data["tasks"][2]["lost_s"] == 14.0 and data["tasks"][2]["error"] == "boom"
    assert {"from": "schema", "to": "service", "reason": "needs"} in data["edges"]
    assert len(data["attempts"]) == 5 and data["attempts"][2]["kind"] == "retry"
    assert data["predicted"]["service"] == {"start_s": 15, "finish_s": 35}


class _Bars(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = {k: v or "" for k, v in attrs}
        self.tags.append((tag, d))
        if tag == "rect" and "bar" in d.get("class", "").split() and "data-task" in d:
            self.bars.append(d)


def test_html_bars_match_attempts() -> None:
    t = make_run()
    page = render_html(t)
    p = _Bars()
    p.feed(page)
    got = {(b["data-task"], int(b["data-attempt"])): b for b in p.bars}
    assert len(p.bars) == len(t.attempts) > 50
    span = axis_max(t)
    svg = next(d for tag, d in p.tags if tag == "svg" and d.get("id") == "plot")
    k = (float(svg["width"]) - 2 * float(svg["data-pad"])) / span
    for a in t.attempts:
        b = got[(a.task_id, a.attempt)]
        assert abs(float(b["data-start"]) - a.start_s) < 1e-3
        assert abs(float(b["data-end"]) - a.end_s) < 1e-3
        assert abs(float(b["x"]) - (8 + a.start_s * k)) < 0.01
        assert abs(float(b["width"]) - max(2, (a.end_s - a.start_s) * k)) < 0.01
        assert f"s-{a.status}" in b["class"] and f"k-{a.kind}" in b["class"]
    # retries and conflict re-runs carry a visible label, the critical path an outline class
    assert ">retry<" in page and ">conflict re-run<" in page
    assert all(
        "crit" in got[(a.task_id, a.attempt)]["class"]
        for a in t.attempts
        if a.task_id in t.critical_path
    )
    # one predicted bar per task that has an estimate, edges drawn between rows
    assert sum(1 for tag, d in p.tags if d.get("class") == "pred" and "data-task" in d) == len(
        t.predicted
    )
    assert sum(1 for tag, d in p.tags if tag == "path" and "edge" in d.get("class", "")) > 20


def test_html_is_self_contained() -> None:
    page = render_html(make_run())
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script src" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page and "url(http" not in page
    assert page.startswith("<!doctype html>")


def test_html_escapes_hostile_text() -> None:
    t = small_run(error=HOSTILE)
    evil = TaskSummary(
        'x"><img src=x onerror=alert(2)>',
        "a<b>",
        "failed",
        1,
        0.0,
        1.0,
        1.0,
        None,
        None,
        False,
        (),
        HOSTILE,
    )
    t = Timeline(
        **{
            **t.__dict__,
            "tasks": (*t.tasks, evil),
            "plan_name": "<b>plan</b>",
            "attempts": (*t.attempts, AttemptSpan(evil.id, 1, "first", "<x>", 0, 1)),
        }
    )
    page = render_html(t)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "<b>plan" not in page
    assert 'class="bar s-other k-first"' in page  # an unknown status cannot reach a class
    # exactly one script element: ours
    assert page.count("<script>") == 1 and page.count("</script>") == 1
    # plain text is not HTML: the text report quotes the error as it was
    assert f"service: {HOSTILE}" in render_text(t)


def test_predicted_timeline_for_plan_html() -> None:
    t = predicted_timeline(
        "p",
        {"a": 10.0, "b": 20.0, "c": 5.0},
        {"a": 0.0, "b": 0.0, "c": 20.0},
        {"a": 10.0, "b": 20.0, "c": 25.0},
        [("b", "c", "needs")],
        ["b", "c"],
        2,
        agents={"a": "x"},
    )
    assert t.is_estimate and t.wall_s == 25.0 and t.sequential_s == 35.0
    assert [a.kind for a in t.attempts] == ["predicted"] * 3
    assert t.tasks[0].agent == "x"
    page = render_html(t)
    assert "predicted makespan" in page and 'class="pred"' not in page
    assert page.count('class="bar s-predicted k-predicted"') == 1  # a: off the critical path
    assert page.count('class="bar s-predicted k-predicted crit"') == 2
    assert "speed-up 1.40×" in render_text(t)


def test_ticks_are_round() -> None:
    assert tick_step(600, 900) == 60  # 600 s over at most 10 labels: every minute
    assert tick_step(600, 500) == 120
    assert tick_step(40, 900) == 5
    assert [tick_label(x) for x in (0, 0.5, 30, 60, 90, 3600, 3900)] == [
        "0s",
        "0.5s",
        "30s",
        "1m",
        "1m30",
        "1h",
        "1h05",
    ]


def test_resumed_attempts_are_counted_in_words() -> None:
    t = small_run()
    resumed = (
        AttemptSpan("contract", 2, "resume", "ok", 10.0, 12.0, None),
        AttemptSpan("schema", 3, "resume", "ok", 20.0, 22.0, None),
    )
    t = dataclasses.replace(t, attempts=(*t.attempts, *resumed))
    text = render_text(t)
    assert "2 resumed" in text and "resumeds" not in text


def test_a_failed_verify_shows_the_end_of_its_output_in_the_text_views() -> None:
    """Before, text said only "verify: failed": the why was in `--json` alone."""
    from plait.status import status_text

    output = "".join(f"noise {i}\n" for i in range(30)) + "FAILED tests/test_a.py::test_x\n"
    verify = {"ok": False, "commit": "abc", "output": output}
    t = small_run()
    text = render_text(Timeline(**{**t.__dict__, "status": "failed", "verify": verify}))
    assert "    | FAILED tests/test_a.py::test_x" in text
    assert "noise 18" not in text and "noise 19" in text  # its last 12 lines only
    base = {"run": "r1", "status": "failed", "tasks": [], "wall_s": 1.0}
    base["totals"] = {"sequential_s": 0.0, "wall_s": 1.0, "speedup": None, "cost_usd": None}
    shown = status_text({**base, "verify": verify})
    assert "verify: FAILED\n" in shown and "  | FAILED tests/test_a.py::test_x" in shown
    passed = status_text({**base, "verify": {"ok": True}})
    assert "|" not in passed


def test_a_saving_that_rounds_to_nothing_has_no_minus_sign() -> None:
    """`saving -0.0s (-0%)` when the sum and the wall rounded to the same figure."""
    from types import SimpleNamespace

    from plait.report import fmt_saving

    assert fmt_saving(SimpleNamespace(saved_s=-0.01, sequential_s=5.0)) == "0.0s (0%)"  # type: ignore[arg-type]
    assert fmt_saving(SimpleNamespace(saved_s=-3.2, sequential_s=5.6)) == "-3.2s (-57%)"  # type: ignore[arg-type]
