"""plait.procio: the attempt log, the shared epoll set, the pipes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from plait.procio import LogFile, Output, PipeReader, PipeWriter, watcher


def test_log_file_makes_its_folder_caps_output_and_keeps_notes(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "r" / "t" / "1" / "agent.log"
    log = LogFile(path, cap=10)
    log.write(b"0123456")
    log.write(b"789abc")  # past the cap: cut, one note
    log.write(b"more")  # dropped from the file, kept in the tail
    log.note("hello")
    log.close()
    log.note("after close: dropped")
    log.close()
    text = path.read_bytes()
    assert text.startswith(b"0123456789\n[plait] log truncated at 10 bytes")
    assert text.endswith(b"\n[plait] hello\n") and b"dropped" not in text
    assert log.truncated and bytes(log.tail) == b"0123456789abcmore"


def test_output_splits_lines_and_survives_a_broken_observer(tmp_path: Path) -> None:
    seen: list[str] = []

    def observer(line: str) -> None:
        seen.append(line)
        if line == "boom":
            raise RuntimeError("observer broke")

    log = LogFile(tmp_path / "agent.log", cap=1 << 20)
    out = Output(log, stdout_cap=5, on_line=observer)
    out.stdout_data(b"one\r\ntw")
    out.stderr_data(b"err\n")
    out.stdout_data(b"o\nboom\nlost\n")
    out.end_lines()
    log.close()
    assert seen == ["one", "two", "boom"]
    assert bytes(out.stdout) == b"one\r\n" and out.stdout_truncated
    assert bytes(out.stderr_tail) == b"err\n"
    assert b"on_line callback failed" in (tmp_path / "agent.log").read_bytes()


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_watcher_dispatches_and_closes_its_set_when_idle() -> None:
    async def main() -> tuple[bytes, int, int]:
        loop = asyncio.get_running_loop()
        watch = watcher(loop)
        assert watcher(loop) is watch  # one per loop
        before = fds()
        r1, w1 = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        r2, w2 = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        got = bytearray()
        readers = [PipeReader(watch, r1, got.extend), PipeReader(watch, r2, got.extend)]
        during = fds()  # the pipes and the epoll set
        PipeWriter(watch, w1, b"x" * 200_000)  # more than a pipe holds: written as it drains
        os.write(w2, b"y")
        os.close(w2)
        await asyncio.wait_for(asyncio.gather(*(r.eof for r in readers)), timeout=10)
        return bytes(got), during - before, fds() - before

    got, during, after = asyncio.run(main())
    assert got.count(b"x") == 200_000 and got.count(b"y") == 1
    assert during == 5 and after == 0  # 4 pipe ends + the set, then nothing left open
