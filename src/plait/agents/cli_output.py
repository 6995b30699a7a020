"""Reading what a coding-agent CLI prints: the parsers every backend builds on.

A backend's parser is fed each line of its agent's stdout as it arrives (`Parser.feed`)
and gives its verdict once the process ended (`Parser.finish`): the final message,
tokens and cost, errors met along the way, a rate limit. `JsonLinesParser` handles
the JSONL streams most CLIs print, including lines `plait.proc` delivered in pieces;
`as_int`, `as_float` and `as_text` read fields whose shape varies between versions.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from plait import proc
from plait.agents.base import Usage
from plait.agents.ratelimit import RateLimit

__all__ = [
    "JsonLinesParser",
    "Parsed",
    "Parser",
    "as_float",
    "as_int",
    "as_text",
    "without_json_documents",
]

log = logging.getLogger("plait.agents")


@dataclass
class Parsed:
    """What a backend read from its agent's output."""

    found: bool = False  # a final result (or a finished turn) was seen
    output: str = ""  # the final message
    is_error: bool = False  # the agent itself reported failure
    error: str = ""
    session_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    turns: int | None = None
    #: Error texts the agent printed along the way (searched for rate limits).
    errors: list[str] = field(default_factory=list)
    #: A refusal reported in structured form (e.g. Claude's rate_limit_event).
    rate_limit: RateLimit | None = None
    skipped_lines: int = 0  # malformed JSON lines ignored
    #: What the agent printed besides its structured output, searched for rate limits
    #: and for a failure's reason. None: the lines of the log's tail that are not JSON
    #: objects (right for JSONL); a parser of another shape says what it is.
    unparsed: str | None = None
    #: What the person reading the run should know even of a success (e.g. tool calls
    #: the agent was refused): in the result's `error` and at the end of the log.
    notes: list[str] = field(default_factory=list)

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost_usd,
            turns=self.turns,
        )

    def add_tokens(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens = (self.input_tokens or 0) + input_tokens
        self.output_tokens = (self.output_tokens or 0) + output_tokens


class Parser:
    """Reads an agent's output: `feed` gets each stdout line, `finish` gives the verdict.

    Line-oriented formats (JSONL) are fed twice: live, as the lines arrive (so a long
    session whose stdout outgrows the capture cap still yields its final result),
    and, when the whole stdout was captured, once more by a fresh parser from the
    exact text. One-document formats (a JSON object, plain text) override `finish`
    and read the captured stdout.
    """

    def __init__(self) -> None:
        self.parsed = Parsed()

    def feed(self, line: str) -> None:
        """Take one line of stdout (without its newline)."""

    def finish(self, done: proc.ProcResult) -> Parsed:
        """The verdict once the process has ended (`done.stdout`: its captured stdout)."""
        return self.parsed


#: A JSON line being put back together is dropped past this size.
_MAX_PENDING = 64 * 1024 * 1024
#: `plait.proc` hands a line longer than 64 KiB to `on_line` in pieces of 64 KiB; a
#: fed line this long was cut there (a little slack for a split character or a "\r").
_CUT_PIECE_BYTES = 64 * 1024 - 8


class JsonLinesParser(Parser, ABC):
    """JSONL: one event object per line. Malformed lines are logged and skipped.

    Lines cut into 64 KiB pieces (a long tool result or final message) are put back
    together: a piece of full size that does not parse is kept, and the following
    pieces are appended until one shorter than a full piece ends the line.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: str | None = None

    def feed(self, line: str) -> None:
        cut = len(line.encode("utf-8")) >= _CUT_PIECE_BYTES
        if self._pending is not None:
            self._pending += line
            obj = _decodes(self._pending)
            if obj is not None:
                self._pending = None
                self._dispatch(obj)
            elif not cut or len(self._pending) > _MAX_PENDING:
                self._skip(self._pending)
            return
        text = line.strip()
        if not text.startswith("{"):
            return  # blank lines, banners and notes: nothing to parse
        obj = _decodes(text)
        if obj is not None:
            self._dispatch(obj)
        elif cut:
            self._pending = line
        else:
            self._skip(text)

    def _dispatch(self, obj: object) -> None:
        if isinstance(obj, dict):
            self.event(obj)

    def _skip(self, text: str) -> None:
        # Counted here, reported once per attempt by `CliBackend.run` (output is
        # parsed twice when it was captured whole, so logging here would repeat).
        self.parsed.skipped_lines += 1
        log.debug("skipped a malformed JSON line from the agent: %.200s", text)
        self._pending = None

    def finish(self, done: proc.ProcResult) -> Parsed:
        if self._pending is not None:
            self._skip(self._pending)
        return self.parsed

    @abstractmethod
    def event(self, obj: dict[str, Any]) -> None:
        """Handle one decoded event."""


def _decodes(text: str) -> object | None:
    """The JSON value of `text`, or None if it is not one complete object."""
    text = text.strip()
    if not text.startswith("{") or not text.endswith("}"):
        return None
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return value


def without_json_documents(text: str) -> str:
    """`text` without the JSON objects that start a line, pretty-printed ones whole.

    What a model wrote sits inside such a document (``"response": "I fixed the quota
    check..."``) and must not be read as the CLI's own words. A document that starts
    but never ends (output cut at the capture cap, a killed CLI) is dropped to the end.
    """
    decoder = json.JSONDecoder()
    kept: list[str] = []
    pos = 0
    while pos < len(text):
        newline = text.find("\n", pos)
        end = len(text) if newline < 0 else newline
        line = text[pos:end]
        start = pos + len(line) - len(line.lstrip())
        if not text.startswith("{", start):
            kept.append(line)
            pos = end + 1
            continue
        try:
            _, stop = decoder.raw_decode(text, start)
        except ValueError:
            if line.strip() == "{":
                break  # a pretty-printed document, cut short
            pos = end + 1  # one malformed line
            continue
        newline = text.find("\n", stop)
        after = text[stop : len(text) if newline < 0 else newline]
        if after.strip():  # the rest of the line the object ended on
            kept.append(after)
        pos = len(text) if newline < 0 else newline + 1
    return "\n".join(kept)


def as_int(value: object) -> int:
    """A token count from JSON: ints and integral floats, anything else is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


def as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_text(value: object) -> str:
    """An error or message field: a string, or the `message` of an object."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("message", "error", "type", "name"):
            inner = value.get(key)
            if isinstance(inner, str) and inner:
                return inner
            if isinstance(inner, dict):
                return as_text(inner)
        return json.dumps(value)
    if isinstance(value, list):
        return "; ".join(as_text(v) for v in value if v)
    return ""
