"""`plait status`, `plait runs` and the end-of-run summary, read from the store."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from plait.planrules import FIXER_TASK_ID
from plait.report import verify_failure_lines
from plait.runjson import status_json
from plait.runlock import pid_alive
from plait.store import Store
from plait.storeschema import RunRow, run_exit_code
from plait.textsafe import one_line

FOLLOW_POLL_S = 0.25


def shown_status(row: RunRow) -> str:
    """The run's status; "interrupted" for one recorded as running whose plait is gone.

    A plait killed with SIGKILL never writes its end, so its row says "running" for
    ever; the pid recorded with it tells the truth (on the host that ran it).
    """
    if (
        row.status == "running"
        and row.pid is not None
        and row.host in (None, socket.gethostname())
        and not pid_alive(row.pid)
    ):
        return "interrupted"
    return row.status


def last_sign_of_life(store: Store, row: RunRow) -> float:
    """The last moment a run is known to have been alive (epoch seconds).

    For a run whose plait died without recording its end: the latest of its events,
    attempt and task times, the logs its unfinished attempts were writing, and its
    heartbeat (`plait.heartbeat`, at most a few seconds old when it died). It ran at
    least this long; how much longer nobody recorded.
    """
    from plait.agents.base import LOG_SUFFIX, attempt_file
    from plait.heartbeat import last_beat

    moments = [row.started_at]
    moments += [float(e["t"]) for e in store.events(row.id) if isinstance(e.get("t"), int | float)]
    for task in store.tasks(row.id):
        moments += [t for t in (task.started_at, task.finished_at) if t is not None]
    for attempt in store.attempts(row.id):
        moments.append(attempt.finished_at or attempt.started_at)
        if attempt.finished_at is None:
            log = attempt_file(
                store.attempt_stem(row.id, attempt.task_id, attempt.attempt), LOG_SUFFIX
            )
            if log.exists():  # made only once the agent prints
                moments.append(log.stat().st_mtime)
    beat = last_beat(store.run_dir(row.id, create=False))
    return max(moments if beat is None else [*moments, beat])


#: Task states of a live run that mean "under way".
UNDER_WAY = frozenset({"ready", "waiting", "running", "verifying", "merging"})

#: The event a resume records as it starts, with the wall of the processes before it.
RESUMED_EVENT = "run_resumed"


def latest_process(store: Store, row: RunRow) -> tuple[float, float]:
    """When the run's latest process started, and the wall time of those before it
    (the first process started with the run; each resume says so in its event)."""
    start, before = row.started_at, 0.0
    for event in store.events(row.id):
        if event.get("kind") == RESUMED_EVENT:
            start, before = float(event["t"]), float(event.get("wall_before_s") or 0.0)
    return start, before


def run_wall_s(store: Store, row: RunRow) -> float:
    """The run's wall time as every command shows it: its processes' spans added up.

    A finished run's is recorded; a live one's runs to now; a crashed one's (see
    `shown_status`) ends at its last sign of life, not at now, so that it does not
    grow for ever after plait died. The gaps between a crash and a resume do not count.
    """
    if row.wall_s is not None:
        return row.wall_s
    start, before = latest_process(store, row)
    return before + max(0.0, run_end(store, row) - start)


def run_end(store: Store, row: RunRow) -> float:
    """When the run's latest process ended (epoch seconds): its recorded end, now for a
    live one, its last sign of life for a crashed one. Attempts left open count to it."""
    if row.finished_at is not None:
        return row.finished_at
    alive = row.status == "running" and shown_status(row) == "running"
    return time.time() if alive else stopped_at(store, row)


def stopped_at(store: Store, row: RunRow) -> float:
    """When the run's last process stopped: where a signal stopped it, the end its
    wall says (its agents were ended then, whether or not they printed since); when it
    was killed outright, its last sign of life."""
    if row.status != "running" and row.wall_s is not None:
        start, before = latest_process(store, row)
        return start + max(0.0, row.wall_s - before)
    return last_sign_of_life(store, row)


def run_json(store: Store, run_id: str) -> dict[str, Any]:
    """DESIGN §7's run/status object, with the status and wall time every command shows."""
    row = store.run(run_id)
    data = status_json(
        row,
        store.tasks(run_id),
        now=row.started_at + run_wall_s(store, row),
        attempts=store.attempts(run_id),
        open_until=run_end(store, row),
    )
    data["status"] = shown_status(row)
    if data["status"] == "interrupted":  # nothing runs any more: say where each stopped
        for task in data["tasks"]:
            if task["status"] in UNDER_WAY:
                task["status"] = "interrupted"
    return data


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s"


