"""What a backend makes of its CLI's messages: reset times, rate limits, failure reasons.

The fakes here are tiny scripts written into tmp_path for one test each, printing
exactly what the real CLI prints in that case (the messages are quoted from the
vendors' sources), run through the backend for real (`CliBackend.run`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from plait import proc
from plait.agents import get_backend
from plait.agents.base import AgentRequest, AgentResult, AttemptStatus
from plait.agents.cli_agent import rate_limit_error
from plait.agents.cli_output import without_json_documents
from plait.agents.codex import CodexBackend
from plait.agents.ratelimit import find_rate_limit, retry_after
from plait.model import Agent

#: How many characters of an attempt's error its event line shows.
EVENT_LINE_CHARS = 160


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local zone is New York (UTC-5, UTC-4 from March 14th, 2027)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fake_cli(tmp_path: Path, name: str, stdout: str = "", stderr: str = "", code: int = 0) -> str:
    """A program `name` that prints `stdout` and `stderr` and exits `code`; the PATH to use."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    said = bin_dir / f"{name}.json"
    said.write_text(json.dumps([stdout, stderr, code]), encoding="utf-8")
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "sys.stdin.read()\n"
        f"out, err, code = json.load(open({str(said)!r}, encoding='utf-8'))\n"
        "sys.stdout.write(out); sys.stdout.flush()\n"
        "sys.stderr.write(err); sys.stderr.flush()\n"
        "sys.exit(code)\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


