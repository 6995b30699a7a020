"""Cursor's agent CLI (`cursor-agent -p`).

Invocation: ``cursor-agent -p --output-format stream-json --trust [--mode ask |
--force] [--model M]`` with the prompt piped on standard input (print mode takes a
piped prompt when no prompt argument is given). The role's instructions are prepended.

``--trust``: in a folder it has not been told to trust, print mode prints "Workspace
Trust Required ... Pass --trust, --yolo, or -f if you trust this directory" and exits 0
(or waits on a prompt nobody answers), and every plait workspace is a new folder.
``--trust`` trusts the workspace, which plait made for this agent, and grants no tool
permission (that is ``--force``'s). Should the refusal show all the same, the attempt
fails saying so, never passes for a run that did nothing.

``stream-json`` prints NDJSON in Claude Code's shape: ``system``/``init``,
``assistant`` messages, and on success a terminal ``{"type": "result",
"subtype": "success", "is_error": false, "result": ..., "session_id": ...}``
(recent releases add ``usage`` with camelCase ``inputTokens``/``outputTokens``).
On failure the process exits non-zero, the stream may end without a result, and
the message goes to stderr. Cursor reports no cost.

Permissions: ``read`` runs in Ask mode (read-only); ``edit`` is print mode's
default (file writes allowed, shell commands not auto-approved); ``full`` adds
``--force``, which allows commands unless explicitly denied.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from plait import proc
from plait.agents.base import AgentRequest
from plait.agents.claude import StreamJsonParser
from plait.agents.cli_agent import CliBackend, Invocation
from plait.agents.cli_output import Parsed
from plait.agents.ratelimit import compile_patterns
from plait.model import Permission

PASSTHROUGH_ENV: tuple[str, ...] = ("CURSOR_API_KEY", "CURSOR_*")

PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: ("--mode", "ask"),
    Permission.EDIT: (),
    Permission.FULL: ("--force",),
}

#: The heading of the refusal to run in an untrusted folder.
TRUST_REFUSAL = "Workspace Trust Required"


class CursorParser(StreamJsonParser):
    """stream-json, and the plain-text refusal print mode gives instead in an untrusted folder."""

    def __init__(self, workspace: Path) -> None:
        super().__init__()
        self.workspace = workspace

    def finish(self, done: proc.ProcResult) -> Parsed:
        parsed = super().finish(done)
        if parsed.found:
            return parsed
        # Only plain lines: a JSON event may quote anything (a file, a tool's output).
        text = "\n".join((done.stdout, done.log_tail))
        plain = (x for x in text.splitlines() if not x.lstrip().startswith("{"))
        if any(TRUST_REFUSAL in line for line in plain):
            parsed.is_error = True
            parsed.error = (
                f"cursor-agent did nothing: {TRUST_REFUSAL} in {self.workspace}"
                " (it was passed --trust, which trusts the workspace; see the log)"
            )
        return parsed


class CursorBackend(CliBackend):
    """Cursor Agent in print mode."""

    name = "cursor"
    executable = "cursor-agent"
    install_hint = "curl https://cursor.com/install -fsS | bash"
    #: Versions are dates. Piped-stdin prompts with stream-json and --mode were
    #: verified against 2026.01.02; older builds were not.
    min_version = (2026, 1, 2)
    min_version_reason = "for a piped prompt with --output-format stream-json and --mode"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    rate_limit_patterns = compile_patterns(
        r"rate[ _-]?limit",
        r"usage limit",
        r"\b429\b",
        r"too many requests",
    )
    result_hint = 'a {"type":"result"} line'

    def invocation(self, request: AgentRequest) -> Invocation:
        trust = ("--trust",) if request.in_plait_worktree else ()  # not the user's checkout
        return self.piped_invocation(
            request, ("cursor-agent", "-p", "--output-format", "stream-json", *trust)
        )

    def parser(self, request: AgentRequest) -> CursorParser:
        return CursorParser(request.workspace)


BACKEND = CursorBackend()