def status_text(
    data: dict[str, Any],
    *,
    branch_gone: bool = False,
    now: float | None = None,
    from_python: bool = False,
) -> str:
    """One run, a line per task. `branch_gone`: its result branch no longer exists;
    `now`: the moment a live run is shown at, for the time its tasks under way took so far;
    `from_python`: the run was started from Python (`plait resume` cannot rebuild it)."""
    lines = [f"run {data['run']} ({one_line(data.get('plan') or 'plan')}): {data['status']}"]
    if data.get("branch"):
        lines.append(
            f"result branch: {data['branch']}"
            + (f" at {data['head'][:12]}" if data.get("head") else "")
        )
    width = max((len(t["id"]) for t in data["tasks"]), default=4)
    for task in data["tasks"]:
        extra = ""
        if task.get("error") and task["status"] not in ("succeeded", "merged"):
            extra = f"  {one_line(task['error'], 300)}"
            if task.get("workspace"):
                extra += f"\n  {'':<{width}}  its work: {task['workspace']}"
                extra += f" (branch {task['branch']})" if task.get("branch") else ""
        elif task.get("changed_files"):
            count = len(task["changed_files"])
            extra = f"  {count} file{'' if count == 1 else 's'}"
        took = task.get("duration_s")
        if took is None and now is not None and task["status"] in UNDER_WAY:
            took = max(0.0, now - task["started_at"]) if task.get("started_at") else None
        lines.append(
            f"  {task['id']:<{width}}  {task['status']:<10}  attempts {task['attempts']}"
            f"  {_secs(took):>7}  {_money(task.get('cost_usd')):>7}{extra}"
        )
    lines.append(summary_line(data))
    if data["status"] == "interrupted" and branch_gone:
        lines.append(
            f"its result branch {data['branch']} is gone (`plait clean --branches`), so it "
            "cannot be resumed; start the plan again with `plait run` (what it had merged is "
            f"in a branch of yours, or kept as refs/plait/snapshots/{data['run']}/_result)"
        )
    elif data["status"] == "interrupted" and from_python:  # `plait resume` cannot rebuild it
        lines.append(f'continue it with plait.resume_plan(plan, "{data["run"]}")')
    elif data["status"] == "interrupted":
        lines.append(f"continue it with `plait resume {data['run']}`")
    verify = data.get("verify")
    if verify and verify.get("status") == "not run":
        lines.append(f"verify: not run ({verify.get('reason') or 'skipped'})")
    elif verify:
        fixed = verify.get("ok") and verify.get("after_fixer")
        # (a pass after the fixer: its first run failed, which "passed" alone hides)
        after = f", after {FIXER_TASK_ID} (its first run failed)" if fixed else ""
        lines.append(f"verify: {'passed' if verify.get('ok') else 'FAILED'}{after}")
        lines.extend(verify_failure_lines(verify))
    return "\n".join(lines)


def summary_line(data: dict[str, Any]) -> str:
    totals = data["totals"]
    speedup = totals.get("speedup")
    counts: dict[str, int] = {}
    for task in data["tasks"]:
        counts[task["status"]] = counts.get(task["status"], 0) + 1
    outcome = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    return (
        f"{outcome}; wall {_secs(totals['wall_s'])}, "
        f"sum of task times {_secs(totals['sequential_s'])}"
        + (f", speed-up {speedup:.1f}x" if speedup else "")
        + (f", cost {_money(totals['cost_usd'])}" if totals.get("cost_usd") is not None else "")
    )


def runs_json(store: Store) -> list[dict[str, Any]]:
    return [
        {
            "run": row.id,
            "plan": row.plan_name,
            "status": shown_status(row),
            "started_at": row.started_at,
            "wall_s": row.wall_s if row.wall_s is not None else run_wall_s(store, row),
            "branch": row.branch,
        }
        for row in store.runs()
    ]


def runs_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no runs yet"
    lines = []
    for row in rows:
        started = datetime.fromtimestamp(row["started_at"]).strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"{row['run']}  {started}  {row['status']:<11} {_secs(row['wall_s']):>7}"
            f"  {one_line(row['plan'] or '')}"
        )
    return "\n".join(lines)


def follow_events(
    store: Store,
    run_id: str,
    *,
    as_json: bool,
    write: Callable[[str], Any],
    poll_s: float = FOLLOW_POLL_S,
) -> int:
    """Print a run's events as they arrive, until the run is no longer running.

    Returns the exit code the run itself gave (DESIGN §7), so that a script can
    follow a run started elsewhere and act on how it ended, as it would on `run`.
    """
    from plait.eventline import format_event_line  # imported here: only --follow prints events

    seq = 0
    while True:
        for event in store.events(run_id, after_seq=seq):
            seq = max(seq, int(event.get("seq", seq)))
            write((json.dumps(event, default=str) if as_json else format_event_line(event)) + "\n")
        row = store.run(run_id)
        if row.status != "running" or (row.pid is not None and not pid_alive(row.pid)):
            for event in store.events(run_id, after_seq=seq):
                write(
                    (json.dumps(event, default=str) if as_json else format_event_line(event)) + "\n"
                )
            return run_exit_code(store.run(run_id).status)
        time.sleep(poll_s)
