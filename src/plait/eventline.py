"""One plain line per event, for logs, pipes and `plait status --follow`.

Kept apart from the board so that printing events never imports rich.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from plait.report import fmt_duration
from plait.textsafe import clean_line as clean_line
from plait.textsafe import one_line


def _one_line(value: object, limit: int = 160) -> str:
    return one_line(value, limit)


def _files(value: Any) -> str:
    files = [str(f) for f in value] if isinstance(value, list | tuple) else [str(value)]
    shown = ", ".join(files[:5]) + (f" (+{len(files) - 5})" if len(files) > 5 else "")
    return _one_line(shown)


def _message(e: Mapping[str, Any]) -> str:
    kind = str(e.get("kind", "?"))
    n = e.get("attempt")
    took = f" in {fmt_duration(float(e['duration_s']))}" if e.get("duration_s") is not None else ""
    err = f": {_one_line(e['error'])}" if e.get("error") else ""
    status = str(e.get("status") or e.get("outcome") or "")
    match kind:
        case "run_started":
            extra = "".join(f" · {k} {e[k]}" for k in ("tasks", "jobs") if e.get(k) is not None)
            if e.get("isolation") == "none":
                extra += " · isolation none: the agents work in the checkout itself"
            return f"run {e.get('run', '')} started{extra}"
        case "run_finished":
            wall = e.get("wall_s", e.get("duration_s"))
            took = f" in {fmt_duration(float(wall))}" if wall is not None else ""
            return f"run finished: {status or 'done'}{took}{err}"
        case "task_started":
            return "started"
        case "attempt_started":
            why = e.get("reason") or e.get("attempt_kind") or ""
            why = f" ({why})" if why and why != "first" else ""
            return f"started attempt {n}{why}" if n is not None else f"started attempt{why}"
        case "attempt_finished":
            return f"attempt {n} {status or 'finished'}{took}{err}"
        case "task_finished":
            return f"{status or 'finished'}{took}{err}"
        case "merged":
            commit = str(e.get("commit") or "")[:10]
            files = e.get("files")
            count = (
                f" ({len(files)} file{'' if len(files) == 1 else 's'})"
                if isinstance(files, list | tuple)
                else ""
            )
            return f"merged {commit}{count}".rstrip()
        case "conflict":
            where = f" in {_files(e['files'])}" if e.get("files") else ""
            return f"merge conflict{where}, re-running on the new tip"
        case "verify_started":
            return "verify started"
        case "verify_finished":
            return f"verify {status or ('passed' if e.get('ok') else 'failed')}{took}{err}"
        case "retry":  # `attempt` is the one that failed
            return f"attempt {n} failed, retrying{err}" if n is not None else f"retrying{err}"
        case "conflict_rerun":
            return f"attempt {n} conflicted, re-running{err}" if n is not None else "re-running"
        case "stopping":
            return f"run stopping: {_one_line(e.get('reason') or '')}".rstrip(": ")
        case "run_resumed":
            before = e.get("wall_before_s")
            ran = f" · {fmt_duration(float(before))} run before" if before else ""
            return f"run {e.get('run', '')} resumed{ran}"
        case "jobs_lowered" | "jobs_raised":
            way = "lowered" if kind == "jobs_lowered" else "raised"
            return f"jobs {way} to {e.get('jobs')}"
        case "scope_warning":
            return f"wrote outside its writes (scope: warn): {_files(e.get('files') or [])}"
        case "warning":
            return f"warning: {_one_line(e.get('message') or '')}"
        case "fixer_started":
            return "fixer started"
        case "skipped":
            why = e.get("reason") or e.get("error") or ""
            return f"skipped: {_one_line(why)}" if why else "skipped"
        case "rate_limited":
            wait = e.get("wait_s")
            return "rate-limited" + (f", retrying in {fmt_duration(float(wait))}" if wait else "")
    skip = {"t", "seq", "run", "kind", "task"}
    extra = " ".join(f"{k}={_one_line(v, 60)}" for k, v in e.items() if k not in skip)
    return f"{kind.replace('_', ' ')} {extra}".rstrip()


def format_event_line(event: Mapping[str, Any]) -> str:
    """One plain line per event for logs and pipes: '12:03:04 api        started attempt 1'."""
    t = event.get("t")
    clock = time.strftime("%H:%M:%S", time.localtime(float(t))) if t is not None else "--:--:--"
    who = event.get("task") or "run"
    return f"{clock} {clean_line(str(who)):<10} {_message(event)}"
