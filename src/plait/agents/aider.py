"""aider, the AI pair programmer (`aider --message-file`).

Invocation: ``aider --message-file <attempt>/aider-message.md --yes-always
--no-auto-commits --no-gitignore --no-pretty --no-stream --no-check-update
--no-show-release-notes --no-analytics --chat-history-file ... --input-history-file ...
[--model M]``. aider reads its one message from that file (role instructions first,
then the prompt), does it and exits; standard input is empty, so an unexpected
question gets end-of-file instead of hanging.

Why these flags: ``--yes-always`` answers aider's confirmations (aider 0.59 renamed
``--yes`` to it); ``--no-auto-commits`` leaves committing to plait; ``--no-gitignore``
stops aider adding ``.aider*`` to ``.gitignore`` (a write outside most scopes); the
history files go to the attempt directory instead of the workspace; ``--no-stream``
makes aider's cost line exact. The three ``--no-`` flags after it keep ``--yes-always``
from answering questions that are not about the task: "Run pip install?" for aider's
own upgrade (aider then exits having done nothing else), the release notes of a new
version, and the opt-in to analytics. ``read`` adds ``--dry-run``: aider then edits
nothing. aider has no separate shell-command permission, so ``full`` is the same as
``edit``.

aider keeps a repo-map cache, ``.aider.tags.cache.v<N>/``, at the top of the git
repository, here the workspace. It is aider's, not work: plait stages everything and
refuses changes under ``.aider*`` (agent configuration), so a cache folder the attempt
made is removed when aider has ended.

aider has no structured output. Its output is the text it printed. It reports
spending after each exchange as ``Tokens: 14k sent, 1.1k cache write, 2k cache hit,
1.1k received. Cost: $0.06 message, $0.21 session.``: "sent" is the whole prompt
(aider adds the cache writes to it; the provider's prompt count already holds the
cache hits, litellm adds Anthropic's in), so input is "sent" alone; tokens are summed
over exchanges and the last session cost is the cost. Rate limits:
``litellm.RateLimitError`` and "The API provider has rate limited you".
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from plait import proc
from plait.agents.base import AgentRequest, AgentResult
from plait.agents.cli_agent import CliBackend, Invocation, with_instructions
from plait.agents.cli_output import Parsed, Parser
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

#: Questions aider would ask that are not about the task (see the module's docstring).
QUIET = ("--no-check-update", "--no-show-release-notes", "--no-analytics")

MESSAGE_FILE = "aider-message.md"

#: aider's repo-map cache at the top of the repository: ``.aider.tags.cache.v4`` today,
#: the suffix is aider's cache format version.
TAGS_CACHE_GLOB = ".aider.tags.cache*"

#: What aider prints once it has upgraded itself: it then exits without doing the task.
_UPGRADED = re.compile(r"^Re-run aider to use new version", re.MULTILINE)

log = logging.getLogger("plait.agents")

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
                elif label == "sent":  # the cache writes and hits are parts of it
                    sent += count(number, suffix)
            parsed.add_tokens(sent, received)
            parsed.turns = (parsed.turns or 0) + 1
        costs = _COST.findall(text)
        if costs:
            parsed.cost_usd = float(costs[-1][1].replace(",", ""))
        upgraded = _UPGRADED.search(text)
        if upgraded is not None and upgraded.start() > last_ok:
            parsed.is_error = True
            parsed.error = "aider upgraded itself and exited without doing the task"
            return parsed
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
    REPORTS_COST = True
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
            *QUIET,
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

    async def run(self, request: AgentRequest) -> AgentResult:
        """Run aider, then remove the repo-map cache it made in the workspace."""
        before = set(_tags_caches(request.workspace))
        try:
            return await super().run(request)
        finally:
            # Also after a timeout or a cancel: the commit that follows stages everything.
            made = [p for p in _tags_caches(request.workspace) if p not in before]
            if made:
                await asyncio.to_thread(_remove, made)


def _tags_caches(workspace: Path) -> list[Path]:
    """aider's repo-map cache folders at the top of `workspace`."""
    try:
        return [p for p in workspace.glob(TAGS_CACHE_GLOB) if p.is_dir() or p.is_symlink()]
    except OSError:
        return []


def _remove(paths: list[Path]) -> None:
    """Remove aider's caches; one that cannot be removed is left for the scope check."""
    for path in paths:
        try:
            if path.is_symlink():
                path.unlink()
            else:
                shutil.rmtree(path)
        except OSError as exc:
            log.warning("aider: cannot remove its repo-map cache %s: %s", path, exc)


BACKEND = AiderBackend()
