"""Claude Code (`claude -p`), Anthropic's coding agent CLI.

Invocation: ``claude -p --output-format stream-json --verbose`` with the prompt on
standard input (``-p`` reads it from stdin when no prompt argument is given;
stream-json needs ``--verbose`` in print mode). The last line is a
``{"type": "result", ...}`` object carrying ``result``, ``is_error``, ``subtype``,
``session_id``, ``num_turns``, ``total_cost_usd`` and ``usage``. Claude can exit 0
after an error result, so both are read.

The role's instructions go in ``--append-system-prompt`` (prepended to the prompt
instead when longer than 64 KiB). A profile's ``tools`` restrict the agent to them:
``--tools`` sets which built-in tools exist at all (``--allowedTools`` only lets listed
tools run without asking, and leaves the others there); it takes bare built-in names
and does not touch MCP tools, so it gets the names without a rule's ``(...)`` part and
without the ``mcp__`` tools (none left: ``--tools ""``, no built-in tool), while
``--allowedTools`` keeps every entry as written, so the listed tools, MCP ones too,
run without a question print mode would refuse.

The result's ``permission_denials`` (``[{"tool_name", "tool_use_id", "tool_input"}]``)
lists the tool calls that were refused; a success can carry them (``is_error`` false),
so they become a note on the attempt: an agent refused its edits that then changed
nothing is otherwise a silent success.

Rate limits show up as an error result ("Claude AI usage limit reached|<epoch>",
"You've hit your limit · resets 3pm (Europe/Paris)", an API 429 rate_limit_error)
or as a ``rate_limit_event`` whose status is ``rejected``, unless its
``isUsingOverage`` says the run goes on with extra usage; the last such event counts.

As root, Claude Code refuses ``--dangerously-skip-permissions`` unless IS_SANDBOX=1
says the machine is a sandbox: it is passed on when the user set it.

The stream-json reader here is shared with Cursor and Amp, which print the same shape.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from plait import proc
from plait.agents.base import AgentRequest
from plait.agents.cli_agent import MAX_ARG_BYTES, CliBackend, Invocation, with_instructions
from plait.agents.cli_output import JsonLinesParser, Parsed, as_float, as_int, as_text
from plait.agents.ratelimit import RateLimit, compile_patterns, describe_reset
from plait.model import Permission

#: Exact names first (for an environment builder that takes names only), then the
#: prefixes that cover the rest (model overrides, feature flags).
PASSTHROUGH_ENV: tuple[str, ...] = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "ANTHROPIC_*",
    "CLAUDE_CODE_*",
    "CLAUDE_CONFIG_DIR",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "CLOUD_ML_REGION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "DISABLE_AUTOUPDATER",
    "IS_SANDBOX",
)

#: plan: read and answer, no edits. acceptEdits: file edits without asking (other
#: tools that would ask are refused in print mode). full: nothing is asked.
PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: ("--permission-mode", "plan"),
    Permission.EDIT: ("--permission-mode", "acceptEdits"),
    Permission.FULL: ("--dangerously-skip-permissions",),
}


class StreamJsonParser(JsonLinesParser):
    """Claude Code's stream-json, also printed by Cursor's and Amp's CLIs."""

    def __init__(self) -> None:
        super().__init__()
        self.last_text = ""

    def event(self, obj: dict[str, Any]) -> None:
        session = obj.get("session_id") or obj.get("sessionId")
        if isinstance(session, str) and session:
            self.parsed.session_id = session
        kind = obj.get("type")
        if kind == "assistant":
            text = message_text(obj.get("message"))
            if text:
                self.last_text = text
        elif kind == "result":
            read_result(obj, self.parsed)
        elif kind == "rate_limit_event":
            self.rate_limit_event(obj.get("rate_limit_info"))
        elif kind == "error":
            self.parsed.errors.append(as_text(obj.get("error") or obj.get("message")))

    def rate_limit_event(self, info: object) -> None:
        if not isinstance(info, dict):
            return
        # "allowed" and "allowed_warning" are progress notes; only "rejected" refuses,
        # and not when the run goes on with extra usage (overage). The latest event is
        # the state: a refusal followed by an allowance no longer holds.
        if info.get("status") != "rejected" or info.get("isUsingOverage") is True:
            self.parsed.rate_limit = None
            return
        resets = as_float(info.get("resetsAt"))
        delay = None if resets is None else max(0.0, resets - time.time())
        kind = info.get("rateLimitType") or "usage"
        words = "" if delay is None else describe_reset(delay)
        self.parsed.rate_limit = RateLimit(f"{kind} limit reached (rate_limit_event)", delay, words)

    def finish(self, done: proc.ProcResult) -> Parsed:
        parsed = super().finish(done)
        if not parsed.output and self.last_text:
            # No result line (killed, crashed): the last thing it said is still useful.
            parsed.output = self.last_text
        return parsed


