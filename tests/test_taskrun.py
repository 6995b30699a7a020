"""plait.taskrun: the note a resumed retry gets, made again from what was recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from plait.store import AttemptRow
from plait.taskrun import resumed_note


def row(attempt: int, status: str, error: str = "") -> AttemptRow:
    return AttemptRow("r", "t", attempt, "first", status, 1.0, 2.0, None, None, 1, error,
                      None, None, None, None, None)  # fmt: skip


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
