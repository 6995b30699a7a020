"""Google Gemini CLI (`gemini`), headless.

Invocation: ``gemini --output-format json --approval-mode <mode> [--model M]`` with
the prompt on standard input. With stdin not a terminal and no ``-p``, the CLI runs
non-interactively and takes stdin as the whole prompt (it reads up to 8 MB). The
role's instructions are prepended to the prompt.

``--output-format json`` (gemini-cli 0.6+) prints one JSON document at the end:
``response`` (the final answer), ``stats`` (``models.<name>.tokens.prompt`` /
``candidates`` / ``cached`` / ``thoughts``, ``models.<name>.api.totalRequests``),
``error`` (``type``, ``message``, ``code``) when it failed, and ``session_id`` in
recent releases. Exit codes: 0 success, 1 error, 42 bad input, 53 turn limit.
Gemini reports tokens, not cost.

In headless mode a tool call that would ask for approval is refused, so
``default`` lets the agent read but not write; ``auto_edit`` approves edits;
``yolo`` approves everything.

Folder trust: where the user enabled it, recent releases exit 55 ("Gemini CLI is not
running in a trusted directory") when the cwd is not in ``~/.gemini/trustedFolders.json``,
whatever the approval mode, and every plait workspace is a new folder. The workspace is
one plait made for this agent from the user's own repository, so the agent gets
``GEMINI_CLI_TRUST_WORKSPACE=true`` (read by every release with the gate; the
``--skip-trust`` flag is not in all of them).

Rate limits: a 429, ``RESOURCE_EXHAUSTED``, "Quota exceeded ...", and the CLI's own
``TerminalQuotaError`` / ``RetryableQuotaError``; Google's ``retryDelay`` or
"Please retry in 38.5s" gives the wait. They are read in the document's ``error``, on
stderr and in stdout outside the document, never in the rest of the document: its
``response`` is the model's answer, which may well be about quotas or 429s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from plait import proc
from plait.agents.base import AgentRequest
from plait.agents.cli_agent import CliBackend, Invocation
from plait.agents.cli_output import Parsed, Parser, as_int, as_text, without_json_documents
from plait.agents.ratelimit import compile_patterns
from plait.model import Permission

PASSTHROUGH_ENV: tuple[str, ...] = (
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GEMINI_MODEL",
    "GEMINI_*",
    "GOOGLE_*",
)

#: Trusts the workspace (see the module's docstring); no tool is approved by it.
TRUST_ENV: Mapping[str, str] = {"GEMINI_CLI_TRUST_WORKSPACE": "true"}

PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: ("--approval-mode", "default"),
    Permission.EDIT: ("--approval-mode", "auto_edit"),
    Permission.FULL: ("--approval-mode", "yolo"),
}


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object in `text` (which may hold other lines around it)."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return found
        # Only objects that start a line: a "{" inside a log message is not one.
        if start > 0 and text[start - 1] not in "\n\r":
            pos = start + 1
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            pos = start + 1
            continue
        if isinstance(value, dict):
            found = value
        pos = end


class GeminiParser(Parser):
    """The single JSON document of ``--output-format json``."""

    def finish(self, done: proc.ProcResult) -> Parsed:
        parsed = self.parsed
        # The document is printed over many lines, the model's answer among them: only
        # what is outside it (and stderr, where the CLI's own errors go) is the CLI's text.
        outside = without_json_documents(done.stdout).splitlines()[-40:]
        parsed.unparsed = "\n".join([*outside, *done.stderr_tail.splitlines()])
        # Errors may be printed as JSON on stderr: fall back to the log's tail.
        doc = last_json_object(done.stdout) or last_json_object(done.log_tail)
        if doc is None:
            return parsed
        session = doc.get("session_id")
        if isinstance(session, str):
            parsed.session_id = session
        response = doc.get("response")
        if isinstance(response, str):
            parsed.output = response
            parsed.found = True
        error = doc.get("error")
        if error:
            parsed.found = True
            parsed.is_error = True
            parsed.error = describe_error(error)
            parsed.errors.append(parsed.error)
        stats = doc.get("stats")
        if isinstance(stats, dict):
            read_stats(stats, parsed)
        return parsed


def describe_error(error: object) -> str:
    """``Type (code N): message`` from the ``error`` object."""
    if not isinstance(error, dict):
        return as_text(error)
    kind = error.get("type")
    code = error.get("code")
    head = str(kind) if kind else "error"
    if code is not None:
        head += f" (code {code})"
    message = as_text(error.get("message"))
    return f"{head}: {message}" if message else head


def read_stats(stats: dict[str, Any], parsed: Parsed) -> None:
    """Sum tokens and requests over every model the session used."""
    models = stats.get("models")
    if not isinstance(models, dict):
        return
    requests = 0
    for metrics in models.values():
        if not isinstance(metrics, dict):
            continue
        tokens = metrics.get("tokens")
        if isinstance(tokens, dict):
            # prompt already includes the cached part; thoughts are billed as output.
            parsed.add_tokens(
                as_int(tokens.get("prompt")),
                as_int(tokens.get("candidates")) + as_int(tokens.get("thoughts")),
            )
        api = metrics.get("api")
        if isinstance(api, dict):
            requests += as_int(api.get("totalRequests"))
    if requests:
        parsed.turns = requests


class GeminiBackend(CliBackend):
    """Gemini CLI, non-interactive with JSON output."""

    name = "gemini"
    executable = "gemini"
    install_hint = "npm install -g @google/gemini-cli"
    min_version = (0, 6, 0)
    min_version_reason = "for --output-format json (and --approval-mode)"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    rate_limit_patterns = compile_patterns(
        r"\b429\b",
        r"RESOURCE_EXHAUSTED",
        r"quota",
        r"rate[ _-]?limit",
        r"too many requests",
        r"(?:Terminal|Retryable)QuotaError",
    )
    result_hint = "a JSON object with `response`"

    def invocation(self, request: AgentRequest) -> Invocation:
        piped = self.piped_invocation(request, ("gemini", "--output-format", "json"))
        if not request.in_plait_worktree:  # the user's own checkout: their trust applies
            return piped
        return replace(piped, env={**piped.env, **TRUST_ENV})

    def parser(self, request: AgentRequest) -> GeminiParser:
        return GeminiParser()


BACKEND = GeminiBackend()
