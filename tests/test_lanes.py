"""FileLanes: re-runs on one file take turns; on other files they run side by side."""

from __future__ import annotations

import asyncio

import pytest

from plait.lanes import FileLanes, StepAside


def test_holders_of_one_file_take_turns_and_others_run_beside_them() -> None:
    lanes = FileLanes()
    log: list[str] = []

    async def rerun(name: str, files: tuple[str, ...]) -> None:
        async with lanes.hold(files):
            log.append(f"{name}+")
            await asyncio.sleep(0.02)
            log.append(f"{name}-")

    async def main() -> None:
        await asyncio.gather(
            rerun("a", ("CHANGELOG.md",)),
            rerun("b", ("src/x.py", "CHANGELOG.md")),  # shares CHANGELOG.md with a
            rerun("c", ("docs/y.md",)),  # shares nothing: not held back
        )

    asyncio.run(main())
    assert log.index("c+") < log.index("a-")  # c ran beside a
    first, second = ("a", "b") if log.index("a+") < log.index("b+") else ("b", "a")
    assert log.index(f"{first}-") < log.index(f"{second}+")  # a and b took turns


def test_crossed_sets_never_deadlock() -> None:
    """Taken in sorted order: {x, y} and {y, x} cannot each hold one and wait forever."""
    lanes = FileLanes()

    async def rerun(files: tuple[str, ...]) -> None:
        async with lanes.hold(files):
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(rerun(("x", "y") if i % 2 else ("y", "x")) for i in range(10))), 5
        )

    asyncio.run(main())


def test_a_holder_cancelled_while_waiting_leaves_nothing_held() -> None:
    lanes = FileLanes()

    async def main() -> None:
        entered = asyncio.Event()

        async def holder() -> None:
            async with lanes.hold(["f", "g"]):
                entered.set()
                await asyncio.sleep(10)

        first = asyncio.ensure_future(holder())
        await entered.wait()
        waiting = asyncio.ensure_future(lanes.hold(["a", "f"]).__aenter__())
        await asyncio.sleep(0.01)
        waiting.cancel()  # it held "a" and waited for "f"
        with pytest.raises(asyncio.CancelledError):
            await waiting
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        async with asyncio.timeout(1):  # all free again
            async with lanes.hold(["a", "f", "g"]):
                pass

    asyncio.run(main())


class _Driver:
    """A scheduler's counts as the driver keeps them: `running` tasks, `jobs` agents."""

    def __init__(self, jobs: int, running: int) -> None:
        self.jobs = jobs
        self.running = running
        self.limits: list[int] = []
        self.aside = StepAside(lambda: self.jobs, lambda: self.running, self.changed)

    def changed(self) -> None:
        self.limits.append(self.aside.limit())


def test_a_task_aside_lends_its_slot_and_steps_back_when_one_is_free() -> None:
    async def main() -> None:
        d = _Driver(jobs=2, running=2)
        gate = asyncio.Event()
        back = asyncio.Event()

        async def rerun() -> None:
            async with d.aside.while_waiting():
                await gate.wait()
            back.set()

        task = asyncio.ensure_future(rerun())
        await asyncio.sleep(0)
        assert d.aside.limit() == 3  # lent: a ready task may start in it
        d.running = 3  # ... and did
        gate.set()
        await asyncio.sleep(0.01)
        assert not back.is_set()  # three agents would run: it waits in line
        assert d.aside.limit() == 3  # still lent, so nothing new starts meanwhile
        d.running = 2  # the task started in its slot ended
        d.aside.admit()
        await asyncio.wait_for(back.wait(), 1)
        assert d.aside.limit() == 2
        await task

    asyncio.run(main())


