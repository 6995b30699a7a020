"""opencode (`opencode run`), the open-source coding agent.

Invocation: ``opencode run --format json --agent <plan|build> [--model provider/model]``
with the prompt on standard input (``run`` appends piped stdin to its message; with
no message argument, stdin is the whole prompt). The role's instructions are prepended.

``--format json`` prints one event per line, each with ``type``, ``timestamp``,
``sessionID`` and a ``part``: ``text`` (``part.text``, ``part.messageID``; the texts
of the last assistant message are the final message), ``tool_use``, ``step_start``,
``step_finish`` (``part.tokens``: ``input``, ``output``, ``reasoning``,
``cache.read``/``cache.write``; ``part.cost`` in USD, as opencode computes it from
its model price list), and ``error`` (``error.name``, ``error.data.message``).

Permissions: opencode's ``plan`` agent may not edit; its default ``build`` agent may
edit and run commands (any permission rule set to "ask" is refused in ``run``, which
cannot ask), so ``edit`` and ``full`` both use ``build``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from plait import proc
from plait.agents.base import AgentRequest
from plait.agents.cli_agent import CliBackend, Invocation
from plait.agents.cli_output import JsonLinesParser, Parsed, as_float, as_int, as_text
from plait.agents.ratelimit import compile_patterns
from plait.model import Permission

PASSTHROUGH_ENV: tuple[str, ...] = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "XAI_API_KEY",
    "OPENCODE_CONFIG",
    "OPENCODE_*",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
)

PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: ("--agent", "plan"),
    Permission.EDIT: ("--agent", "build"),
    Permission.FULL: ("--agent", "build"),
}


class OpencodeParser(JsonLinesParser):
    """`opencode run --format json` events."""

    def __init__(self) -> None:
        super().__init__()
        self.message_id: object = None
        self.texts: list[str] = []

    def event(self, obj: dict[str, Any]) -> None:
        parsed = self.parsed
        session = obj.get("sessionID")
        if isinstance(session, str) and session:
            parsed.session_id = session
        part = obj.get("part")
        part = part if isinstance(part, dict) else {}
        kind = obj.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                return
            if part.get("messageID") != self.message_id:
                # A new assistant message: only the last one is the answer.
                self.message_id = part.get("messageID")
                self.texts = []
            self.texts.append(text)
        elif kind == "step_finish":
            parsed.found = True
            parsed.turns = (parsed.turns or 0) + 1
            tokens = part.get("tokens")
            if isinstance(tokens, dict):
                cache = tokens.get("cache")
                cache = cache if isinstance(cache, dict) else {}
                parsed.add_tokens(
                    as_int(tokens.get("input"))
                    + as_int(cache.get("read"))
                    + as_int(cache.get("write")),
                    as_int(tokens.get("output")) + as_int(tokens.get("reasoning")),
                )
            cost = as_float(part.get("cost"))
            if cost is not None:
                parsed.cost_usd = (parsed.cost_usd or 0.0) + cost
        elif kind == "error":
            error = obj.get("error")
            detail = error.get("data") if isinstance(error, dict) else None
            message = as_text(detail) or as_text(error) or "error"
            parsed.is_error = True
            parsed.error = message
            # The whole object too: statusCode 429 and retry-after live in its data.
            parsed.errors.append(f"{message} {json.dumps(error)}")

    def finish(self, done: proc.ProcResult) -> Parsed:
        parsed = super().finish(done)
        parsed.output = "\n".join(t.strip() for t in self.texts if t.strip())
        if parsed.output:
            parsed.found = True
        return parsed


class OpencodeBackend(CliBackend):
    """opencode's non-interactive `run` command."""

    name = "opencode"
    REPORTS_COST = True
    executable = "opencode"
    install_hint = "npm install -g opencode-ai"
    min_version = (1, 0, 0)
    min_version_reason = "for `run --format json` events and --agent"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    rate_limit_patterns = compile_patterns(
        r"rate[ _-]?limit",
        r"\b429\b",
        r"too many requests",
        r"quota",
        r"usage limit",
    )
    result_hint = "a step_finish event"

    def invocation(self, request: AgentRequest) -> Invocation:
        return self.piped_invocation(request, ("opencode", "run", "--format", "json"))

    def parser(self, request: AgentRequest) -> OpencodeParser:
        return OpencodeParser()


BACKEND = OpencodeBackend()
