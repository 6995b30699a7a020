"""plait.proc: real subprocesses, hostile and broken programs, and the kills."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from plait import proc

AGENTS = Path(__file__).parent / "agents"
PY = sys.executable


def marked_pids(marker: str) -> list[int]:
    """Live processes carrying PLAIT_MARKER=<marker> (an independent /proc scan)."""
    needle = f"PLAIT_MARKER={marker}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            entries = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in entries:
            found.append(int(name))
    return found


def wait_none_marked(marker: str, within_s: float = 3.0) -> list[int]:
    """Marked processes still alive after `within_s` (a SIGKILLed one takes a moment)."""
    deadline = time.monotonic() + within_s
    while (left := marked_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def env() -> dict[str, str]:
    return proc.child_env({"PLAIT_TASK_ID": "t"})


def run(argv: list[str], tmp_path: Path, **kwargs: object) -> proc.ProcResult:
    kwargs.setdefault("stdin", None)
    kwargs.setdefault("env", env())
    kwargs.setdefault("log_path", tmp_path / "agent.log")
    return asyncio.run(proc.run_process(argv, cwd=tmp_path, **kwargs))  # type: ignore[arg-type]


def marker() -> str:
    return f"test/{uuid.uuid4().hex}/1"


# --- the environment -----------------------------------------------------------------


def test_child_env_is_minimal() -> None:
    base = {
        "PATH": "/bin",
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "SECRET_TOKEN": "s3cret",
        "GIT_DIR": "/repo/.git",
        "GIT_INDEX_FILE": "/repo/.git/index",
        "AWS_SECRET_ACCESS_KEY": "k",
        "ANTHROPIC_API_KEY": "a",
        "ANTHROPIC_BASE_URL": "u",
        "OPENAI_API_KEY": "o",
    }
    got = proc.child_env(
        {"PLAIT_RUN_ID": "r1", "PLAIT_TASK_ID": "t"},
        extra={"FOO": "bar", "PLAIT_TASK_ID": "hijack", "GIT_WORK_TREE": "/x", "PATH": "/opt"},
        passthrough=("ANTHROPIC_*", "OPENAI_API_KEY", "GIT_DIR", "GIT_CONFIG_KEY_0"),
        base=base,
    )
    assert got == {
        "PATH": "/opt",  # the plan's env may override the allowlist
        "HOME": "/home/u",
        "LANG": "C.UTF-8",
        "ANTHROPIC_API_KEY": "a",
        "ANTHROPIC_BASE_URL": "u",
        "OPENAI_API_KEY": "o",
        "FOO": "bar",
        "PLAIT_RUN_ID": "r1",
        "PLAIT_TASK_ID": "t",  # but not plait's own variables
    }


def test_child_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    monkeypatch.setenv("GIT_DIR", "/somewhere/.git")
    monkeypatch.setenv("TZ", "UTC")
    got = proc.child_env({}, extra={proc.MARKER_VAR: "forged"})
    assert got["TZ"] == "UTC" and got["PATH"] == os.environ["PATH"]
    assert "SECRET_TOKEN" not in got and "GIT_DIR" not in got and proc.MARKER_VAR not in got


def test_child_sees_exactly_the_environment_given(tmp_path: Path) -> None:
    mark = marker()
    res = run(
        [PY, "-c", "import os, json; print(json.dumps(dict(os.environ)))"],
        tmp_path,
        env={"PATH": os.environ["PATH"], "PLAIT_TASK_ID": "t"},
        marker=mark,
    )
    import json

    seen = json.loads(res.stdout)
    seen.pop("LC_CTYPE", None)  # Python's own UTF-8 coercion may add it
    assert seen == {"PATH": os.environ["PATH"], "PLAIT_TASK_ID": "t", "PLAIT_MARKER": mark}


# --- output, log, stdin --------------------------------------------------------------


def test_stdout_and_stderr_never_share_a_line_in_the_log(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "sys.stdout.write('partial'); sys.stdout.flush(); time.sleep(0.3)\n"
        "print('complaint', file=sys.stderr, flush=True)\n"
    )
    res = run([PY, "-c", script], tmp_path)
    assert res.returncode == 0
    log = (tmp_path / "agent.log").read_text()
    assert "partial\ncomplaint\n" in log


def test_output_is_captured_logged_and_streamed_by_line(tmp_path: Path) -> None:
    lines: list[str] = []
    # The pause lets plait read stderr before stdout goes on: two pipes have no
    # order of their own.
    script = (
        "import sys, time\n"
        "print('one', flush=True)\n"
        "print('oops', file=sys.stderr, flush=True)\n"
        "time.sleep(0.3)\n"
        "sys.stdout.write('two\\r\\nthree')\n"
    )
    res = run([PY, "-c", script], tmp_path, on_line=lines.append)
    assert res.returncode == 0 and res.signal is None and not res.timed_out
    assert res.stdout == "one\ntwo\r\nthree"
    assert lines == ["one", "two", "three"]
    log = (tmp_path / "agent.log").read_text()
    assert "one\n" in log and "oops\n" in log and "three" in log
    assert res.tail(2) == "two\nthree"
    assert res.last_line() == "oops" and res.stderr_tail == "oops\n"  # stderr first
    assert res.log_path == tmp_path / "agent.log"


def test_stdin_reaches_the_child_byte_exact(tmp_path: Path) -> None:
    prompt = ("héllo $(touch canary) `id`; rm -rf / \n-x {task} \"'\\\n" * 4000).encode()
    assert len(prompt) > 150_000
    res = run(
        [PY, "-c", "import sys; open('got', 'wb').write(sys.stdin.buffer.read())"],
        tmp_path,
        stdin=prompt,
    )
    assert res.returncode == 0
    assert (tmp_path / "got").read_bytes() == prompt
    assert not (tmp_path / "canary").exists()


def test_child_that_never_reads_a_big_stdin_does_not_deadlock(tmp_path: Path) -> None:
    started = time.monotonic()
    res = run(
        [PY, "-c", "import time; print('x' * 200_000); time.sleep(0.2)"],
        tmp_path,
        stdin=b"p" * 200_000,
        timeout_s=30,
    )
    assert res.returncode == 0 and not res.timed_out
    assert len(res.stdout) == 200_001
    assert time.monotonic() - started < 10


def test_no_stdin_means_dev_null(tmp_path: Path) -> None:
    res = run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"], tmp_path, stdin=None)
    assert res.stdout.strip() == "''"


def test_flood_is_capped_and_never_blocks(tmp_path: Path) -> None:
    """50 MB on stdout: the log stops at its cap, the loop stays responsive, memory bounded."""
    flood = "import os\nblock = b'z' * 65536\nfor _ in range(800): os.write(1, block)\n"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def main() -> tuple[proc.ProcResult, float]:
        worst_gap = 0.0
        stop = False

        async def ticker() -> None:
            nonlocal worst_gap
            last = time.monotonic()
            while not stop:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                worst_gap, last = max(worst_gap, now - last), now

        tick = asyncio.create_task(ticker())
        res = await proc.run_process(
            [PY, "-c", flood],
            cwd=tmp_path,
            env=env(),
            stdin=None,
            log_path=tmp_path / "agent.log",
            log_cap_bytes=1024 * 1024,
            stdout_cap_bytes=512 * 1024,
            timeout_s=60,
        )
        stop = True
        await tick
        return res, worst_gap

    res, worst_gap = asyncio.run(main())
    assert res.returncode == 0 and not res.timed_out
    assert res.stdout_truncated and len(res.stdout) == 512 * 1024
    assert res.log_truncated
    log = (tmp_path / "agent.log").read_bytes()
    assert 1024 * 1024 <= len(log) < 1024 * 1024 + 1000
    assert b"[plait] log truncated at 1048576 bytes" in log
    assert worst_gap < 1.0, f"the event loop stalled for {worst_gap:.2f}s"
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 40 * 1024, f"peak memory grew by {grown_kib} KiB for a 50 MB flood"


def test_stderr_lines_go_to_their_own_callback(tmp_path: Path) -> None:
    """The board shows a tool's latest words even when it writes only to stderr; the
    backend's parser (`on_line`) never sees them."""
    out: list[str] = []
    err: list[str] = []
    script = (
        "import sys\nsys.stderr.write('compiling\\nlinking\\r\\nno newline at end')\n"
        "print('result')\n"
    )
    res = run([PY, "-c", script], tmp_path, on_line=out.append, on_stderr_line=err.append)
    assert res.returncode == 0
    assert out == ["result"]
    assert err == ["compiling", "linking", "no newline at end"]


