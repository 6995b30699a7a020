"""OpenAI Codex CLI (`codex exec`).

Invocation: ``codex exec --json --cd <workspace> --skip-git-repo-check --sandbox <mode>
[--model M] -`` with the prompt on standard input (``-`` makes exec read it from
stdin). ``codex exec`` never asks for approval (it forces ``approval_policy=never``;
``--ask-for-approval`` is not an exec option), so the sandbox is the permission.
The role's instructions are prepended to the prompt.

``--json`` prints JSONL events (codex 0.46+; the older ``{"id","msg"}`` shape is
gone): ``thread.started`` (``thread_id``: the session), ``item.completed`` whose
``item.type`` is ``agent_message`` (its ``text``; the last one is the final
message), ``turn.completed`` (``usage``: ``input_tokens``, ``cached_input_tokens``
— part of the input —, ``output_tokens``), ``turn.failed`` (``error.message``) and
``error`` (``message``). Codex reports no cost.

Usage limits arrive as error events: "You've hit your usage limit ... try again in
2 days 3 hours", "... Try again at 2:57 PM." (a reset later today), "... or try again at
Nov 30th, 2026 8:05 PM." (another day; both in the user's local time), a 429
"usage_limit_reached" body with ``resets_in_seconds``, or "exceeded retry limit, last
status: 429 Too Many Requests".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plait.agents.base import AgentRequest
from plait.agents.cli_agent import CliBackend, Invocation, with_instructions
from plait.agents.cli_output import JsonLinesParser, as_int, as_text
from plait.agents.ratelimit import compile_patterns
from plait.model import Permission

PASSTHROUGH_ENV: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "CODEX_HOME",  # where auth.json (ChatGPT login) and config.toml live
    "CODEX_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "SSL_CERT_FILE",
    "CODEX_*",
)

#: The sandbox bounds what the agent's commands may touch; exec never asks.
PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: ("--sandbox", "read-only"),
    Permission.EDIT: ("--sandbox", "workspace-write"),
    Permission.FULL: ("--sandbox", "danger-full-access"),
}

_MESSAGE_ITEMS = ("agent_message", "assistant_message")  # the latter: codex 0.44-0.45


class CodexParser(JsonLinesParser):
    """`codex exec --json` events."""

    def event(self, obj: dict[str, Any]) -> None:
        parsed = self.parsed
        kind = obj.get("type")
        if kind == "thread.started":
            thread = obj.get("thread_id")
            if isinstance(thread, str):
                parsed.session_id = thread
        elif kind == "item.completed":
            item = obj.get("item")
            if not isinstance(item, dict):
                return
            item_type = item.get("type", item.get("item_type"))
            if item_type in _MESSAGE_ITEMS and isinstance(item.get("text"), str):
                parsed.output = item["text"]
            elif item_type == "error":
                parsed.errors.append(as_text(item.get("message")))
        elif kind == "turn.completed":
            parsed.found = True
            parsed.turns = (parsed.turns or 0) + 1
            usage = obj.get("usage")
            if isinstance(usage, dict):
                # cached_input_tokens are a part of input_tokens, not an addition.
                parsed.add_tokens(
                    as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens"))
                )
        elif kind == "turn.failed":
            parsed.found = True
            parsed.is_error = True
            parsed.error = as_text(obj.get("error")) or "turn failed"
            parsed.errors.append(parsed.error)
        elif kind == "error":
            # Also printed for retried stream errors; the turn events decide the outcome.
            parsed.errors.append(as_text(obj.get("message") or obj.get("error")))


class CodexBackend(CliBackend):
    """Codex CLI in exec mode."""

    name = "codex"
    executable = "codex"
    install_hint = "npm install -g @openai/codex"
    min_version = (0, 46, 0)
    min_version_reason = "for `codex exec --json` thread/turn/item events with agent_message"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    rate_limit_patterns = compile_patterns(
        r"usage limit",
        r"usage_limit_reached",
        r"rate[ _-]?limit",
        r"\b429\b",
        r"too many requests",
        r"quota exceeded",
    )
    result_hint = "a turn.completed event"

    def invocation(self, request: AgentRequest) -> Invocation:
        agent = request.agent
        argv = ["codex", "exec", "--json", "--cd", str(request.workspace), "--skip-git-repo-check"]
        argv += self.permission_flags(agent)
        if agent.model:
            argv += ["--model", agent.model]
        argv += agent.args
        argv.append("-")  # the prompt is on standard input
        message = with_instructions(agent, request.prompt)
        return Invocation(tuple(argv), message.encode("utf-8"))

    def parser(self, request: AgentRequest) -> CodexParser:
        return CodexParser()


BACKEND = CodexBackend()
