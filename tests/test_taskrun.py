"""plait.taskrun: what a resumed task has left (retries, conflict re-runs) and the note
its next attempt gets, both made again from the attempts recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from plait.carryover import resumed_note, tries_used
from plait.store import AttemptRow


def row(attempt: int, status: str, error: str = "", kind: str = "first") -> AttemptRow:
    return AttemptRow("r", "t", attempt, kind, status, 1.0, 2.0, None, None, 1, error,
                      None, None, None, None, None)  # fmt: skip


def rows(*attempts: tuple[str, str]) -> list[AttemptRow]:
    """Attempt rows numbered from 1, each (kind, status)."""
    return [row(n, status, kind=kind) for n, (kind, status) in enumerate(attempts, 1)]


def test_tries_used_counts_how_attempts_ended_not_why_they_started() -> None:
    # Killed after attempt 1's failure was recorded, before its retry started; the
    # retry, started by resume as kind "resume", killed too: still one retry used,
    # so with `retries: 1` the next attempt is the last that may fail.
    assert tries_used(rows(("first", "failed"), ("resume", "interrupted"))) == (1, 0)
    # Interrupted attempts use nothing, however many: each is run again once.
    interrupted = [("first", "interrupted"), ("resume", "interrupted"), ("resume", "failed")]
    assert tries_used(rows(*interrupted)) == (1, 0)
    # The failure before a kill counts although its retry never started.
    assert tries_used(rows(("first", "failed"))) == (1, 0)
    # Then that retry failed: with `retries: 1` the task has failed all it may (2 > 1);
    # counting kind "retry" alone gave it a fourth attempt as a retry.
    reviewed = [("first", "failed"), ("resume", "interrupted"), ("resume", "failed")]
    assert tries_used(rows(*reviewed)) == (2, 0)
    # Every way an attempt fails uses a retry: a refused scope/check/merge ("rejected"),
    # a time-out, a crash, a workspace that could not be set up ("errored").
    failures = ["failed", "timeout", "crashed", "rejected", "errored"]
    assert tries_used(rows(*[("retry", s) for s in failures])) == (5, 0)
    # Not failures: a rate limit (waited out), a stop (--fail-fast), a success.
    free = [("first", "rate_limited"), ("rate_limit", "cancelled"), ("resume", "ok")]
    assert tries_used(rows(*free)) == (0, 0)


def test_conflict_reruns_are_counted_the_same_way() -> None:
    # A conflict, then its re-run interrupted twice and run again as "resume": one
    # re-run used, not zero.
    history = [
        ("first", "conflict"),
        ("resume", "interrupted"),
        ("resume", "interrupted"),
        ("resume", "conflict"),
    ]
    assert tries_used(rows(*history)) == (0, 2)
    mixed = [("first", "conflict"), ("conflict", "failed"), ("retry", "interrupted")]
    assert tries_used(rows(*mixed)) == (1, 1)


def stems(tmp_path: Path) -> Callable[[int], Path]:
    return lambda attempt: tmp_path / f"t.{attempt}"


def test_a_failed_check_is_told_from_the_checks_log(tmp_path: Path) -> None:
    (tmp_path / "t.1.log").write_text("the agent's chatter\n")
    (tmp_path / "t.1.verify.log").write_text("FAILED test_login\n")
    note = resumed_note([row(1, "rejected", "verify pytest failed")], stems(tmp_path))
    assert note.startswith("## Note from plait\n\nThe previous attempt failed: verify pytest")
    assert "FAILED test_login" in note and "chatter" not in note
    # A check that printed nothing: no log of its own, and the agent's is not it.
    (tmp_path / "t.1.verify.log").unlink()
    note = resumed_note([row(1, "rejected", "verify pytest failed")], stems(tmp_path))
    assert "verify pytest failed" in note and "chatter" not in note


def test_a_conflict_names_its_files(tmp_path: Path) -> None:
    note = resumed_note([row(1, "conflict", "merge conflict in a.py")], stems(tmp_path))
    assert "conflicted with work merged meanwhile (merge conflict in a.py)" in note


def test_no_note_without_a_failure_or_after_a_success(tmp_path: Path) -> None:
    assert resumed_note([row(1, "interrupted")], stems(tmp_path)) == ""
    rows = [row(1, "failed", "exited with code 1"), row(2, "ok")]
    assert resumed_note(rows, stems(tmp_path)) == ""
    # An interrupted retry after a failure: the failure is still what the next one needs.
    rows = [row(1, "failed", "exited with code 1"), row(2, "interrupted")]
    assert "exited with code 1" in resumed_note(rows, stems(tmp_path))


def test_a_rate_limit_reset_on_another_day_is_shown_with_its_date() -> None:
    """A reset two days away said "next attempt at 08:31:37", which read as the past."""
    import time

    from plait.taskrun import _clock

    now = time.time()
    assert _clock(now) == time.strftime("%H:%M:%S", time.localtime(now))  # today: no date
    two_days = _clock(now + 2 * 86400)
    assert two_days == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now + 2 * 86400))
