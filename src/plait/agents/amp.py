"""Amp (`amp --execute`), Sourcegraph's coding agent.

Invocation: ``amp --execute --stream-json [--mode M] [permission flags]`` with the
prompt on standard input (execute mode reads the prompt from stdin when no message
argument is given). The role's instructions are prepended.

``--stream-json`` prints Claude Code-compatible JSONL (``system``, ``assistant``,
``user``, and a final ``{"type": "result", "is_error", "result", "error",
"session_id", "num_turns", "usage"}``), read by the same parser as Claude's.

Amp chooses models by mode (``smart``, ``rush``, ``large``), so an agent's ``model``
becomes ``--mode``. Amp runs tools without asking by default, so ``edit`` passes
nothing; ``full`` adds ``--dangerously-allow-all`` (also allowing what a user's
settings would ask about); ``read`` gives Amp a settings file, written to the attempt
directory, whose ``amp.permissions`` reject the file-editing tools and the shell.
Note that ``--settings-file`` replaces the user's own settings file for that run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from plait.agents.base import AgentRequest
from plait.agents.claude import StreamJsonParser
from plait.agents.cli_agent import CliBackend, Invocation, with_instructions
from plait.agents.ratelimit import compile_patterns
from plait.model import Permission

PASSTHROUGH_ENV: tuple[str, ...] = ("AMP_API_KEY", "AMP_URL", "AMP_*")

PERMISSIONS: Mapping[Permission, tuple[str, ...]] = {
    Permission.READ: (),  # plus the read-only settings file, see `read_only_settings`
    Permission.EDIT: (),
    Permission.FULL: ("--dangerously-allow-all",),
}

#: Amp's tools that change files or run commands.
WRITING_TOOLS = ("edit_file", "create_file", "undo_edit", "Bash")
SETTINGS_FILE = "amp-settings.json"


def read_only_settings() -> dict[str, object]:
    """An Amp settings document that rejects every writing tool."""
    return {"amp.permissions": [{"tool": tool, "action": "reject"} for tool in WRITING_TOOLS]}


class AmpBackend(CliBackend):
    """Amp in execute mode."""

    name = "amp"
    executable = "amp"
    install_hint = "npm install -g @ampcode/cli (formerly @sourcegraph/amp)"
    #: Versions are 0.0.<unix time>-g<hash>; --stream-json replaced --format=jsonl
    #: after 0.0.1752148945.
    min_version = (0, 0, 1752148945)
    min_version_reason = "for --execute --stream-json"
    PASSTHROUGH_ENV = PASSTHROUGH_ENV
    PERMISSIONS = PERMISSIONS
    rate_limit_patterns = compile_patterns(
        r"rate[ _-]?limit",
        r"\b429\b",
        r"too many requests",
        r"usage limit",
    )
    result_hint = 'a {"type":"result"} line'

    def invocation(self, request: AgentRequest) -> Invocation:
        agent = request.agent
        argv = ["amp", "--execute", "--stream-json"]
        argv += self.permission_flags(agent)
        if agent.permission is Permission.READ:
            request.attempt_dir.mkdir(exist_ok=True)
            settings = request.attempt_dir / SETTINGS_FILE
            settings.write_text(json.dumps(read_only_settings(), indent=2), encoding="utf-8")
            argv += ["--settings-file", str(settings)]
        if agent.model:
            argv += ["--mode", agent.model]
        argv += agent.args
        message = with_instructions(agent, request.prompt)
        return Invocation(tuple(argv), message.encode("utf-8"))

    def parser(self, request: AgentRequest) -> StreamJsonParser:
        return StreamJsonParser()


BACKEND = AmpBackend()
