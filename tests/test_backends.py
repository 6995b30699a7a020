"""The vendor-CLI backends, run for real against fake CLIs of the same names.

Each fake in tests/fakeclis/ records its argv, stdin, cwd and environment and prints
its real tool's documented output shapes (see tests/fakeclis/_fakecli.py). A tmp
`bin` with a `python3` link to this interpreter is first on PATH, then the fakes,
so the fakes' `#!/usr/bin/env python3` resolves fast and the same everywhere.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plait import proc
from plait.agents import cli_agent, env_passthrough, get_backend, versions
from plait.agents.aider import AiderParser
from plait.agents.base import AgentRequest, AgentResult, AttemptStatus, Usage
from plait.agents.claude import StreamJsonParser
from plait.agents.cli_agent import CliBackend
from plait.agents.ratelimit import compile_patterns, find_rate_limit, retry_after
from plait.model import Agent, Permission

FAKES = Path(__file__).parent / "fakeclis"
sys.path.insert(0, str(FAKES))
from _fakecli import long_text  # noqa: E402

R, E, F = Permission.READ, Permission.EDIT, Permission.FULL


@dataclass(frozen=True)
class Spec:
    """What one backend must pass and report, for the fake's canned outputs."""

    backend: str
    exe: str
    #: (permission, workspace, attempt_stem) → the expected argv after the program,
    #: for an agent with model "m-1" and no extra args.
    argv: Callable[[Permission, Path, Path], list[str]]
    usage: Usage
    session: str | None
    retry_after: float | None  # what the fake's rate-limit output announces
    prompt_in_file: bool = False  # aider: the prompt is in --message-file, stdin empty
    exact_output: bool = True  # aider's output is its whole transcript
    args_before: int = 0  # extra args go this many elements before the end (codex's "-")
    too_old: str = "0.0.1"


def a(words: str) -> list[str]:
    """An argv fragment written as one string (no element holds a space)."""
    return words.split()


def _aider_argv(p: Permission, ws: Path, ad: Path) -> list[str]:
    perm = a("--yes-always --no-auto-commits --no-gitignore") + (["--dry-run"] if p is R else [])
    history = ["--chat-history-file", str(ad / "aider.chat.history.md")]
    history += ["--input-history-file", str(ad / "aider.input.history")]
    message = ["--message-file", str(ad / "aider-message.md")]
    quiet = a("--no-check-update --no-show-release-notes --no-analytics")
    return [*message, *perm, *a("--no-pretty --no-stream"), *quiet, *history, *a("--model m-1")]


CLAUDE_PERMS = {
    R: a("--permission-mode plan"),
    E: a("--permission-mode acceptEdits"),
    F: a("--dangerously-skip-permissions"),
}
CODEX_SANDBOX = {R: "read-only", E: "workspace-write", F: "danger-full-access"}
GEMINI_MODES = {R: "default", E: "auto_edit", F: "yolo"}
CURSOR_PERMS = {R: a("--mode ask"), E: [], F: a("--force")}
OPENCODE_AGENTS = {R: "plan", E: "build", F: "build"}


def _amp_perms(p: Permission, ad: Path) -> list[str]:
    if p is R:
        return ["--settings-file", str(ad / "amp-settings.json")]
    return a("--dangerously-allow-all") if p is F else []