def message_text(message: object) -> str:
    """The text blocks of an assistant message, joined."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "".join(p for p in parts if isinstance(p, str))


def read_result(obj: dict[str, Any], parsed: Parsed) -> None:
    """Fill `parsed` from a ``{"type": "result"}`` object."""
    parsed.found = True
    subtype = obj.get("subtype")
    result = obj.get("result")
    parsed.output = result if isinstance(result, str) else parsed.output
    parsed.is_error = obj.get("is_error") is True or (
        isinstance(subtype, str) and subtype.startswith("error")
    )
    if parsed.is_error:
        detail = as_text(obj.get("errors")) or as_text(obj.get("error"))
        parsed.error = detail or parsed.output or f"result subtype {subtype}"
        parsed.errors.append(parsed.error)
    denied = describe_denials(obj.get("permission_denials"))
    if denied:
        parsed.notes.append(denied)
    turns = obj.get("num_turns")
    if isinstance(turns, int) and not isinstance(turns, bool):
        parsed.turns = turns
    # Older releases called it cost_usd; total_cost_usd is the current name.
    cost = as_float(obj.get("total_cost_usd", obj.get("cost_usd")))
    if cost is not None:
        parsed.cost_usd = cost
    usage = obj.get("usage")
    if isinstance(usage, dict):
        # Input counts every prompt token: uncached, written to and read from the cache.
        parsed.input_tokens = sum(
            as_int(usage.get(k))
            for k in (
                "input_tokens",
                "cache_creation_input_tokens",
                "cache_read_input_tokens",
                "inputTokens",
                "cacheReadTokens",
                "cacheWriteTokens",
            )
        )
        parsed.output_tokens = as_int(usage.get("output_tokens")) + as_int(
            usage.get("outputTokens")
        )


def describe_denials(denials: object) -> str:
    """``refused 2 tool call(s): Edit src/app.py, Bash `make test```, or "" for none."""
    if not isinstance(denials, list) or not denials:
        return ""
    calls = []
    for denial in denials:
        if not isinstance(denial, dict):
            continue
        tool = denial.get("tool_name")
        name = tool if isinstance(tool, str) and tool else "a tool"
        given = denial.get("tool_input")
        target = ""
        if isinstance(given, dict):
            for key in ("file_path", "notebook_path", "path", "command", "url", "pattern"):
                value = given.get(key)
                if isinstance(value, str) and value:
                    target = value if len(value) <= 120 else value[:117] + "..."
                    break
        calls.append(f"{name} {target}" if target else name)
    if not calls:
        return ""
    return f"{len(calls)} tool call(s) were refused: {', '.join(calls)}"


def tool_flags(tools: tuple[str, ...]) -> list[str]:
    """``--tools`` and ``--allowedTools`` for a profile's `tools` (see the module's docstring)."""
    if not tools:
        return []
    builtin: list[str] = []
    for tool in tools:
        name = tool.split("(", 1)[0].strip()  # Bash(git *) -> Bash: --tools takes names
        if name and not name.startswith("mcp__") and name not in builtin:
            builtin.append(name)
    return ["--tools", ",".join(builtin), "--allowedTools", ",".join(tools)]


class ClaudeBackend(CliBackend):
    """Claude Code in print mode."""

    name = "claude"
    REPORTS_COST = True
    executable = "claude"
    install_hint = "npm install -g @anthropic-ai/claude-code"
    #: The 1.0 line is where print mode's stream-json (with --verbose), the
    #: --permission-mode values and total_cost_usd (formerly cost_usd) all hold.
    min_version = (1, 0, 0)
    min_version_reason = "for -p --output-format stream-json, --permission-mode and total_cost_usd"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    rate_limit_patterns = compile_patterns(
        r"usage limit reached",
        r"hit your (?:usage )?limit",
        r"limit reached\s*[·∙•|-]?\s*resets",
        r"rate[_ ]limit",
        r"\b429\b",
        r"overloaded_error",
    )
    result_hint = 'a {"type":"result"} line'

    def invocation(self, request: AgentRequest) -> Invocation:
        agent = request.agent
        argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
        argv += self.permission_flags(agent)
        if agent.model:
            argv += ["--model", agent.model]
        argv += tool_flags(agent.tools)
        prompt = request.prompt
        if agent.instructions:
            if len(agent.instructions.encode("utf-8")) <= MAX_ARG_BYTES:
                argv += ["--append-system-prompt", agent.instructions]
            else:
                prompt = with_instructions(agent, prompt)
        argv += agent.args
        return Invocation(tuple(argv), prompt.encode("utf-8"))

    def parser(self, request: AgentRequest) -> StreamJsonParser:
        return StreamJsonParser()


BACKEND = ClaudeBackend()