def test_steppers_back_are_admitted_in_turn_never_past_jobs() -> None:
    async def main() -> None:
        d = _Driver(jobs=1, running=1)
        gate = asyncio.Event()
        order: list[str] = []

        async def rerun(name: str) -> None:
            async with d.aside.while_waiting():
                await gate.wait()
            order.append(name)

        d.running = 2  # two re-runs, each aside
        first = asyncio.ensure_future(rerun("a"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(rerun("b"))
        await asyncio.sleep(0)
        assert d.aside.limit() == 3
        gate.set()  # both lanes free: no agent runs, one slot
        await asyncio.sleep(0.01)
        assert order == ["a"]  # the first back takes it at once; "b" waits in line
        assert d.aside.limit() == 2
        d.aside.admit()  # "a" runs its agent now: no room for "b"
        await asyncio.sleep(0.01)
        assert order == ["a"]
        d.running = 1  # "a" ended
        d.aside.admit()
        await asyncio.wait_for(asyncio.gather(first, second), 1)
        assert order == ["a", "b"]

    asyncio.run(main())


def test_one_stepping_aside_lets_one_in_line_back_at_once() -> None:
    """Two rate-limited tasks at `-j 1`: "a" waits, its wait ends while "c" still runs
    its agent (so "a" is in line); then "c" steps aside too. The slot "c" freed was
    handed to nobody, "c" queued behind "a" when its own wait ended, and the run hung."""

    async def main() -> None:
        d = _Driver(jobs=1, running=2)  # "a" and "c" both counted as running
        a_gate, c_gate = asyncio.Event(), asyncio.Event()
        order: list[str] = []

        async def waits(name: str, gate: asyncio.Event) -> None:
            async with d.aside.while_waiting():
                await gate.wait()
            order.append(name)

        a = asyncio.ensure_future(waits("a", a_gate))
        await asyncio.sleep(0)
        a_gate.set()  # "a" is back while "c" runs its agent: in line
        await asyncio.sleep(0.01)
        assert order == []
        c = asyncio.ensure_future(waits("c", c_gate))  # "c" is limited and steps aside
        await asyncio.wait_for(a, 1)  # ... and "a" takes the slot it freed
        assert order == ["a"]
        c_gate.set()  # "c" is back while "a" runs: it waits its turn
        await asyncio.sleep(0.01)
        assert order == ["a"]
        d.running = 1  # "a" ended
        d.aside.admit()
        await asyncio.wait_for(c, 1)
        assert order == ["a", "c"]

    asyncio.run(main())


def test_a_task_cancelled_in_line_gives_back_what_it_lent() -> None:
    async def main() -> None:
        d = _Driver(jobs=1, running=2)

        async def rerun() -> None:
            async with d.aside.while_waiting():
                pass  # its lane was free by then: straight back in line

        task = asyncio.ensure_future(rerun())
        await asyncio.sleep(0.01)
        assert d.aside.limit() == 2  # in line for a slot: still lent
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert d.aside.limit() == 1 and d.limits[-1] == 1

    asyncio.run(main())


def test_a_lane_just_released_to_a_waiter_is_still_busy() -> None:
    """Between a release and the next holder's wake-up the lock reads unlocked, yet a
    newcomer waits behind that holder. Read as free, a re-run kept its job slot while
    it waited, and with jobs lowered to 1 the run hung with no agent running."""

    async def main() -> None:
        lanes = FileLanes()
        release = asyncio.Event()

        async def first() -> None:
            async with lanes.hold(["f"]):
                await release.wait()

        async def second() -> None:
            async with lanes.hold(["f"]):
                await asyncio.sleep(0.01)

        tasks = [asyncio.ensure_future(first())]
        await asyncio.sleep(0)
        tasks.append(asyncio.ensure_future(second()))
        await asyncio.sleep(0)
        assert lanes.busy(["f"]) and not lanes.busy(["g"])
        release.set()
        await asyncio.sleep(0)  # `first` releases; `second` is woken, has not run yet
        assert lanes.busy(["f"])
        await asyncio.gather(*tasks)
        assert not lanes.busy(["f"])

    asyncio.run(main())