SPECS = [
    Spec(
        "claude",
        "claude",
        lambda p, ws, ad: [
            *a("-p --output-format stream-json --verbose"),
            *CLAUDE_PERMS[p],
            *a("--model m-1"),
        ],
        Usage(input_tokens=150, output_tokens=50, cost_usd=0.0123, turns=3),
        "sess-claude-1",
        3600.0,
    ),
    Spec(
        "codex",
        "codex",
        lambda p, ws, ad: [
            *a("exec --json --cd"),
            str(ws),
            *a("--skip-git-repo-check --sandbox"),
            CODEX_SANDBOX[p],
            *a("--model m-1 -"),
        ],
        Usage(input_tokens=1200, output_tokens=345, turns=1),
        "thr-codex-1",
        2 * 86400 + 3 * 3600 + 4 * 60,
        args_before=1,
    ),
    Spec(
        "gemini",
        "gemini",
        lambda p, ws, ad: [
            *a("--output-format json --approval-mode"),
            GEMINI_MODES[p],
            *a("--model m-1"),
        ],
        Usage(input_tokens=105, output_tokens=55, turns=3),
        "g-1",
        38.5,
    ),
    Spec(
        "aider",
        "aider",
        _aider_argv,
        # "sent" alone: 1.2k + 2k; the "1k cache hit" of the second exchange is part of it.
        Usage(input_tokens=3200, output_tokens=800, cost_usd=0.03, turns=2),
        None,
        None,  # aider prints no reset time ("Retrying in 0.2 seconds" is its own backoff)
        prompt_in_file=True,
        exact_output=False,
    ),
    Spec(
        "cursor",
        "cursor-agent",
        lambda p, ws, ad: [
            *a("-p --output-format stream-json --trust"),
            *CURSOR_PERMS[p],
            *a("--model m-1"),
        ],
        Usage(input_tokens=500, output_tokens=60),
        "cursor-chat-1",
        45 * 60.0,
        too_old="2025.08.25-896bbe1",
    ),
    Spec(
        "opencode",
        "opencode",
        lambda p, ws, ad: [*a("run --format json --agent"), OPENCODE_AGENTS[p], *a("--model m-1")],
        Usage(input_tokens=360, output_tokens=55, cost_usd=0.003, turns=2),
        "ses_fake1",
        30.0,
    ),
    Spec(
        "amp",
        "amp",
        lambda p, ws, ad: [*a("--execute --stream-json"), *_amp_perms(p, ad), *a("--mode m-1")],
        Usage(input_tokens=70, output_tokens=7, turns=2),
        "T-fake-amp-1",
        60.0,
        too_old="0.0.1750000000-gabc",
    ),
]
BY_NAME = {s.backend: s for s in SPECS}
ids = [s.backend for s in SPECS]


@pytest.fixture(autouse=True)
def fresh_versions() -> None:
    versions.forget_versions()


@pytest.fixture
def path_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """PATH: a python3 link, then the fakes, then the system (for /usr/bin/env)."""
    pybin = tmp_path / "pybin"
    pybin.mkdir()
    (pybin / "python3").symlink_to(sys.executable)
    path = os.pathsep.join([str(pybin), str(FAKES), "/usr/bin", "/bin"])
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("UNRELATED_SECRET", "hunter2")  # plait's own env: must not leak
    return path


class Rig:
    """Builds requests for one backend and runs them against its fake."""

    def __init__(self, tmp_path: Path, path: str, spec: Spec) -> None:
        self.spec = spec
        self.backend = get_backend(spec.backend)
        self.workspace = tmp_path / "ws"
        self.workspace.mkdir()
        self.attempt_stem = tmp_path / "runs" / "r1" / "t1.1"
        self.record = tmp_path / "record.json"
        self.canary = tmp_path / "canary"
        self.path = path

    def request(
        self,
        prompt: str = "Do the task.",
        mode: str = "success",
        timeout_s: float | None = 60.0,
        passthrough: tuple[str, ...] = ("UNRELATED_NOT_SET",),
        extra_env: dict[str, str] | None = None,
        **agent: Any,
    ) -> AgentRequest:
        agent.setdefault("model", "m-1")
        plait_vars = {
            "PLAIT_RUN_ID": "r1",
            "PLAIT_TASK_ID": "t1",
            "PLAIT_ATTEMPT": "1",
            "PLAIT_WORKSPACE": str(self.workspace),
            "PLAIT_PROMPT_FILE": f"{self.attempt_stem}.prompt.md",
            "PLAIT_OUTPUT_FILE": f"{self.attempt_stem}.output.txt",
            "PLAIT_PORT_BASE": "41000",
            "FAKECLI_RECORD": str(self.record),
            "FAKECLI_MODE": mode,
        }
        env = proc.child_env(plait_vars, extra_env or {}, passthrough=passthrough)
        return AgentRequest(
            run_id="r1",
            task_id="t1",
            attempt=1,
            agent=Agent(name="role", backend=self.spec.backend, **agent),
            prompt=prompt,
            workspace=self.workspace,
            attempt_stem=self.attempt_stem,
            env=env,
            timeout_s=timeout_s,
            in_plait_worktree=True,  # as in a run with worktrees
        )

    def run(self, request: AgentRequest) -> AgentResult:
        return asyncio.run(self.backend.run(request))

    def recorded(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.record.read_text(encoding="utf-8"))
        doc["stdin"] = base64.b64decode(doc["stdin_b64"])
        if "message_b64" in doc:
            doc["message"] = base64.b64decode(doc["message_b64"])
        return doc


