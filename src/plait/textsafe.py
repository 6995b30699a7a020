"""Text that others wrote (agents' output and errors, plan names), made safe to print.

An agent's line can hold terminal control sequences: colour codes, a screen clear,
a window title (OSC), a hidden cursor, a right-to-left override. Printed as is on
plait's board, in `status` or in a report, they would redraw or hide plait's own
output. Everything here removes them, and keeps the text around them.
"""

from __future__ import annotations

import re

__all__ = ["clean_line", "clean_text", "one_line"]

_CONTROLS = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, screen clears
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, links), to BEL or ESC \
    r"|\x1b[ -/]*[0-~]?"  # any other escape (ESC c, ESC 7, ESC P ...), or a lone ESC
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]"  # C0 but tab, DEL, and C1 (U+009B is a CSI too)
    r"|[\u200e\u200f\u202a-\u202e\u2066-\u2069]"  # direction marks and overrides
)


def clean_line(line: str) -> str:
    """One line of an agent's output made safe for one cell: no escapes, no controls.

    A line that redraws itself with `\\r` (a progress bar) shows its last state.
    """
    return _CONTROLS.sub("", _last_state(line)).replace("\t", " ").strip()


def one_line(value: object, limit: int = 160) -> str:
    """Any text (an error, several lines) as one safe line of at most `limit` characters."""
    text = " ".join(_CONTROLS.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clean_text(text: str) -> str:
    """Several lines (a message quoting an agent or git) made safe, line by line, their
    indentation kept."""
    return "\n".join(_CONTROLS.sub("", _last_state(line)).rstrip() for line in text.split("\n"))


def _last_state(line: str) -> str:
    line = line.rstrip("\r\n")
    return line.rsplit("\r", 1)[-1] if "\r" in line else line
