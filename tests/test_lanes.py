"""FileLanes: re-runs on one file take turns; on other files they run side by side."""

from __future__ import annotations

import asyncio

import pytest

from plait.lanes import FileLanes


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
