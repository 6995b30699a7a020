"""The jobs limit under vendors' rate limits (pure: the numbers the driver applies)."""

from __future__ import annotations

from plait.ratejobs import RateLimitJobs

BACKENDS = {"c1": "claude", "c2": "claude", "x1": "codex", "x2": "codex", "w": "command"}


def test_a_limit_lowers_below_what_runs_and_a_success_after_it_raises() -> None:
    limits = RateLimitJobs(4, BACKENDS.__getitem__)
    assert limits.limited("c1", running={"c1", "x1", "w"}, agents=3) == 2
    assert limits.limited("x1", running={"c1", "x1", "w"}, agents=2) == 1  # again
    assert limits.succeeded("w") is None  # it was running before: says nothing
    assert limits.succeeded("c1") == 2  # the limited task itself: claude's lifted
    assert limits.succeeded("x1") == 3
    assert limits.current == 3


def test_another_vendors_success_says_nothing_while_a_task_waits() -> None:
    limits = RateLimitJobs(3, BACKENDS.__getitem__)
    assert limits.limited("c1", running={"c1", "x1"}, agents=2) == 1
    assert limits.succeeded("x2") is None  # codex ran in the slot c1 lent
    assert limits.succeeded("c2") == 2  # claude's did lift


def test_once_no_task_waits_any_success_raises() -> None:
    """A limited task that failed instead of succeeding left the jobs lowered."""
    limits = RateLimitJobs(3, BACKENDS.__getitem__)
    assert limits.limited("x1", running={"x1", "w"}, agents=2) == 1
    limits.ended("x1")  # it gave up
    assert limits.succeeded("c1") == 2
    assert limits.succeeded("c2") == 3
    assert limits.succeeded("c2") is None  # (at `jobs` already)