@pytest.fixture(params=SPECS, ids=ids)
def rig(request: pytest.FixtureRequest, tmp_path: Path, path_env: str) -> Rig:
    return Rig(tmp_path, path_env, request.param)


# --- the invocation --------------------------------------------------------------


@pytest.mark.parametrize("permission", [R, E, F], ids=["read", "edit", "full"])
def test_exact_argv_per_permission(rig: Rig, permission: Permission) -> None:
    result = rig.run(rig.request(permission=permission))
    assert result.status is AttemptStatus.OK, result.error
    argv = rig.recorded()["argv"]
    assert argv == rig.spec.argv(permission, rig.workspace, rig.attempt_stem)
    assert "Do the task." not in " ".join(argv)


def test_agent_args_are_appended_verbatim(rig: Rig) -> None:
    extra = ("--extra-flag", "two words", "$(touch nothing)")
    rig.run(rig.request(args=extra))
    argv = rig.recorded()["argv"]
    expected = rig.spec.argv(E, rig.workspace, rig.attempt_stem)
    cut = len(expected) - rig.spec.args_before
    assert argv == [*expected[:cut], *extra, *expected[cut:]]


HOSTILE = (
    "-rf --dangerously-skip-permissions\n"
    "Ignore that. \"double\" 'single' `touch {canary}` $(touch {canary}) ${{HOME}} \\ \n"
    "non-ASCII: é ü 漢字 🙂 \t tabs\r\ncarriage returns\n"
)


def hostile_prompt(canary: Path) -> str:
    head = HOSTILE.format(canary=canary)
    body = "".join(f"line {i}: {head}" for i in range(1500))
    prompt = head + body
    assert len(prompt.encode("utf-8")) > 200_000  # past Linux's 128 KiB argv element limit
    return prompt


def test_big_hostile_prompt_arrives_intact(rig: Rig) -> None:
    prompt = hostile_prompt(rig.canary)
    result = rig.run(rig.request(prompt=prompt))
    assert result.status is AttemptStatus.OK, result.error
    seen = rig.recorded()
    delivered = seen["message"] if rig.spec.prompt_in_file else seen["stdin"]
    assert delivered == prompt.encode("utf-8")
    if rig.spec.prompt_in_file:
        assert seen["stdin"] == b""
    assert all(len(a.encode()) < 4096 for a in seen["argv"])
    assert not rig.canary.exists()
    assert seen["cwd"] == str(rig.workspace)


def test_environment_is_the_requests_only(rig: Rig) -> None:
    rig.run(rig.request())
    env = rig.recorded()["env"]
    assert env["PLAIT_TASK_ID"] == "t1"
    assert env["PLAIT_WORKSPACE"] == str(rig.workspace)
    assert env["PLAIT_MARKER"] == "r1/t1/1"
    assert "UNRELATED_SECRET" not in env
    assert os.environ["UNRELATED_SECRET"] == "hunter2"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.backend != "claude"], ids=ids[1:])
def test_instructions_are_prepended_to_the_prompt(
    spec: Spec, tmp_path: Path, path_env: str
) -> None:
    # (Claude takes them as --append-system-prompt: see the claude tests below.)
    rig = Rig(tmp_path, path_env, spec)
    rig.run(rig.request(prompt="THE PROMPT", instructions="You are careful."))
    seen = rig.recorded()
    delivered = (seen["message"] if rig.spec.prompt_in_file else seen["stdin"]).decode()
    assert delivered.startswith("You are careful.")
    assert delivered.endswith("THE PROMPT")


# --- reading the result ------------------------------------------------------------


def test_success_gives_final_message_usage_and_session(rig: Rig) -> None:
    result = rig.run(rig.request())
    assert result.status is AttemptStatus.OK, result.error
    if rig.spec.exact_output:
        assert result.output == "FINAL: done"
    else:
        assert "FINAL: done" in result.output
    assert result.usage == rig.spec.usage
    assert result.session_id == rig.spec.session
    assert result.exit_code == 0
    assert result.duration_s > 0


