"""aider, the AI pair programmer (`aider --message-file`).

Invocation: ``aider --message-file <attempt>/aider-message.md --yes-always
--no-auto-commits --no-gitignore --no-pretty --no-stream --chat-history-file ...
--input-history-file ... [--model M]``. aider reads its one message from that file
(role instructions first, then the prompt), does it and exits; standard input is
empty, so an unexpected question gets end-of-file instead of hanging.

Why these flags: ``--yes-always`` answers aider's confirmations (aider 0.59 renamed
``--yes`` to it); ``--no-auto-commits`` leaves committing to plait; ``--no-gitignore``
stops aider adding ``.aider*`` to ``.gitignore`` (a write outside most scopes); the
history files go to the attempt directory instead of the workspace; ``--no-stream``
makes aider's cost line exact. ``read`` adds ``--dry-run``: aider then edits nothing.
aider has no separate shell-command permission, so ``full`` is the same as ``edit``.

aider has no structured output. Its output is the text it printed. It reports
spending after each exchange as ``Tokens: 14k sent, 1.1k received. Cost: $0.06
message, $0.21 session.``: tokens are summed, the last session cost is the cost.
Rate limits: ``litellm.RateLimitError`` and "The API provider has rate limited you".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from plait import proc
from plait.agents.base import AgentRequest
from plait.agents.cli_agent import CliBackend, Invocation, Parsed, Parser, with_instructions
from plait.agents.ratelimit import compile_patterns
from plait.model import Permission

PASSTHROUGH_ENV: tuple[str, ...] = (
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "OLLAMA_API_BASE",
    "AIDER_*",
    "OPENAI_*",
    "ANTHROPIC_*",
)

_COMMON = ("--yes-always", "--no-auto-commits", "--no-gitignore")
PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: (*_COMMON, "--dry-run"),
    Permission.EDIT: _COMMON,
    Permission.FULL: _COMMON,
}

MESSAGE_FILE = "aider-message.md"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TOKENS = re.compile(r"Tokens:\s*(?P<body>.*?)\breceived\b", re.DOTALL)
_COUNT = re.compile(r"([\d.,]+)\s*([kKmM]?)\s+(sent|received|cache write|cache hit)")
_COST = re.compile(r"Cost:\s*\$([\d.,]+)\s*message,\s*\$([\d.,]+)\s*session")
_ERROR = re.compile(
    r"litellm\.\w*(?:Error|Exception)|The API provider has rate limited you|^Error:",
    re.MULTILINE,
)


def count(number: str, suffix: str) -> int:
    """``1.1k`` → 1100."""
    value = float(number.replace(",", ""))
    scale = {"k": 1e3, "m": 1e6}.get(suffix.lower(), 1.0)
    return round(value * scale)


class AiderParser(Parser):
    """aider's plain-text transcript."""

    def finish(self, done: proc.ProcResult) -> Parsed:
        parsed = self.parsed
        text = _ANSI.sub("", done.stdout).replace("\r\n", "\n")
        parsed.output = text.strip()
        parsed.found = bool(parsed.output)
        last_ok = -1
        for match in _TOKENS.finditer(text):
            last_ok = match.end()
            sent = received = 0
            for number, suffix, label in _COUNT.findall(match.group(0)):
                if label == "received":
                    received += count(number, suffix)
                else:  # sent, cache write, cache hit: all input
                    sent += count(number, suffix)
            parsed.add_tokens(sent, received)
            parsed.turns = (parsed.turns or 0) + 1
        costs = _COST.findall(text)
        if costs:
            parsed.cost_usd = float(costs[-1][1].replace(",", ""))
        errors = [m for m in _ERROR.finditer(text)]
        if errors:
            parsed.errors = [_line_at(text, m.start()) for m in errors]
            # An error after the last successful exchange means the work did not finish.
            if errors[-1].start() > last_ok:
                parsed.is_error = True
                parsed.error = parsed.errors[-1]
        return parsed


def _line_at(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return text[start : end if end >= 0 else len(text)].strip()[:500]


class AiderBackend(CliBackend):
    """aider, one message from a file, then exit."""

    name = "aider"
    executable = "aider"
    install_hint = "python -m pip install aider-install && aider-install"
    min_version = (0, 59, 0)
    min_version_reason = "for --yes-always (renamed from --yes in 0.59)"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    # Only aider's own words: its output is the model's text, which may say anything.
    rate_limit_patterns = compile_patterns(r"RateLimitError", r"rate limited you")
    result_hint = "some output"

    def invocation(self, request: AgentRequest) -> Invocation:
        agent = request.agent
        request.attempt_dir.mkdir(exist_ok=True)  # aider's own files live in the attempt's folder
        message_file = request.attempt_dir / MESSAGE_FILE
        message_file.write_text(with_instructions(agent, request.prompt), encoding="utf-8")
        argv = ["aider", "--message-file", str(message_file)]
        argv += self.permission_flags(agent)
        argv += [
            "--no-pretty",
            "--no-stream",
            "--chat-history-file",
            str(request.attempt_dir / "aider.chat.history.md"),
            "--input-history-file",
            str(request.attempt_dir / "aider.input.history"),
        ]
        if agent.model:
            argv += ["--model", agent.model]
        argv += agent.args
        return Invocation(tuple(argv), b"")

    def parser(self, request: AgentRequest) -> AiderParser:
        return AiderParser()


BACKEND = AiderBackend()