def run_backend(tmp_path: Path, backend: str, path: str) -> AgentResult:
    """One attempt of `backend` against the fake on `path`."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    request = AgentRequest(
        run_id="r1",
        task_id="t1",
        attempt=1,
        agent=Agent(name="role", backend=backend),
        prompt="Do the task.",
        workspace=workspace,
        attempt_stem=tmp_path / "runs" / "r1" / "t1.1",
        env=proc.child_env({"PATH": path}),
        timeout_s=60.0,
    )
    return asyncio.run(get_backend(backend).run(request))


def jsonl(*events: object) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


# --- codex: "try again at <time>" and "try again at <date time>" ---------------------

#: 08:00 in New York, a Saturday.
NOW = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
H = 3600.0
D = 24 * H

#: codex-rs `UsageLimitReachedError` for a Plus plan, reset on another day
#: (`retry_suffix_after_or` + `format_retry_timestamp`: `%b %-d{suffix}, %Y %-I:%M %p`).
PLUS_LIMIT = (
    "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
    "https://chatgpt.com/codex/settings/usage to purchase more credits or try again at {when}."
)


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # another day: the date form, in the machine's local zone (New York)
        (PLUS_LIMIT.format(when="Nov 30th, 2026 8:05 PM"), 2 * D + 12 * H + 300),
        ("You've hit your usage limit. Try again at Dec 1st, 2026 9:00 AM.", 3 * D + H),
        ("You've hit your usage limit. Try again at Dec 2nd, 2026 12:30 AM.", 3 * D + 16.5 * H),
        ("You've hit your usage limit. Try again at Dec 3rd, 2026 12:00 PM.", 5 * D + 4 * H),
        # the same day: the time alone, still read as before
        ("You've hit your usage limit. Try again at 8:05 PM.", 12 * H + 300),
        ("You've hit your usage limit. Try again at 11:59 AM.", 3 * H + 59 * 60),
    ],
)
def test_codex_reset_times_in_local_time(text: str, seconds: float) -> None:
    assert retry_after(text, NOW) == pytest.approx(seconds)


@pytest.mark.usefixtures("new_york")
def test_codex_date_across_a_dst_change_counts_real_hours() -> None:
    # Saturday March 13th 2027, noon EST; New York moves to EDT on Sunday the 14th.
    now = datetime(2027, 3, 13, 17, 0, tzinfo=UTC)
    text = "You've hit your usage limit. Try again at Mar 15th, 2027 12:00 PM."
    assert retry_after(text, now) == pytest.approx(2 * D - H)


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize(
    "when",
    [
        "Nov 20th, 2026 8:05 PM",  # in the past: a stale message or a wrong clock
        "Nov 27th, 2026 8:05 PM",
        "Nov 28th, 2025 9:00 AM",  # a year ago
        "Dec 25th, 2026 8:05 PM",  # over eight days away: not believed
        "Feb 30th, 2027 8:05 PM",  # no such day
    ],
)
def test_codex_dates_not_believed_fall_back_to_backoff(when: str) -> None:
    assert retry_after(f"Try again at {when}.", NOW) is None


@pytest.mark.usefixtures("new_york")
def test_a_time_printed_to_the_minute_is_not_taken_for_tomorrow() -> None:
    # Codex prints 8:00 AM for a reset at 8:00:40; at 8:00:30 that is now, not in 24 hours.
    text = "You've hit your usage limit. Try again at 8:00 AM."
    assert retry_after(text, NOW + timedelta(seconds=30)) == 0.0
    # An hour past, the same words mean tomorrow (a 12-hour clock said at 9 am).
    assert retry_after(text, NOW + timedelta(hours=1)) == pytest.approx(23 * H)


@pytest.mark.usefixtures("new_york")
def test_codex_limit_keeps_its_reset_in_words_where_the_event_line_shows_it() -> None:
    text = PLUS_LIMIT.format(when="Nov 30th, 2026 8:05 PM")
    limit = find_rate_limit([text], CodexBackend.rate_limit_patterns, now=NOW)
    assert limit is not None
    assert limit.retry_after_s == pytest.approx(2 * D + 12 * H + 300)
    assert limit.reset == "try again at Nov 30th, 2026 8:05 PM"
    error = rate_limit_error("codex", limit)
    assert "try again at Nov 30th, 2026 8:05 PM" in error[:EVENT_LINE_CHARS]
    assert error.endswith(text)  # the vendor's message itself, whole


def test_a_short_message_is_not_repeated() -> None:
    limit = find_rate_limit(
        ["You've hit your usage limit. Try again in 3 seconds."], CodexBackend.rate_limit_patterns
    )
    assert limit is not None and limit.retry_after_s == 3
    error = rate_limit_error("codex", limit)
    assert (
        error
        == "codex hit a rate or usage limit: You've hit your usage limit. Try again in 3 seconds."
    )


def test_an_epoch_reset_is_named_in_words() -> None:
    stamp = int(NOW.timestamp()) + 3 * 3600
    limit = find_rate_limit(
        [f"Claude AI usage limit reached|{stamp}"], CodexBackend.rate_limit_patterns, now=NOW
    )
    assert limit is not None and limit.retry_after_s == pytest.approx(3 * H)
    local = datetime.fromtimestamp(stamp).astimezone()
    assert limit.reset.startswith("resets at ") and f"{local:%H:%M}" in limit.reset
    assert f"({limit.reset})" in rate_limit_error("claude", limit)


def test_codex_other_day_limit_through_the_backend(tmp_path: Path) -> None:
    """The fake prints codex's real event pair for a reset in two days (local time)."""
    now = datetime.now().astimezone()
    at = (now + timedelta(days=2, minutes=5)).replace(second=0, microsecond=0)
    day = at.day
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    hour = at.hour % 12 or 12
    when = f"{at:%b} {day}{suffix}, {at.year} {hour}:{at:%M} {'PM' if at.hour >= 12 else 'AM'}"
    message = PLUS_LIMIT.format(when=when)
    out = jsonl(
        {"type": "thread.started", "thread_id": "th-1"},
        {"type": "turn.started"},
        {"type": "error", "message": message},
        {"type": "turn.failed", "error": {"message": message}},
    )
    result = run_backend(tmp_path, "codex", fake_cli(tmp_path, "codex", out, code=1))
    assert result.status is AttemptStatus.RATE_LIMITED, result.error
    assert result.retry_after_s == pytest.approx((at - now).total_seconds(), abs=60)
    assert f"try again at {when}" in result.error[:EVENT_LINE_CHARS]


# --- gemini: the model's answer is not the CLI's words -------------------------------

