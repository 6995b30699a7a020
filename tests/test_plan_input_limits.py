"""A plan (or a profile) read from a pipe or a device is held to the same cap as a
file: `plait plan /dev/zero` and an endless pipe exit 2 with the usual "capped at"
PlanError, in bounded memory; a small plan through a pipe still works, and a FIFO
nobody writes does not hang.

The endless inputs run `plait` in a subprocess limited to 1 GiB of address space:
an unbounded read there ends in MemoryError (exit 1), never in the machine's swap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import agent_cmd, write_plan
from plait.errors import PlanError
from plait.planfile import MAX_PLAN_BYTES, load_plan, read_capped
from plait.profiles import MAX_PROFILE_BYTES, load_profile

#: Runs plait.cli.main(argv) with the address space capped: a bounded read fits easily.
LIMITED = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from plait.cli import main
sys.exit(main(sys.argv[1:]))
"""

#: The same for load_profile(argv[1]); exit 2 with the message on a PlanError.
LIMITED_PROFILE = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from pathlib import Path
from plait.errors import PlanError
from plait.profiles import load_profile
try:
    load_profile(Path(sys.argv[1]))
except PlanError as exc:
    print(exc.message, file=sys.stderr)
    sys.exit(2)
"""

PLAN = f"""\
version: 1
name: piped
agents:
  stamp:
    backend: command
    command: {json.dumps(agent_cmd("stamp.py"))}
tasks:
  one:
    agent: stamp
    prompt: write a file
    writes: ["one.txt"]
"""


def _limited(
    script: str, *argv: str, cwd: Path, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=cwd,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _capped(done: subprocess.CompletedProcess[str], shown: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert f"{shown}:1:1: " in done.stderr and "capped at 2,097,152 bytes" in done.stderr


def test_plan_from_dev_zero_is_capped(tmp_path: Path) -> None:
    _capped(_limited(LIMITED, "plan", "/dev/zero", cwd=tmp_path), "/dev/zero")


def test_plan_from_an_endless_pipe_is_capped(tmp_path: Path) -> None:
    # `plait plan <(yes 'a: b')`: a pipe that never ends, read through /dev/stdin.
    writer = subprocess.Popen(["yes", "a: b"], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None
        done = _limited(LIMITED, "plan", "/dev/stdin", cwd=tmp_path, stdin=writer.stdout.fileno())
    finally:
        writer.kill()
        writer.wait()
        assert writer.stdout is not None
        writer.stdout.close()
    _capped(done, "/dev/stdin")


def test_a_small_plan_through_a_slow_pipe_is_read_to_its_end(tmp_path: Path) -> None:
    """`plait plan <(cat plan.yaml)`: the writer may not have written yet when the
    plan is opened; the read waits for it instead of failing or seeing nothing."""
    plan = write_plan(tmp_path / "plan.yaml", PLAN)
    slow = f"import sys, time; time.sleep(1); sys.stdout.write(open({str(plan)!r}).read())"
    writer = subprocess.Popen([sys.executable, "-c", slow], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None
        done = _limited(LIMITED, "plan", "/dev/stdin", cwd=tmp_path, stdin=writer.stdout.fileno())
    finally:
        writer.wait(timeout=60)
        assert writer.stdout is not None
        writer.stdout.close()
    assert done.returncode == 0, done.stderr
    assert "one" in done.stdout


@pytest.mark.timeout(30)  # the bug this guards against is a read that never returns
def test_a_fifo_nobody_writes_is_an_empty_plan_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.yaml"
    os.mkfifo(fifo)
    with pytest.raises(PlanError, match="holds nothing"):
        load_plan(fifo)


def test_a_regular_plan_over_the_cap_still_says_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_PLAN_BYTES + 5) + b"\n")
    with pytest.raises(PlanError, match=f"is {MAX_PLAN_BYTES + 6:,} bytes; plan files are capped"):
        load_plan(big)


def test_read_capped_reads_at_most_one_byte_past_the_limit(tmp_path: Path) -> None:
    assert len(read_capped(Path("/dev/zero"), 1000)) == 1001
    small = tmp_path / "small"
    small.write_bytes(b"abc")
    assert read_capped(small, 3) == b"abc"
    with pytest.raises(ValueError, match="not a regular file"):
        read_capped(Path("/dev/zero"), 1000, regular_only=True)


def test_a_profile_linked_to_dev_zero_is_capped(tmp_path: Path) -> None:
    agents = tmp_path / ".plait" / "agents"
    agents.mkdir(parents=True)
    (agents / "endless.md").symlink_to("/dev/zero")
    done = _limited(LIMITED_PROFILE, str(agents / "endless.md"), cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert f"is larger than {MAX_PROFILE_BYTES:,} bytes" in done.stderr


def test_a_profile_at_the_cap_is_read_whole(tmp_path: Path) -> None:
    agents = tmp_path / ".plait" / "agents"
    agents.mkdir(parents=True)
    head = "---\ndescription: big\n---\n"
    body = "x" * (MAX_PROFILE_BYTES - len(head))
    (agents / "big.md").write_text(head + body)
    assert load_profile(agents / "big.md").instructions == body
    (agents / "over.md").write_text(head + body + "y")
    with pytest.raises(PlanError, match="is larger than"):
        load_profile(agents / "over.md")
