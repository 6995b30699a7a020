"""The backend registry and the command, python and fake backends, on real processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from plait import proc
from plait.agents import (
    BACKEND_NAMES,
    UnknownBackend,
    env_passthrough,
    fake,
    get_backend,
)
from plait.agents import command as command_mod
from plait.agents.base import AgentRequest, AgentResult, AttemptStatus, Usage
from plait.agents.command import CommandBackend
from plait.agents.python import PythonBackend
from plait.model import BACKENDS, Agent

AGENTS = Path(__file__).parent / "agents"
PY = sys.executable
RECORD = [PY, str(AGENTS / "record.py")]

HOSTILE = (
    "-rf --help\n"
    'it\'s "quoted" $(touch canary) `touch canary2` ; touch canary3 && echo; | > out\n'
    "${HOME} %s {} {task} {{ tasks.x.output }} \\ \t tabs\n"
    "non-ASCII: héllo wörld ✓ 日本語 🚀\n"
) + "padding line with $(touch canary4) and 'quotes'\n" * 4500


def request(
    tmp_path: Path,
    agent: Agent,
    *,
    prompt: str = "do it",
    timeout_s: float | None = 30,
    on_line: Any = None,
    attempt: int = 1,
    task_id: str = "build",
    extra: dict[str, str] | None = None,
) -> AgentRequest:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    attempt_stem = tmp_path / "runs" / run_id / f"{task_id}.{attempt}"
    plait_vars = {
        "PLAIT_RUN_ID": run_id,
        "PLAIT_TASK_ID": task_id,
        "PLAIT_ATTEMPT": str(attempt),
        "PLAIT_WORKSPACE": str(workspace),
        "PLAIT_PROMPT_FILE": f"{attempt_stem}.prompt.md",
        "PLAIT_OUTPUT_FILE": f"{attempt_stem}.output.txt",
        "PLAIT_PORT_BASE": "41000",
    }
    return AgentRequest(
        run_id=run_id,
        task_id=task_id,
        attempt=attempt,
        agent=agent,
        prompt=prompt,
        workspace=workspace,
        attempt_stem=attempt_stem,
        env=proc.child_env(plait_vars, extra or {}),
        timeout_s=timeout_s,
        on_line=on_line,
    )


def cmd(*argv: str) -> Agent:
    return Agent(name="scripted", backend="command", command=tuple(argv))


def script(code: str) -> Agent:
    return cmd(PY, "-c", code)


def run(req: AgentRequest, backend: Any = None) -> AgentResult:
    result: AgentResult = asyncio.run((backend or get_backend("command")).run(req))
    return result


def marker_of(req: AgentRequest) -> str:
    return f"{req.run_id}/{req.task_id}/{req.attempt}"


def marked_pids(marker: str) -> list[int]:
    needle = f"PLAIT_MARKER={marker}".encode()
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            if needle in Path(f"/proc/{name}/environ").read_bytes().split(b"\0"):
                found.append(int(name))
        except OSError:
            continue
    return found


def wait_none_marked(marker: str, within_s: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while (left := marked_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# --- the registry --------------------------------------------------------------------


def test_registry_returns_each_modules_backend() -> None:
    assert BACKEND_NAMES == BACKENDS
    assert get_backend("command") is command_mod.BACKEND
    assert get_backend("command").name == "command"
    assert get_backend("python").name == "python"
    assert get_backend("fake") is fake.BACKEND  # internal: not a plan-file name
    assert "fake" not in BACKEND_NAMES


def test_registry_rejects_unknown_names(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnknownBackend, match="unknown backend 'nope'"):
        get_backend("nope")
    with pytest.raises(ValueError):
        get_backend("base")  # a module in the package, but not a backend
    monkeypatch.setattr("plait.agents.BACKEND_NAMES", (*BACKENDS, "notyet"))
    with pytest.raises(UnknownBackend, match="not available"):
        get_backend("notyet")


def test_env_passthrough_reads_the_backends_declaration() -> None:
    class Needy:
        PASSTHROUGH_ENV = ("ANTHROPIC_*",)

    assert env_passthrough(get_backend("command")) == ()
    assert env_passthrough(Needy()) == ("ANTHROPIC_*",)  # type: ignore[arg-type]


# --- command: prompt, argv, environment ----------------------------------------------


def test_hostile_prompt_reaches_the_agent_byte_exact_and_never_a_shell(tmp_path: Path) -> None:
    assert len(HOSTILE.encode()) > 200_000
    req = request(tmp_path, cmd(*RECORD), prompt=HOSTILE)
    result = run(req)
    assert result.status is AttemptStatus.OK, result.error
    ws = req.workspace
    assert (ws / "stdin.bin").read_bytes() == HOSTILE.encode("utf-8")
    assert (ws / "promptfile.bin").read_bytes() == HOSTILE.encode("utf-8")
    assert req.prompt_file.read_bytes() == HOSTILE.encode("utf-8")
    assert json.loads((ws / "argv.json").read_text()) == []  # never in argv
    for root in (ws, tmp_path, Path.cwd()):
        assert not list(root.glob("canary*")), "something ran the prompt through a shell"


def test_placeholders_are_substituted_in_argv(tmp_path: Path) -> None:
    agent = Agent(
        name="scripted",
        command=(*RECORD, "{task}", "--run={run}", "{workspace}/x", "{prompt_file}"),
        args=("{attempt}", "{output_file}", "{unknown} {TASK} {{task}} $(x) ;", "-{task}-{task}"),
    )
    req = request(tmp_path, agent, attempt=2, task_id="api")
    assert run(req).ok
    argv = json.loads((req.workspace / "argv.json").read_text())
    assert argv == [
        "api",
        f"--run={req.run_id}",
        f"{req.workspace}/x",
        str(req.prompt_file),
        "2",
        str(req.output_file),
        "{unknown} {TASK} {api} $(x) ;",
        "-api-api",
    ]


def test_substitution_is_single_pass() -> None:
    values = {"task": "{run}", "run": "R"}
    assert command_mod.substitute("{task}/{run}", values) == "{run}/R"


def test_the_environment_is_minimal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "main" / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "index"))
    req = request(tmp_path, cmd(*RECORD), extra={"PLAN_VAR": "1", "GIT_WORK_TREE": "/"})
    assert run(req).ok
    seen = json.loads((req.workspace / "env.json").read_text())
    assert "SECRET_TOKEN" not in seen
    assert not {"GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"} & set(seen)
    assert seen["PLAN_VAR"] == "1" and seen["PATH"] == os.environ["PATH"]
    assert seen["PLAIT_TASK_ID"] == "build" and seen["PLAIT_RUN_ID"] == req.run_id
    assert seen["PLAIT_WORKSPACE"] == str(req.workspace)
    assert seen["PLAIT_MARKER"] == marker_of(req)
    allowed = set(proc.ENV_ALLOWLIST) | {"PLAN_VAR"}
    assert {k for k in seen if not k.startswith("PLAIT_")} <= allowed


def test_cwd_is_the_workspace(tmp_path: Path) -> None:
    req = request(tmp_path, script("import os; print(os.getcwd())"))
    assert run(req).output == str(req.workspace)


# --- command: output -----------------------------------------------------------------


def test_output_file_wins_over_stdout(tmp_path: Path) -> None:
    code = (
        "import os\n"
        "print('chatter')\n"
        "open(os.environ['PLAIT_OUTPUT_FILE'], 'w').write('  the answer\\n')\n"
    )
    req = request(tmp_path, script(code))
    req.attempt_stem.parent.mkdir(parents=True)
    req.output_file.write_text("stale from before")
    result = run(req)
    assert result.status is AttemptStatus.OK and result.output == "the answer"
    assert result.exit_code == 0 and result.duration_s > 0


def test_stdout_is_the_output_when_no_file(tmp_path: Path) -> None:
    lines: list[str] = []
    req = request(tmp_path, script("print('  line 1'); print('line 2  ')"), on_line=lines.append)
    result = run(req)
    assert result.output == "line 1\nline 2"
    assert lines == ["  line 1", "line 2  "]
    assert "line 2" in req.log_file.read_text()


def test_exit_zero_doing_nothing_is_ok_with_empty_output(tmp_path: Path) -> None:
    # `true` never reads the 200 KB prompt offered on its stdin: no deadlock, no error.
    result = run(request(tmp_path, cmd("true"), prompt=HOSTILE))
    assert result.status is AttemptStatus.OK and result.output == "" and result.error == ""


def test_flooding_stdout_is_capped(tmp_path: Path) -> None:
    code = "import os\nb = b'y' * 65536\nfor _ in range(800): os.write(1, b)\n"
    started = time.monotonic()
    result = run(request(tmp_path, script(code)))
    assert result.status is AttemptStatus.OK
    # cut, and saying so: a dependant's prompt must not take the first MiB for the whole
    assert result.output == "y" * command_mod.OUTPUT_CAP_BYTES + command_mod.CUT_NOTE
    assert time.monotonic() - started < 30


def test_an_output_file_over_the_cap_is_cut_saying_so(tmp_path: Path) -> None:
    cap = command_mod.OUTPUT_CAP_BYTES
    code = f"import os\nopen(os.environ['PLAIT_OUTPUT_FILE'], 'w').write('z' * {cap + 10})\n"
    result = run(request(tmp_path, script(code)))
    assert result.output == "z" * cap + command_mod.CUT_NOTE
    exact = f"import os\nopen(os.environ['PLAIT_OUTPUT_FILE'], 'w').write('z' * {cap})\n"
    assert run(request(tmp_path, script(exact))).output == "z" * cap  # not cut


# --- command: failures ---------------------------------------------------------------


def test_nonzero_exit_fails_with_the_last_line(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "print('error: no tests found', file=sys.stderr)\n"
        "print('working')\n"  # block-buffered: flushed at exit, after stderr
        "exit(4)\n"
    )
    result = run(request(tmp_path, script(code)))
    assert result.status is AttemptStatus.FAILED and result.exit_code == 4
    assert result.error == "exited with code 4: error: no tests found"


def test_killed_by_signal_is_crashed(tmp_path: Path) -> None:
    result = run(request(tmp_path, script("import os, signal; os.kill(os.getpid(), 11)")))
    assert result.status is AttemptStatus.CRASHED and result.exit_code is None
    assert result.error == "killed by SIGSEGV"


def test_hang_is_timeout(tmp_path: Path) -> None:
    req = request(tmp_path, script("import time; time.sleep(60)"), timeout_s=0.5)
    result = run(req)
    assert result.status is AttemptStatus.TIMEOUT
    assert result.error == "timed out after 0.5s (killed by SIGTERM)"
    assert 0.4 < result.duration_s < 5
    assert wait_none_marked(marker_of(req)) == []


def test_sigterm_ignored_is_killed_after_grace(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    req = request(tmp_path, script(code), timeout_s=0.5)
    result = run(req, CommandBackend(grace_s=0.5))
    assert result.status is AttemptStatus.TIMEOUT and "SIGKILL" in result.error
    assert 0.9 < result.duration_s < 6
    assert wait_none_marked(marker_of(req)) == []


def test_setsid_grandchild_does_not_survive(tmp_path: Path) -> None:
    req = request(tmp_path, cmd(PY, str(AGENTS / "escape.py")))
    result = run(req)
    assert result.status is AttemptStatus.OK and result.output == "left"
    assert wait_none_marked(marker_of(req)) == []


def test_missing_program_is_errored(tmp_path: Path) -> None:
    result = run(request(tmp_path, cmd("no-such-agent-xyz", "{task}")))
    assert result.status is AttemptStatus.ERRORED
    assert "no-such-agent-xyz" in result.error


def test_agent_without_command_is_errored(tmp_path: Path) -> None:
    result = run(request(tmp_path, Agent(name="empty", backend="command")))
    assert result.status is AttemptStatus.ERRORED and "no `command`" in result.error


def test_check(tmp_path: Path) -> None:
    backend = CommandBackend()
    not_exec = tmp_path / "agent.sh"
    not_exec.write_text("#!/bin/sh\n")
    assert backend.check(cmd("sh", "-c", "x")) is None
    assert backend.program(cmd("sh", "-c", "x")) == "sh"
    assert "not found on PATH" in (backend.check(cmd("no-such-agent-xyz")) or "")
    assert "not an executable" in (backend.check(cmd(str(not_exec))) or "")
    assert backend.check(cmd("./tools/agent.sh")) is None  # relative to a workspace
    assert backend.check(cmd("{workspace}/agent.sh")) is None
    assert "no `command`" in (backend.check(Agent(name="a")) or "")


# --- the python backend ----------------------------------------------------------------


def py_agent(fn: Any) -> Agent:
    return Agent(name="fn", backend="python", function=fn)


def test_python_function_returning_str(tmp_path: Path) -> None:
    seen: list[AgentRequest] = []

    def agent(req: AgentRequest) -> str:
        seen.append(req)
        (req.workspace / "made.txt").write_text(req.prompt)
        return "done: " + req.task_id

    req = request(tmp_path, py_agent(agent), prompt="hello")
    result = run(req, PythonBackend())
    assert result.status is AttemptStatus.OK and result.output == "done: build"
    assert (req.workspace / "made.txt").read_text() == "hello"
    assert seen[0] is req and seen[0].prompt_file.read_text() == "hello"


def test_python_function_returning_none_uses_output_file(tmp_path: Path) -> None:
    def agent(req: AgentRequest) -> None:
        req.output_file.write_text("from the file\n")

    assert run(request(tmp_path, py_agent(agent)), PythonBackend()).output == "from the file"
    assert run(request(tmp_path, py_agent(lambda r: None)), PythonBackend()).output == ""


def test_python_function_returning_agent_result(tmp_path: Path) -> None:
    given = AgentResult(AttemptStatus.RATE_LIMITED, error="slow down", retry_after_s=3.0)
    result = run(request(tmp_path, py_agent(lambda r: given)), PythonBackend())
    assert result.status is AttemptStatus.RATE_LIMITED and result.retry_after_s == 3.0
    assert result.duration_s > 0


def test_python_async_function(tmp_path: Path) -> None:
    async def agent(req: AgentRequest) -> str:
        await asyncio.sleep(0.01)
        return "async ok"

    assert run(request(tmp_path, py_agent(agent)), PythonBackend()).output == "async ok"


def test_python_exception_fails_with_traceback_in_log(tmp_path: Path) -> None:
    def agent(req: AgentRequest) -> str:
        raise KeyError("missing-thing")

    req = request(tmp_path, py_agent(agent))
    result = run(req, PythonBackend())
    assert result.status is AttemptStatus.FAILED and result.error == "KeyError: 'missing-thing'"
    log = req.log_file.read_text()
    assert "Traceback" in log and "in agent" in log and "missing-thing" in log


def test_python_bad_return_type_fails(tmp_path: Path) -> None:
    result = run(request(tmp_path, py_agent(lambda r: 42)), PythonBackend())
    assert result.status is AttemptStatus.FAILED and "returned int" in result.error


def test_python_timeout(tmp_path: Path) -> None:
    release = threading.Event()

    def stuck(req: AgentRequest) -> str:
        release.wait(10)
        return "late"

    async def stuck_async(req: AgentRequest) -> str:
        await asyncio.sleep(60)
        return "late"

    try:
        for fn in (stuck, stuck_async):
            req = request(tmp_path, py_agent(fn), timeout_s=0.3)
            started = time.monotonic()
            result = run(req, PythonBackend())
            assert result.status is AttemptStatus.TIMEOUT, fn
            assert time.monotonic() - started < 5
    finally:
        release.set()


def test_python_functions_run_in_parallel_beyond_the_default_executor(tmp_path: Path) -> None:
    def agent(req: AgentRequest) -> str:
        time.sleep(0.5)
        return req.task_id

    async def main() -> list[AgentResult]:
        reqs = [request(tmp_path, py_agent(agent), task_id=f"t{i}") for i in range(12)]
        return await asyncio.gather(*(PythonBackend().run(r) for r in reqs))

    started = time.monotonic()
    results = asyncio.run(main())
    assert [r.output for r in results] == [f"t{i}" for i in range(12)]
    assert time.monotonic() - started < 1.4  # 12 at once, not 6 + 6


def test_python_check(tmp_path: Path) -> None:
    assert PythonBackend().check(py_agent(lambda r: "x")) is None
    assert "no callable" in (PythonBackend().check(Agent(name="n", backend="python")) or "")
    result = run(request(tmp_path, Agent(name="n", backend="python")), PythonBackend())
    assert result.status is AttemptStatus.ERRORED


# --- the fake backend ------------------------------------------------------------------


def test_fake_follows_its_script_per_attempt(tmp_path: Path) -> None:
    backend = fake.FakeBackend(
        {
            "a": [
                fake.fail("boom"),
                fake.ok("done", files={"x/y.txt": "content"}, sleep_s=0.2, lines=("hi",)),
            ]
        }
    )
    agent = Agent(name="f", backend="fake")
    lines: list[str] = []
    first = run(request(tmp_path, agent, task_id="a", attempt=1), backend)
    assert first.status is AttemptStatus.FAILED and first.error == "boom"
    assert first.exit_code == 1
    assert not (tmp_path / "ws" / "x" / "y.txt").exists()
    req2 = request(tmp_path, agent, task_id="a", attempt=2, on_line=lines.append)
    second = run(req2, backend)
    assert second.status is AttemptStatus.OK and second.output == "done"
    assert (req2.workspace / "x" / "y.txt").read_text() == "content"
    assert second.duration_s >= 0.19 and lines == ["hi"]
    assert req2.log_file.read_text() == "hi\n" and req2.prompt_file.read_text() == "do it"
    third = run(request(tmp_path, agent, task_id="a", attempt=3), backend)
    assert third.output == "done"  # the last step repeats
    other = run(request(tmp_path, agent, task_id="other"), backend)
    assert other.status is AttemptStatus.OK and other.output == ""
    assert backend.attempts("a") == 3 and backend.attempts("other") == 1


def test_fake_timeouts_deletes_usage_and_raises(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "old.txt").write_text("x")
    backend = fake.FakeBackend(
        {
            "hang": fake.hang(),
            "tidy": fake.ok(files={"old.txt": None}, usage=Usage(input_tokens=5, cost_usd=0.1)),
            "broken": fake.FakeStep(raises=RuntimeError("backend bug")),
        }
    )
    agent = Agent(name="f", backend="fake")
    timed = run(request(tmp_path, agent, task_id="hang", timeout_s=0.2), backend)
    assert timed.status is AttemptStatus.TIMEOUT and 0.15 < timed.duration_s < 3
    tidy = run(request(tmp_path, agent, task_id="tidy"), backend)
    assert not (ws / "old.txt").exists() and tidy.usage.cost_usd == 0.1
    with pytest.raises(RuntimeError, match="backend bug"):
        run(request(tmp_path, agent, task_id="broken"), backend)
    with pytest.raises(ValueError, match="workspace-relative"):
        fake.ok(files={"../escape": "x"})


def test_fake_through_the_registry_and_concurrency(tmp_path: Path) -> None:
    agent = Agent(name="f", backend="fake")

    async def main() -> list[AgentResult]:
        reqs = [request(tmp_path, agent, task_id=t) for t in ("a", "b", "c")]
        return await asyncio.gather(*(get_backend("fake").run(r) for r in reqs))

    with fake.scripted({"a": fake.ok("A", sleep_s=0.2), "b": fake.ok("B", sleep_s=0.2)}) as b:
        results = asyncio.run(main())
    assert [r.output for r in results] == ["A", "B", ""]
    assert b.max_running == 3 and len(b.calls) == 3
    assert fake.active() is not b  # uninstalled after the block