GEMINI_STATS = {
    "models": {
        "gemini-2.5-pro": {
            "api": {"totalRequests": 2, "totalErrors": 0, "totalLatencyMs": 500},
            "tokens": {"prompt": 2000, "candidates": 20, "total": 2174, "cached": 1200},
        }
    },
    "tools": {"totalCalls": 1},
    "files": {"totalLinesAdded": 1, "totalLinesRemoved": 0},
}


def gemini_doc(**fields: object) -> str:
    """``--output-format json``'s document: JSON.stringify(..., null, 2)."""
    return json.dumps({"session_id": "g-1", **fields, "stats": GEMINI_STATS}, indent=2) + "\n"


ANSWER = (
    "I implemented the quota checker in quota.py: it answers 429 Too Many Requests "
    "(RESOURCE_EXHAUSTED) when a client passes its rate limit, and retryDelay says when."
)


def test_gemini_answer_about_quotas_failing_later_is_no_rate_limit(tmp_path: Path) -> None:
    doc = gemini_doc(response=ANSWER)
    path = fake_cli(tmp_path, "gemini", "Loaded cached credentials.\n" + doc, "Error: EPIPE\n", 1)
    result = run_backend(tmp_path, "gemini", path)
    assert result.status is AttemptStatus.FAILED, result.error
    assert result.error == "gemini exited with code 1: Error: EPIPE"
    assert result.output == ANSWER


def test_gemini_answer_about_quotas_after_a_cut_document(tmp_path: Path) -> None:
    # A killed gemini leaves its document unfinished: still the model's words.
    cut = "\n".join(gemini_doc(response=ANSWER).splitlines()[:30]) + "\n"
    result = run_backend(tmp_path, "gemini", fake_cli(tmp_path, "gemini", cut, "", 1))
    assert result.status is AttemptStatus.FAILED, result.error


def test_gemini_terminal_quota_error_on_stderr_is_read(tmp_path: Path) -> None:
    error = {
        "type": "TerminalQuotaError",
        "message": "You have exhausted your capacity on this model. "
        "Your quota will reset after 2s.",
        "code": 429,
    }
    stderr = "Loaded cached credentials.\n" + json.dumps({"error": error}, indent=2) + "\n"
    result = run_backend(tmp_path, "gemini", fake_cli(tmp_path, "gemini", "", stderr, 1))
    assert result.status is AttemptStatus.RATE_LIMITED, result.error
    assert result.retry_after_s == 2
    assert "TerminalQuotaError" in result.error


def test_gemini_resource_exhausted_with_retry_delay_on_stderr_is_read(tmp_path: Path) -> None:
    api = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "21s"}],
        }
    }
    stderr = f"Error when talking to Gemini API {json.dumps(api)}\n"
    doc = gemini_doc(error={"type": "Error", "message": "[API Error: exhausted]", "code": 1})
    result = run_backend(tmp_path, "gemini", fake_cli(tmp_path, "gemini", doc, stderr, 1))
    assert result.status is AttemptStatus.RATE_LIMITED, result.error
    assert result.retry_after_s == 21


def test_gemini_quota_error_in_the_documents_error_object_is_read(tmp_path: Path) -> None:
    error = {
        "type": "RetryableQuotaError",
        "message": "Quota exceeded for quota metric 'Generate Content API requests per "
        "minute'. Please retry in 38.5s.",
        "code": 429,
    }
    doc = gemini_doc(error=error)
    result = run_backend(tmp_path, "gemini", fake_cli(tmp_path, "gemini", doc, "", 1))
    assert result.status is AttemptStatus.RATE_LIMITED, result.error
    assert result.retry_after_s == 38.5


def test_without_json_documents_keeps_only_what_is_outside_them() -> None:
    pretty = json.dumps({"response": "rate limit 429", "n": [1, 2]}, indent=2)
    text = "\n".join(
        [
            "Loaded cached credentials.",
            '{"type": "quota", "code": 429}',
            "{ not json, a banner",
            pretty,
            "Error: EPIPE",
            "{",
            '  "response": "the quota, cut short',
        ]
    )
    assert without_json_documents(text) == "Loaded cached credentials.\nError: EPIPE"