def test_error_result_with_exit_zero_fails(rig: Rig) -> None:
    result = rig.run(rig.request(mode="error"))
    assert result.status is AttemptStatus.FAILED
    assert result.exit_code == 0
    assert result.error


def test_rate_limit_is_recognised_with_retry_after(rig: Rig) -> None:
    result = rig.run(rig.request(mode="ratelimit"))
    assert result.status is AttemptStatus.RATE_LIMITED, result.error
    if rig.spec.retry_after is None:
        assert result.retry_after_s is None
    else:
        assert result.retry_after_s == pytest.approx(rig.spec.retry_after, abs=30)


def test_malformed_lines_are_skipped(rig: Rig) -> None:
    result = rig.run(rig.request(mode="malformed"))
    assert result.status is AttemptStatus.OK, result.error
    assert "FINAL: done" in result.output
    assert result.usage == rig.spec.usage


def test_final_message_longer_than_a_pipe_line_piece(rig: Rig) -> None:
    result = rig.run(rig.request(mode="long"))
    assert result.status is AttemptStatus.OK, result.error
    if rig.spec.exact_output:
        assert result.output == long_text()
    else:
        assert long_text() in result.output


def test_stdout_past_the_capture_cap_is_parsed_as_it_streamed(
    tmp_path: Path, path_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_agent, "STDOUT_CAP_BYTES", 4096)
    rig = Rig(tmp_path, path_env, BY_NAME["claude"])
    result = rig.run(rig.request(mode="long"))
    assert result.status is AttemptStatus.OK, result.error
    # Put back together from 64 KiB pieces (a character cut between two may be lost).
    assert result.output.startswith("FINAL: long answer")
    assert len(result.output) > len(long_text()) - 10
    assert result.usage.cost_usd == 0.0123


def test_timeout_kills_the_agent(tmp_path: Path, path_env: str) -> None:
    rig = Rig(tmp_path, path_env, BY_NAME["codex"])  # the timeout path is shared
    started = time.monotonic()
    result = rig.run(rig.request(mode="hang", timeout_s=0.5))
    assert result.status is AttemptStatus.TIMEOUT
    assert time.monotonic() - started < 30


# --- the version check -------------------------------------------------------------


def test_check_passes_for_a_current_version(rig: Rig) -> None:
    agent = rig.request().agent
    assert rig.backend.program(agent) == rig.spec.exe
    assert rig.backend.check(agent) is None


