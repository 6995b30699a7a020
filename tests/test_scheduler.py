"""The scheduler: unit cases by hand, then hypothesis-driven runs on random DAGs."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Collection, Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.model import Outcome
from plait.scheduler import Schedule, Scheduler, critical_path_priority, simulate

S, F, E, C = Outcome.SUCCEEDED, Outcome.FAILED, Outcome.ERRORED, Outcome.CONFLICTED
SKIP, CANCEL = Outcome.SKIPPED, Outcome.CANCELLED

DIAMOND = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}


def make(
    tasks: str | list[str],
    needs: Mapping[str, Collection[str]] | None = None,
    exclusive: Mapping[str, Collection[str]] | None = None,
    priority: Mapping[str, float] | None = None,
    jobs: int = 4,
    **kwargs: object,
) -> Scheduler:
    return Scheduler(
        list(tasks),
        needs or {},
        exclusive or {},
        priority or {},
        jobs,
        **kwargs,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------- unit cases


def test_diamond_runs_in_dependency_order() -> None:
    s = make("abcd", DIAMOND, priority={"c": 2, "b": 1})
    assert s.state("a") == "ready" and s.state("d") == "waiting"
    assert s.start_ready() == ["a"]
    assert s.start_ready() == []  # nothing else is ready while a runs
    assert s.finish("a", S) == []
    assert s.start_ready() == ["c", "b"]  # highest priority first
    assert s.finish("b", S) == []
    assert s.start_ready() == []  # d still needs c
    assert s.waiting_on("d") == ["c"]
    s.finish("c", S)
    assert s.start_ready() == ["d"]
    s.finish("d", S)
    assert not s.is_active()
    assert dict(s.outcomes) == dict.fromkeys("abcd", S)
    assert not s.run_failed


def test_chain_runs_one_at_a_time() -> None:
    s = make("abc", {"b": ["a"], "c": ["b"]}, jobs=8)
    seen = []
    while s.is_active():
        (task,) = s.start_ready()
        seen.append(task)
        s.finish(task, S)
    assert seen == ["a", "b", "c"]


def test_jobs_limit_and_ties_by_id() -> None:
    s = make(["e", "d", "c", "b", "a"], jobs=2)
    assert s.start_ready() == ["a", "b"]
    assert s.start_ready() == []
    assert s.running == frozenset({"a", "b"})
    s.finish("b", S)
    assert s.start_ready() == ["c"]


def test_priority_order_beats_id_order() -> None:
    s = make("abcd", priority={"a": 1, "b": 5, "c": 3, "d": 5}, jobs=3)
    assert s.start_ready() == ["b", "d", "c"]


def test_exclusive_pair_is_serialised_without_starving_others() -> None:
    s = make("abc", exclusive={"a": ["b"]}, priority={"a": 3, "b": 2, "c": 1}, jobs=2)
    # b is blocked by a, so the second slot goes to c rather than staying idle.
    assert s.start_ready() == ["a", "c"]
    assert s.state("b") == "ready"
    assert s.waiting_on("b") == ["a"]
    s.finish("c", S)
    assert s.start_ready() == []  # b still blocked: the free slot stays free
    s.finish("a", S)
    assert s.start_ready() == ["b"]  # the parked task was not lost
    assert s.waiting_on("b") == []


def test_exclusion_is_symmetric_and_counts_every_running_partner() -> None:
    # x is exclusive with both a and b (declared only from their side).
    s = make(["a", "b", "x"], exclusive={"a": ["x"], "b": ["x"]}, priority={"a": 2, "b": 2})
    assert s.start_ready() == ["a", "b"]
    assert s.waiting_on("x") == ["a", "b"]
    s.finish("a", S)
    assert s.start_ready() == []  # b still runs
    s.finish("b", S)
    assert s.start_ready() == ["x"]


def test_skip_propagates_transitively_and_others_go_on() -> None:
    needs = {"b": ["a"], "c": ["b"], "d": ["a"], "f": ["e", "c"]}
    s = make("abcdef", needs, priority={"a": 1})
    assert s.start_ready() == ["a", "e"]
    assert sorted(s.finish("a", F)) == ["b", "c", "d", "f"]
    assert all(s.outcome(t) is SKIP for t in "bcdf")
    assert s.state("f") == "done"
    assert s.is_active()  # e still runs
    assert s.finish("e", S) == []  # f was already skipped: not released again
    assert s.start_ready() == []
    assert not s.is_active()
    assert s.run_failed


@pytest.mark.parametrize("outcome", [F, E, C, CANCEL])
def test_any_unsuccessful_need_skips(outcome: Outcome) -> None:
    s = make("ab", {"b": ["a"]})
    s.start_ready()
    assert s.finish("a", outcome) == ["b"]
    assert s.outcome("b") is SKIP


def test_fail_fast_cancels_everything_not_started() -> None:
    needs = {"b": ["a"], "d": ["c"]}
    s = make("abcde", needs, priority={"a": 3, "c": 2}, jobs=2, fail_fast=True)
    assert s.start_ready() == ["a", "c"]
    ended = s.finish("a", F)
    assert ended == ["b", "d", "e"]  # b skipped (its need failed), d and e cancelled
    assert s.outcome("b") is SKIP and s.outcome("d") is CANCEL and s.outcome("e") is CANCEL
    assert s.running == frozenset({"c"})  # running tasks are not stopped
    assert s.start_ready() == []
    assert s.finish("c", S) == []  # d was cancelled already, not released
    assert s.outcome("d") is CANCEL
    assert not s.is_active() and s.run_failed


def test_continue_on_error_does_not_fail_the_run_but_dependants_skip() -> None:
    s = make("abc", {"b": ["a"]}, continue_on_error={"a"}, fail_fast=True)
    assert s.start_ready() == ["a", "c"]
    assert s.finish("a", F) == ["b"]  # no fail-fast cancel: a's failure is excused
    assert s.outcome("b") is SKIP
    assert s.running == frozenset({"c"})
    s.finish("c", S)
    assert not s.run_failed


def test_continue_on_error_task_cancelled_still_fails_the_run() -> None:
    s = make("ab", continue_on_error={"a", "b"})
    s.start_ready()
    s.finish("a", E)
    assert not s.run_failed
    s.finish("b", CANCEL)
    assert s.run_failed


def test_resume_with_done_never_restarts_and_releases_or_skips() -> None:
    needs = {"b": ["a"], "c": ["x"], "d": ["c"], "e": ["a", "b"]}
    done = {"a": S, "x": F}
    s = make(["a", "x", "b", "c", "d", "e"], needs, done=done)
    assert s.ended_on_resume == ("c", "d")
    assert s.outcome("c") is SKIP and s.outcome("d") is SKIP
    assert s.start_ready() == ["b"]
    s.finish("b", S)
    assert s.start_ready() == ["e"]
    s.finish("e", S)
    assert not s.is_active()
    assert s.outcomes["a"] is S and s.outcomes["x"] is F
    assert s.run_failed  # x's recorded failure still counts


def test_resume_with_fail_fast_after_a_failure_starts_nothing() -> None:
    s = make("abc", {"b": ["a"]}, fail_fast=True, done={"a": F})
    assert s.ended_on_resume == ("b", "c")
    assert s.outcome("c") is CANCEL
    assert s.start_ready() == [] and not s.is_active()


def test_set_jobs_lowers_and_raises_without_stopping_running_tasks() -> None:
    s = make("abcdefg", jobs=4)
    assert s.start_ready() == list("abcd")
    s.set_jobs(2)
    assert s.jobs == 2 and len(s.running) == 4
    s.finish("a", S)
    assert s.start_ready() == []  # 3 running > 2
    s.finish("b", S)
    assert s.start_ready() == []  # 2 running == 2
    s.finish("c", S)
    assert s.start_ready() == ["e"]
    s.set_jobs(5)
    assert s.start_ready() == ["f", "g"]
    with pytest.raises(ValueError):
        s.set_jobs(0)


def test_stop_starting_ends_every_task_not_started() -> None:
    s = make("abcd", {"d": ["a"]}, jobs=2)
    assert s.start_ready() == ["a", "b"]
    assert s.stop_starting() == ["c", "d"]
    assert s.outcome("c") is CANCEL and s.outcome("d") is CANCEL
    assert s.start_ready() == []
    assert s.is_active()  # a and b still run
    assert s.finish("a", F) == []
    assert s.finish("b", S) == []
    assert not s.is_active() and s.run_failed
    with pytest.raises(ValueError):
        s.stop_starting(S)


def test_stop_starting_with_skipped_outcome_does_not_fail_the_run() -> None:
    s = make("ab")
    assert s.stop_starting(SKIP) == ["a", "b"]
    assert not s.run_failed and not s.is_active()


def test_waiting_on_and_state_through_a_task_life() -> None:
    s = make("abc", {"c": ["a", "b"]})
    assert s.waiting_on("c") == ["a", "b"]
    s.start_ready()
    assert s.state("a") == "running" and s.waiting_on("a") == []
    s.finish("a", S)
    assert s.waiting_on("c") == ["b"]
    assert s.state("a") == "done" and s.outcome("c") is None


def test_programming_errors_raise() -> None:
    with pytest.raises(KeyError):
        make("ab", {"b": ["zz"]})
    with pytest.raises(KeyError):
        make("ab", {"zz": ["a"]})
    with pytest.raises(KeyError):
        make("ab", exclusive={"a": ["zz"]})
    with pytest.raises(KeyError):
        make("ab", done={"zz": S})
    with pytest.raises(ValueError, match="cycle"):
        make("abc", {"a": ["c"], "b": ["a"], "c": ["b"]})
    with pytest.raises(ValueError, match="cycle"):
        make("a", {"a": ["a"]})
    with pytest.raises(ValueError):
        make("a", jobs=0)
    s = make("ab", {"b": ["a"]})
    with pytest.raises(ValueError, match="not running"):
        s.finish("a", S)  # ready, not started
    s.start_ready()
    s.finish("a", S)
    with pytest.raises(ValueError, match="not running"):
        s.finish("a", S)  # twice
    with pytest.raises(KeyError):
        s.finish("zz", S)
    with pytest.raises(KeyError):
        s.state("zz")
    with pytest.raises(KeyError):
        s.outcome("zz")
    with pytest.raises(TypeError):
        s.outcomes["x"] = S  # type: ignore[index]


def test_empty_plan_is_not_active() -> None:
    s = make([])
    assert not s.is_active() and s.start_ready() == []
    assert simulate({}, {}, {}, {}, 2) == Schedule(start={}, finish={}, makespan=0.0)


# ------------------------------------------------------------ simulate by hand


def test_critical_path_priority_by_hand() -> None:
    durations = {"a": 2.0, "b": 3.0, "c": 1.0, "d": 2.0}
    assert critical_path_priority(durations, DIAMOND) == {"a": 7, "b": 5, "c": 3, "d": 2}
    with pytest.raises(KeyError):
        critical_path_priority({"a": 1.0}, {"a": ["zz"]})


def test_simulate_diamond_by_hand() -> None:
    durations = {"a": 2.0, "b": 3.0, "c": 1.0, "d": 2.0}
    sched = simulate(durations, DIAMOND, {}, critical_path_priority(durations, DIAMOND), 2)
    assert sched.start == {"a": 0, "b": 2, "c": 2, "d": 5}
    assert sched.finish == {"a": 2, "b": 5, "c": 3, "d": 7}
    assert sched.makespan == 7


def test_simulate_critical_path_first_beats_id_order() -> None:
    durations = {"a": 2.0, "b": 2.0, "c": 4.0, "e": 4.0}
    needs = {"e": ["c"]}
    cp = critical_path_priority(durations, needs)
    # c (cp 8) and a start at 0; b at 2; e after c at 4 → 8.
    assert simulate(durations, needs, {}, cp, 2).makespan == 8
    # Without priorities a and b go first (ids), c at 2, e at 6 → 10.
    assert simulate(durations, needs, {}, {}, 2).makespan == 10


def test_simulate_exclusive_pair_by_hand() -> None:
    durations = {"a": 3.0, "b": 2.0, "c": 1.0}
    sched = simulate(durations, {}, {"a": ["b"]}, {"a": 3, "b": 2, "c": 1}, 2)
    assert sched.start == {"a": 0, "c": 0, "b": 3}
    assert sched.makespan == 5


def test_simulate_ten_thousand_tasks_is_fast() -> None:
    # Speed is benchmarked elsewhere; this bound is ~40x the measured time and only
    # catches a quadratic rescan (which takes minutes at this size).
    rng = random.Random(7)
    ids = [f"t{i}" for i in range(10_000)]
    needs = {ids[i]: rng.sample(ids[max(0, i - 200) : i], min(i, 3)) for i in range(len(ids))}
    durations = {t: rng.uniform(1, 10) for t in ids}
    exclusive = {ids[i]: [ids[i + 1]] for i in range(0, len(ids) - 1, 7)}
    began = time.perf_counter()
    sched = simulate(durations, needs, exclusive, critical_path_priority(durations, needs), 8)
    assert time.perf_counter() - began < 10
    assert len(sched.finish) == len(ids)


# ------------------------------------------------------------- property tests

FAILING = (F, E, C, CANCEL)


@st.composite
def graphs(
    draw: st.DrawFn, max_tasks: int = 10
) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]], dict[str, float]]:
    """A random DAG (needs only point to earlier tasks), exclusive pairs, priorities."""
    n = draw(st.integers(1, max_tasks))
    names = draw(st.permutations([f"t{i}" for i in range(n)]))  # ids unrelated to order
    needs = {
        names[j]: draw(st.lists(st.sampled_from(names[:j]), max_size=3, unique=True))
        for j in range(1, n)
    }
    pairs = list(itertools.combinations(names, 2))
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=5, unique=True)) if pairs else []
    exclusive: dict[str, list[str]] = {}
    for a, b in chosen:
        exclusive.setdefault(a, []).append(b)
    priority = {t: float(draw(st.integers(0, 3))) for t in names}
    return names, needs, exclusive, priority


def ancestors(task: str, needs: Mapping[str, Collection[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(needs.get(task, ()))
    while stack:
        need = stack.pop()
        if need not in seen:
            seen.add(need)
            stack.extend(needs.get(need, ()))
    return seen


def excluded(a: str, b: str, exclusive: Mapping[str, Collection[str]]) -> bool:
    return b in exclusive.get(a, ()) or a in exclusive.get(b, ())


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=graphs(), data=st.data())
def test_random_runs_keep_every_invariant(
    graph: tuple[list[str], dict[str, list[str]], dict[str, list[str]], dict[str, float]],
    data: st.DataObject,
) -> None:
    names, needs, exclusive, priority = graph
    all_succeed = data.draw(st.booleans())
    pick = st.just(S) if all_succeed else st.sampled_from((S, S, S, *FAILING))
    planned = {t: data.draw(pick) for t in names}
    coe = set(data.draw(st.lists(st.sampled_from(names), max_size=3)))
    fail_fast = data.draw(st.booleans())
    jobs = data.draw(st.integers(1, 4))
    stop_after = data.draw(st.none() | st.integers(0, len(names)))
    s = Scheduler(
        names, needs, exclusive, priority, jobs, continue_on_error=coe, fail_fast=fail_fast
    )

    ended_order: list[str] = []  # every end; checked for duplicates
    # When each task ended: (call number, 0 for the finished task or a stop, 1 for
    # what a finish ended in turn), so "its need had already failed" is comparable.
    ended_at: dict[str, tuple[int, int]] = {}
    calls = 0
    started: set[str] = set()
    finishes = 0
    stopped = False
    while s.is_active():
        if data.draw(st.integers(0, 4)) == 0:
            jobs = data.draw(st.integers(1, 4))
            s.set_jobs(jobs)
        if stop_after is not None and finishes >= stop_after and not stopped:
            stopped = True
            calls += 1
            cancelled = s.stop_starting()
            ended_order += cancelled
            ended_at.update(dict.fromkeys(cancelled, (calls, 0)))
            if not s.running:
                break
        running_before = len(s.running)
        new = s.start_ready()
        keys = [(-priority[t], t) for t in new]
        assert keys == sorted(keys), "started highest priority first"
        for task in new:
            assert task not in started
            started.add(task)
            assert all(s.outcome(n) is S for n in needs.get(task, ())), "needs succeeded"
        if new:
            assert len(s.running) <= jobs, "never more than jobs"
        else:
            assert len(s.running) == running_before
        for a, b in itertools.combinations(sorted(s.running), 2):
            assert not excluded(a, b, exclusive), f"{a} and {b} run together"
        for task in names:  # work-conserving: an idle slot means nothing startable
            if s.state(task) == "ready":
                blocked = s.waiting_on(task)
                assert len(s.running) >= jobs or blocked
                assert all(excluded(task, b, exclusive) for b in blocked)
                for begun in new:  # nothing better was left behind
                    assert blocked or (-priority[begun], begun) < (-priority[task], task)
        assert s.running, "active with nothing running: deadlock"
        task = data.draw(st.sampled_from(sorted(s.running)))
        consequences = s.finish(task, planned[task])
        finishes += 1
        ended_order.append(task)
        for other in consequences:
            assert s.outcome(other) in (SKIP, CANCEL)
            if s.outcome(other) is SKIP:
                assert any(s.outcome(n) not in (None, S) for n in needs.get(other, ()))
        ended_order += consequences
        calls += 1
        ended_at[task] = (calls, 0)
        ended_at.update(dict.fromkeys(consequences, (calls, 1)))

    # Every task ended exactly once, with the outcome the scheduler reports.
    assert sorted(ended_order) == sorted(names)
    assert set(s.outcomes) == set(names)
    for task in names:
        if task in started:
            assert s.outcome(task) is planned[task]
            continue
        assert s.outcome(task) in (SKIP, CANCEL)
        # A task ended after one of its needs failed is SKIPPED (not cancelled).
        failed_first = [
            n for n in needs.get(task, ()) if s.outcome(n) is not S and ended_at[n] < ended_at[task]
        ]
        if failed_first:
            assert s.outcome(task) is SKIP
    if not fail_fast and not stopped:
        # make -k: a task runs exactly when none of its ancestors failed.
        for task in names:
            clean = all(planned[a] is S for a in ancestors(task, needs))
            assert (task in started) == clean
    if all_succeed and not stopped:
        assert started == set(names)
    expected_failed = any(
        o is CANCEL or (o in (F, E, C) and t not in coe) for t, o in s.outcomes.items()
    )
    assert s.run_failed == expected_failed


@settings(max_examples=150, deadline=None)
@given(graph=graphs(), data=st.data())
def test_resume_reaches_the_same_outcomes_as_an_uninterrupted_run(
    graph: tuple[list[str], dict[str, list[str]], dict[str, list[str]], dict[str, float]],
    data: st.DataObject,
) -> None:
    names, needs, exclusive, priority = graph
    planned = {t: data.draw(st.sampled_from((S, S, F, E))) for t in names}
    jobs = data.draw(st.integers(1, 3))

    def drive(s: Scheduler, limit: int | None) -> set[str]:
        ran: set[str] = set()
        while s.is_active() and (limit is None or len(ran) < limit):
            s.start_ready()
            task = data.draw(st.sampled_from(sorted(s.running)))
            s.finish(task, planned[task])
            ran.add(task)
        return ran

    first = Scheduler(names, needs, exclusive, priority, jobs)
    ran_before = drive(first, data.draw(st.integers(0, len(names))))
    # The crash: tasks in flight are forgotten and run again; recorded ends are kept.
    recorded = dict(first.outcomes)
    second = Scheduler(names, needs, exclusive, priority, jobs, done=recorded)
    assert set(second.ended_on_resume).isdisjoint(recorded)
    ran_after = drive(second, None)
    assert ran_after.isdisjoint(set(recorded)), "a recorded task ran again"
    assert ran_before.isdisjoint(ran_after)
    expected = {
        t: planned[t] if all(planned[a] is S for a in ancestors(t, needs)) else SKIP for t in names
    }
    assert dict(second.outcomes) == expected


@settings(max_examples=200, deadline=None)
@given(graph=graphs(max_tasks=14), data=st.data())
def test_simulated_schedules_are_valid_and_within_bounds(
    graph: tuple[list[str], dict[str, list[str]], dict[str, list[str]], dict[str, float]],
    data: st.DataObject,
) -> None:
    names, needs, exclusive, _ = graph
    if data.draw(st.booleans()):
        exclusive = {}
    durations = {t: float(data.draw(st.integers(1, 20))) for t in names}
    jobs = data.draw(st.integers(1, 4))
    cp = critical_path_priority(durations, needs)
    sched = simulate(durations, needs, exclusive, cp, jobs)

    eps = 1e-9
    for t in names:
        assert sched.finish[t] == pytest.approx(sched.start[t] + durations[t])
        for n in needs.get(t, ()):
            assert sched.start[t] >= sched.finish[n] - eps
    for t in names:  # at each start instant, at most `jobs` tasks are running
        at = sched.start[t]
        busy = [u for u in names if sched.start[u] <= at < sched.finish[u]]
        assert len(busy) <= jobs
    for a, bs in exclusive.items():
        for b in bs:
            assert sched.start[a] >= sched.finish[b] or sched.start[b] >= sched.finish[a]
    work = sum(durations.values())
    longest = max(cp.values())
    assert sched.makespan == max(sched.finish.values())
    assert sched.makespan >= max(longest, work / jobs) - eps
    assert sched.makespan <= work + eps
    if not exclusive:
        # Graham's bound holds for any list schedule that never idles a slot needlessly.
        assert sched.makespan <= work / jobs + (1 - 1 / jobs) * longest + eps
    if jobs == 1:
        assert sched.makespan == pytest.approx(work)