# --- a failure's reason is words, never a JSON event ---------------------------------


def claude_result(text: str, *, is_error: bool = False) -> dict[str, object]:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": is_error,
        "duration_ms": 100,
        "num_turns": 3,
        "result": text,
        "session_id": "s-1",
        "total_cost_usd": 0.3,
        "usage": {"input_tokens": 10, "output_tokens": 50},
        "permission_denials": [],
    }


CLAUDE_START = [
    {"type": "system", "subtype": "init", "session_id": "s-1", "model": "claude-sonnet"},
    {
        "type": "assistant",
        "session_id": "s-1",
        "message": {"content": [{"type": "text", "text": "On it."}]},
    },
]


def test_claude_success_result_then_exit_1_gives_the_code_alone(tmp_path: Path) -> None:
    out = jsonl(*CLAUDE_START, claude_result("did stuff"))
    result = run_backend(tmp_path, "claude", fake_cli(tmp_path, "claude", out, code=1))
    assert result.status is AttemptStatus.FAILED
    assert result.error == "claude exited with code 1"
    assert result.output == "did stuff"


def test_codex_turn_completed_then_exit_2_gives_the_code_alone(tmp_path: Path) -> None:
    out = jsonl(
        {"type": "thread.started", "thread_id": "th-1"},
        {"type": "item.completed", "item": {"id": "i", "type": "agent_message", "text": "did it"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 5}},
    )
    result = run_backend(tmp_path, "codex", fake_cli(tmp_path, "codex", out, code=2))
    assert result.status is AttemptStatus.FAILED
    assert result.error == "codex exited with code 2"


def test_the_last_words_after_the_events_are_the_reason(tmp_path: Path) -> None:
    # A partial result line, then the CLI's own complaint on stderr.
    out = jsonl(*CLAUDE_START) + '{"type":"result","subtype":"succ'
    path = fake_cli(tmp_path, "claude", out, "Error: socket hang up\n", 1)
    result = run_backend(tmp_path, "claude", path)
    assert result.error == "claude exited with code 1: Error: socket hang up"


def test_an_error_result_is_the_reason(tmp_path: Path) -> None:
    out = jsonl(*CLAUDE_START, claude_result("Invalid API key · Please run /login", is_error=True))
    result = run_backend(tmp_path, "claude", fake_cli(tmp_path, "claude", out, code=1))
    assert result.error == "claude exited with code 1: Invalid API key · Please run /login"


def test_gemini_pretty_json_on_stderr_is_no_reason_line(tmp_path: Path) -> None:
    # The answer printed, then a crash: the last words are before the JSON's "}".
    stderr = "Something broke.\n" + json.dumps({"error": {"code": 500}}, indent=2) + "\n"
    path = fake_cli(tmp_path, "gemini", gemini_doc(response="done"), stderr, 1)
    result = run_backend(tmp_path, "gemini", path)
    assert result.error == "gemini exited with code 1: Something broke."


@pytest.mark.parametrize(
    "stderr, reason",
    [
        (
            "[2026-11-28T09:00:00] ERROR: unexpected status 401 Unauthorized\n",
            "[2026-11-28T09:00:00] ERROR: unexpected status 401 Unauthorized",
        ),
        ("[API Error: request failed]\n[\n  1,\n  2\n]\n", "[API Error: request failed]"),
        ('Broke.\n["a", "b"]\n', "Broke."),
    ],
)
def test_words_in_brackets_are_a_reason_a_json_array_is_not(
    tmp_path: Path, stderr: str, reason: str
) -> None:
    """A line opening with `[` was taken for JSON: codex's "[time] ERROR: 401" and
    gemini's "[API Error: ...]" were left out of the failure's reason."""
    out = jsonl({"type": "thread.started", "thread_id": "th-1"})
    result = run_backend(tmp_path, "codex", fake_cli(tmp_path, "codex", out, stderr, 1))
    assert result.error == f"codex exited with code 1: {reason}"