def test_a_broken_on_line_callback_does_not_break_the_run(tmp_path: Path) -> None:
    def explode(line: str) -> None:
        raise RuntimeError("board broke")

    res = run([PY, "-c", "print('a'); print('b')"], tmp_path, on_line=explode)
    assert res.returncode == 0 and res.stdout == "a\nb\n"
    assert "on_line callback failed" in (tmp_path / "agent.log").read_text()


# --- how programs end ----------------------------------------------------------------


def test_nonzero_exit(tmp_path: Path) -> None:
    res = run([PY, "-c", "import sys; print('bad input', file=sys.stderr); sys.exit(3)"], tmp_path)
    assert res.returncode == 3 and res.signal is None and not res.timed_out
    assert res.last_line() == "bad input"
    quiet = run([PY, "-c", "print('only stdout'); print('  ')"], tmp_path)
    assert quiet.last_line() == "only stdout"


def test_killed_by_a_signal(tmp_path: Path) -> None:
    res = run([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"], tmp_path)
    assert res.returncode is None and res.signal == signal.SIGSEGV and not res.timed_out


def test_exit_zero_doing_nothing(tmp_path: Path) -> None:
    res = run(["true"], tmp_path, stdin=b"ignored")
    assert res.returncode == 0 and res.stdout == "" and not res.stdout_truncated
    assert not (tmp_path / "agent.log").exists()  # nothing printed, no file made


def test_hang_times_out_with_sigterm(tmp_path: Path) -> None:
    mark = marker()
    res = run([PY, "-c", "import time; time.sleep(60)"], tmp_path, timeout_s=0.5, marker=mark)
    assert res.timed_out and res.signal == signal.SIGTERM and res.returncode is None
    assert 0.4 < res.duration_s < 5
    assert "timed out after 0.5s" in (tmp_path / "agent.log").read_text()
    assert wait_none_marked(mark) == []


def test_sigterm_ignored_then_sigkill_after_grace(tmp_path: Path) -> None:
    script = (
        "import signal, subprocess, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen(['sleep', '60'])\n"  # a group member that would outlive it
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    mark = marker()
    res = run([PY, "-c", script], tmp_path, timeout_s=0.5, grace_s=0.5, marker=mark)
    assert res.timed_out and res.signal == signal.SIGKILL
    assert 0.9 < res.duration_s < 6
    log = (tmp_path / "agent.log").read_text()
    assert "still running 0.5s after SIGTERM: SIGKILL" in log
    assert wait_none_marked(mark) == []


def test_escaped_setsid_grandchild_is_found_and_killed(tmp_path: Path) -> None:
    mark = marker()
    started = time.monotonic()
    res = run([PY, str(AGENTS / "escape.py")], tmp_path, marker=mark, timeout_s=30)
    # The escaped sleep holds stdout open; plait must not wait for it.
    assert time.monotonic() - started < 10
    assert res.returncode == 0 and res.stdout == "left\n"
    assert res.escaped_killed == 1  # the setsid one; the group member died with the group
    assert wait_none_marked(mark) == []
    assert (
        "killed 1 process(es) that left the process group" in (tmp_path / "agent.log").read_text()
    )


def test_cancellation_kills_the_group_and_escapees(tmp_path: Path) -> None:
    mark = marker()
    script = (
        "import subprocess, time\n"
        "subprocess.Popen(['setsid', 'sleep', '60'])\n"
        "subprocess.Popen(['sleep', '60'])\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )

    async def main() -> None:
        up = asyncio.Event()
        task = asyncio.create_task(
            proc.run_process(
                [PY, "-c", script],
                cwd=tmp_path,
                env=env(),
                stdin=None,
                log_path=tmp_path / "agent.log",
                on_line=lambda line: up.set(),
                marker=mark,
            )
        )
        await asyncio.wait_for(up.wait(), 20)
        await asyncio.sleep(0.2)  # let the setsid child get going
        assert len(marked_pids(mark)) >= 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert wait_none_marked(mark) == []


def test_kill_marked_spares_others(tmp_path: Path) -> None:
    mine, other = marker(), marker()

    async def main() -> None:
        # stdin: the sleeper's lifeline; kill_marked is what ends it.
        procs = [
            await asyncio.create_subprocess_exec(
                "sleep", "60", env={**env(), proc.MARKER_VAR: m}, start_new_session=True
            )
            for m in (mine, mine, other)
        ]
        assert proc.kill_marked(mine) == 2
        codes = [await p.wait() for p in procs[:2]]
        assert codes == [-signal.SIGKILL, -signal.SIGKILL]
        assert procs[2].returncode is None
        assert proc.kill_marked(other[:-2], signal.SIGTERM) == 0  # exact by default
        assert proc.kill_marked(other[:-2], signal.SIGTERM, prefix=True) == 1
        assert await procs[2].wait() == -signal.SIGTERM

    asyncio.run(main())


# --- programs that cannot start ------------------------------------------------------


def test_missing_program_raises_program_not_found(tmp_path: Path) -> None:
    with pytest.raises(proc.ProgramNotFound, match="no-such-agent-xyz"):
        run(["no-such-agent-xyz", "--flag"], tmp_path)
    assert "no-such-agent-xyz" in (tmp_path / "agent.log").read_text()


def test_not_executable_raises_program_not_found(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(proc.ProgramNotFound):
        run([str(script)], tmp_path)


def test_bad_cwd_raises_spawn_error(tmp_path: Path) -> None:
    with pytest.raises(proc.SpawnError, match="cannot start"):
        asyncio.run(
            proc.run_process(
                ["true"],
                cwd=tmp_path / "missing",
                env=env(),
                stdin=None,
                log_path=tmp_path / "agent.log",
            )
        )
    assert issubclass(proc.SpawnError, OSError)


def test_no_file_descriptors_leak(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        run(["true"], tmp_path, stdin=b"x", marker=marker())
    with pytest.raises(proc.ProgramNotFound):
        run(["no-such-agent-xyz"], tmp_path, stdin=b"x")
    assert len(os.listdir("/proc/self/fd")) == before


# --- speed ---------------------------------------------------------------------------


def test_overhead_per_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Measure, don't assert tightly: 500 sequential `true` runs through run_process."""
    n = 500

    async def main(with_marker: bool) -> float:
        started = time.perf_counter()
        for i in range(n):
            await proc.run_process(
                ["true"],
                cwd=tmp_path,
                env=env(),
                stdin=b"",
                log_path=tmp_path / "true.log",
                marker=f"bench/{i}" if with_marker else None,
            )
        return (time.perf_counter() - started) / n * 1000

    plain = asyncio.run(main(False))
    marked = asyncio.run(main(True))
    with capsys.disabled():
        print(
            f"\nrun_process overhead: {plain:.2f} ms/process, "
            f"{marked:.2f} ms/process with the marker sweep ({n} sequential `true`)"
        )
    assert plain < 50 and marked < 50


def test_an_unwritable_log_is_reported_after_the_program_ran(tmp_path: Path) -> None:
    """The log is made with the first output, in a pipe callback: a failure there must
    not break the loop nor lose the output, and is raised once the program has ended."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write the log") as caught:
        run(["sh", "-c", "echo hello; echo more"], tmp_path, log_path=blocker / "x.log")
    assert caught.value.errno == errno.ENOTDIR


def test_a_missing_program_is_named_even_when_its_log_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(proc.ProgramNotFound):
        run(["no-such-agent-xyz"], tmp_path, log_path=blocker / "x.log")