def test_check_names_the_missing_program(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    message = rig.backend.check(rig.request().agent)
    assert message is not None
    assert message.startswith(f"{rig.spec.exe} is not installed: ")
    backend = rig.backend
    assert isinstance(backend, CliBackend)
    assert backend.install_hint in message
    # The run reports it too, from the child's PATH, without starting anything.
    request = rig.request()
    request = replace(request, env={**request.env, "PATH": str(empty)})
    result = rig.run(request)
    assert result.status is AttemptStatus.ERRORED
    assert "is not installed" in result.error


def test_check_refuses_a_too_old_version(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKECLI_VERSION", rig.spec.too_old)
    message = rig.backend.check(rig.request().agent)
    assert message is not None
    assert "too old" in message
    backend = rig.backend
    assert isinstance(backend, CliBackend)
    assert versions.dotted(backend.min_version) in message


def test_backends_declare_their_passthrough_variables(rig: Rig) -> None:
    names = env_passthrough(rig.backend)
    module = importlib.import_module(f"plait.agents.{rig.spec.backend}")
    assert names == module.PASSTHROUGH_ENV
    assert names and all(n.isupper() or n.endswith("_*") for n in names)


def test_version_is_probed_once_per_program(path_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = get_backend("codex")
    agent = Agent(name="r", backend="codex")
    assert backend.check(agent) is None
    monkeypatch.setenv("FAKECLI_VERSION", "codex-cli 0.1.0")
    assert backend.check(agent) is None  # cached: the program was not asked again
    versions.forget_versions()
    assert backend.check(agent) is not None


# --- backend-specific behaviour ------------------------------------------------------


def claude_rig(tmp_path: Path, path_env: str) -> Rig:
    return Rig(tmp_path, path_env, BY_NAME["claude"])


def test_claude_instructions_and_tools_become_flags(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    rig.run(rig.request(prompt="P", instructions="-Be terse.", tools=("Read", "Edit")))
    seen = rig.recorded()
    argv = seen["argv"]
    # --tools is what restricts the set; --allowedTools only spares the questions.
    assert argv[argv.index("--tools") + 1] == "Read,Edit"
    assert argv[argv.index("--allowedTools") + 1] == "Read,Edit"
    assert argv[argv.index("--append-system-prompt") + 1] == "-Be terse."
    assert seen["stdin"] == b"P"


@pytest.mark.parametrize(
    ("tools", "available", "approved"),
    [
        (
            ("Read", "Bash(git diff *)", "Bash(git log *)", "mcp__github__create_issue"),
            "Read,Bash",  # bare built-in names only; MCP tools are not --tools' business
            "Read,Bash(git diff *),Bash(git log *),mcp__github__create_issue",
        ),
        (("mcp__github__create_issue",), "", "mcp__github__create_issue"),  # no built-in
    ],
)
def test_claude_profile_tools_restrict_the_builtin_set(
    tmp_path: Path, path_env: str, tools: tuple[str, ...], available: str, approved: str
) -> None:
    rig = claude_rig(tmp_path, path_env)
    result = rig.run(rig.request(tools=tools))
    assert result.status is AttemptStatus.OK, result.error
    argv = rig.recorded()["argv"]
    assert argv[argv.index("--tools") + 1] == available
    assert argv[argv.index("--allowedTools") + 1] == approved


def test_claude_without_profile_tools_keeps_the_default_set(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    rig.run(rig.request())
    argv = rig.recorded()["argv"]
    assert "--tools" not in argv and "--allowedTools" not in argv


def test_claude_as_root_gets_is_sandbox_when_the_user_set_it(
    tmp_path: Path, path_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = claude_rig(tmp_path, path_env)
    names = env_passthrough(rig.backend)
    as_root = {"FAKECLI_ROOT": "1"}  # the fake stands for Claude Code run as root
    refused = rig.run(rig.request(permission=F, passthrough=names, extra_env=as_root))
    assert refused.status is AttemptStatus.FAILED
    assert "root/sudo" in refused.error

    monkeypatch.setenv("IS_SANDBOX", "1")
    result = rig.run(rig.request(permission=F, passthrough=names, extra_env=as_root))
    assert result.status is AttemptStatus.OK, result.error
    assert rig.recorded()["env"]["IS_SANDBOX"] == "1"


def test_claude_refused_tool_calls_are_noted_on_a_success(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    result = rig.run(rig.request(mode="denied"))
    assert result.status is AttemptStatus.OK  # Claude says it is done: not a failure
    assert "2 tool call(s) were refused" in result.error
    assert "Edit /ws/src/app.py" in result.error
    assert "Bash make test" in result.error
    log = rig.request().log_file.read_text(encoding="utf-8")
    assert log.splitlines()[-1] == f"[plait] {result.error}"
    # No denials, no note.
    assert rig.run(rig.request()).error == ""


def test_claude_rejection_while_on_overage_is_not_a_rate_limit(
    tmp_path: Path, path_env: str
) -> None:
    rig = claude_rig(tmp_path, path_env)
    result = rig.run(rig.request(mode="overage_then_error"))
    assert result.status is AttemptStatus.FAILED
    assert "500 internal server error" in result.error


def test_claude_rate_limit_event_latest_state_counts() -> None:
    def event(status: str, **more: object) -> str:
        info = {"status": status, "resetsAt": int(time.time()) + 60, **more}
        return json.dumps({"type": "rate_limit_event", "rate_limit_info": info})

    parser = StreamJsonParser()
    parser.feed(event("rejected"))
    assert parser.parsed.rate_limit is not None
    parser.feed(event("allowed"))
    assert parser.parsed.rate_limit is None
    parser.feed(event("rejected", overageStatus="allowed", isUsingOverage=True))
    assert parser.parsed.rate_limit is None
    parser.feed(event("rejected", overageStatus="rejected", isUsingOverage=False))
    assert parser.parsed.rate_limit is not None


def test_gemini_trusts_the_workspace_plait_made(tmp_path: Path, path_env: str) -> None:
    rig = Rig(tmp_path, path_env, BY_NAME["gemini"])
    # A plan's env cannot take the trust away: without it gemini would exit 55.
    result = rig.run(rig.request(extra_env={"GEMINI_CLI_TRUST_WORKSPACE": "false"}))
    assert result.status is AttemptStatus.OK, result.error
    seen = rig.recorded()
    assert seen["env"]["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    assert "--skip-trust" not in seen["argv"]


@pytest.mark.parametrize("backend", ["gemini", "cursor"])
def test_the_users_own_checkout_is_not_trusted_for_them(
    tmp_path: Path, path_env: str, backend: str
) -> None:
    """isolation: none runs in the user's checkout (its .git a folder): their own folder
    trust decides, so gemini exits 55 and cursor refuses when it is not trusted."""
    rig = Rig(tmp_path, path_env, BY_NAME[backend])
    result = rig.run(dataclasses.replace(rig.request(), in_plait_worktree=False))
    assert result.status is not AttemptStatus.OK
    seen = rig.recorded()
    assert "GEMINI_CLI_TRUST_WORKSPACE" not in seen["env"] and "--trust" not in seen["argv"]


def test_cursor_trust_refusal_fails_clearly(tmp_path: Path, path_env: str) -> None:
    rig = Rig(tmp_path, path_env, BY_NAME["cursor"])
    result = rig.run(rig.request(mode="untrusted"))  # refuses even with --trust
    assert result.status is AttemptStatus.FAILED
    assert result.exit_code == 0
    assert "Workspace Trust Required" in result.error
    assert str(rig.workspace) in result.error


def aider_rig(tmp_path: Path, path_env: str) -> Rig:
    return Rig(tmp_path, path_env, BY_NAME["aider"])


@pytest.mark.parametrize("mode", ["success", "hang"])
def test_aider_repo_map_cache_is_removed_from_the_workspace(
    tmp_path: Path, path_env: str, mode: str
) -> None:
    rig = aider_rig(tmp_path, path_env)
    (rig.workspace / "kept.txt").write_text("work\n")
    result = rig.run(rig.request(mode=mode, timeout_s=None if mode == "success" else 1.0))
    if mode == "success":  # it did the task (an aider that upgraded itself did not)
        assert result.status is AttemptStatus.OK, result.error
        assert "FINAL: done" in result.output
    else:
        assert result.status is AttemptStatus.TIMEOUT
    assert rig.recorded()["cwd"] == str(rig.workspace)  # where the fake made its cache
    assert sorted(p.name for p in rig.workspace.iterdir()) == ["kept.txt"]


def test_aider_keeps_a_cache_that_was_there_before(tmp_path: Path, path_env: str) -> None:
    rig = aider_rig(tmp_path, path_env)
    older = rig.workspace / ".aider.tags.cache.v3"
    older.mkdir()
    (older / "cache.db").write_text("the user's")
    rig.run(rig.request())
    assert (older / "cache.db").read_text() == "the user's"
    assert not (rig.workspace / ".aider.tags.cache.v4").exists()


def test_aider_that_upgraded_itself_instead_of_working_fails() -> None:
    text = (
        "Newer aider version v0.86.2 is available.\n"
        "Run pip install? (Y)es/(N)o [Yes]: y\n"
        "Re-run aider to use new version.\n"
    )
    parsed = AiderParser().finish(_done(text))
    assert parsed.is_error
    assert "upgraded itself" in parsed.error


def test_proxy_and_ca_variables_reach_every_agent(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    proxy = {
        "HTTPS_PROXY": "http://proxy.corp:3128",
        "https_proxy": "http://proxy.corp:3128",
        "HTTP_PROXY": "http://proxy.corp:3128",
        "NO_PROXY": "localhost,.corp",
        "ALL_PROXY": "socks5://proxy.corp:1080",
        "SSL_CERT_FILE": str(tmp_path / "corp-ca.pem"),
        "NODE_EXTRA_CA_CERTS": str(tmp_path / "corp-ca.pem"),
        "REQUESTS_CA_BUNDLE": str(tmp_path / "corp-ca.pem"),
        "CURL_CA_BUNDLE": str(tmp_path / "corp-ca.pem"),
        "SSL_CERT_DIR": str(tmp_path),
    }
    for name, value in proxy.items():
        monkeypatch.setenv(name, value)
    rig.run(rig.request())
    env = rig.recorded()["env"]
    assert {name: env.get(name) for name in proxy} == proxy


def test_claude_long_instructions_go_to_stdin(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    instructions = "Be careful. " * 10_000  # 120 KB: too long for one argv element
    rig.run(rig.request(prompt="P", instructions=instructions))
    seen = rig.recorded()
    assert "--append-system-prompt" not in seen["argv"]
    assert seen["stdin"].decode().startswith("Be careful.")
    assert seen["stdin"].decode().endswith("P")


def test_claude_rate_limit_event_gives_reset(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    result = rig.run(rig.request(mode="ratelimit_event"))
    assert result.status is AttemptStatus.RATE_LIMITED
    assert result.retry_after_s == pytest.approx(7200, abs=30)


def test_claude_without_result_fails_clearly(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    result = rig.run(rig.request(mode="noresult"))
    assert result.status is AttemptStatus.FAILED
    assert "no result" in result.error
    assert result.output == "Working."  # the last thing it said


def test_a_message_about_rate_limits_is_not_a_rate_limit(tmp_path: Path, path_env: str) -> None:
    rig = claude_rig(tmp_path, path_env)
    result = rig.run(rig.request(mode="crash_mentioning_429"))
    assert result.status is AttemptStatus.FAILED
    assert result.exit_code == 1
    assert "ENOSPC" in result.error


def test_amp_read_permission_writes_a_rejecting_settings_file(
    tmp_path: Path, path_env: str
) -> None:
    rig = Rig(tmp_path, path_env, BY_NAME["amp"])
    rig.run(rig.request(permission=R))
    settings = json.loads((rig.attempt_stem / "amp-settings.json").read_text())
    rules = settings["amp.permissions"]
    assert {r["tool"] for r in rules} >= {"edit_file", "create_file", "Bash"}
    assert {r["action"] for r in rules} == {"reject"}


# --- pure parts ----------------------------------------------------------------------


def test_split_json_lines_are_put_back_together() -> None:
    event = {"type": "result", "is_error": False, "result": "x" * 200_000, "session_id": "s"}
    line = json.dumps(event)
    parser = StreamJsonParser()
    parser.feed('{"type":"assistant","message":{')  # a genuinely broken line first
    for i in range(0, len(line), 65536):  # how plait.proc hands over long lines
        parser.feed(line[i : i + 65536])
    parser.feed("")
    parsed = parser.finish(_done(""))
    assert parsed.found and parsed.output == "x" * 200_000
    assert parsed.skipped_lines == 1


def _done(stdout: str) -> proc.ProcResult:
    return proc.ProcResult(0, None, False, 0.1, stdout, False, False, 0, Path("log"))


NOW = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (f"Claude AI usage limit reached|{int(NOW.timestamp()) + 600}", 600),
        ('{"type":"usage_limit_reached","resets_in_seconds":13872}', 13872),
        (f'{{"resets_at": {int(NOW.timestamp()) + 90}}}', 90),
        ("try again in 2 days 17 hours 14 minutes.", 2 * 86400 + 17 * 3600 + 14 * 60),
        ("Please retry in 38.5s.", 38.5),
        ('"retryDelay": "21s"', 21),
        ("Retry-After: 30", 30),
        ("You've hit your limit · resets 3pm (UTC)", 2 * 3600),
        ("5-hour limit reached ∙ resets 11am (UTC)", 22 * 3600),
        ("You've hit your limit · resets 4:30pm (Europe/Paris)", 2.5 * 3600),
        ("You've hit your limit · resets Mar 3 at 1pm (UTC)", 2 * 86400),
        ("Retrying in 0.2 seconds...", None),
        ("plain failure", None),
    ],
)
def test_retry_after_readings(text: str, seconds: float | None) -> None:
    got = retry_after(text, NOW)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_find_rate_limit_takes_the_reset_from_another_line() -> None:
    patterns = compile_patterns(r"rate limited you")
    found = find_rate_limit(["The API provider has rate limited you.", "Retry-After: 12"], patterns)
    assert found is not None
    assert found.retry_after_s == 12
    assert find_rate_limit(["all fine"], patterns) is None
