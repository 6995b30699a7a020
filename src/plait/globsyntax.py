"""What a scope glob means: pathspec's gitignore semantics, anchored at the root.

A scope glob is always anchored at the repository root (`*.md` is a root file,
`**/*.md` any), and means exactly what `pathspec`'s gitignore semantics give the
anchored pattern `/<glob>` (:func:`anchor`; `plait.scope` matches changed files the
same way): `*` stays in one folder, `**` crosses folders, and a pattern naming a
folder (`db`, `db/`, `db/**`) covers everything under it. A `!glob` only removes paths
from a scope, so for overlap it counts as matching nothing (a scope is never smaller
than its positive globs).

:func:`elements` translates a glob, step for step as pathspec translates it to a
regular expression, into regex-like elements over character sets, from which
`plait.globs` builds its automata. :func:`glob_shape` is what can be told without
one: the glob's leading literal segments (every path it matches starts with them),
whether it adds nothing to a scope, and whether it is simply a folder and all below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "ANY",
    "Charset",
    "Elem",
    "GlobShape",
    "anchor",
    "elements",
    "glob_shape",
    "literal_prefix",
]

# A character set: sorted, disjoint, inclusive code point ranges.
Charset = tuple[tuple[int, int], ...]
_MAX = 0x10FFFF
ANY: Charset = ((0, _MAX),)
_NOT_SLASH: Charset = ((0, ord("/") - 1), (ord("/") + 1, _MAX))
_SLASH: Charset = ((ord("/"), ord("/")),)
_WILD = re.compile(r"[*?\[\\]")

# Regex-like elements: ("c", set) one character, ("*", set) any number of them,
# ("?", [elements]) an optional group.
Elem = tuple[str, "Charset | list[Elem]"]


def anchor(glob: str) -> str:
    """The gitignore pattern a scope glob stands for: anchored at the repository root.

    Match paths with ``pathspec.GitIgnoreSpec.from_lines([anchor(g) for g in globs])``.
    """
    return glob if glob.startswith("/") else "/" + glob


# ------------------------------------------------------------------ glob → elements


def _segments(glob: str) -> tuple[list[str], bool] | None:
    """pathspec's normalisation of the anchored pattern: (segments, is_dir), or None
    when the pattern adds nothing to a scope."""
    if glob.startswith("!"):
        return None
    text = anchor(glob)
    if not text.endswith("\\ "):
        text = text.rstrip()  # gitignore drops unescaped trailing spaces
    if text in ("", "/"):
        return None
    segs = text.split("/")[1:]
    is_dir = not segs[-1]
    if is_dir:
        segs[-1] = "**"
    if segs.count("**") < 2:
        return segs, is_dir  # nothing to collapse
    collapsed = [s for i, s in enumerate(segs) if not (s == "**" and i and segs[i - 1] == "**")]
    return collapsed, is_dir


def _charset(ranges: Iterable[tuple[int, int]], negate: bool = False) -> Charset:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    if not negate:
        return tuple(merged)
    out, nxt = [], 0
    for lo, hi in merged:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX:
        out.append((nxt, _MAX))
    return tuple(out)


def _bracket(body: str, negate: bool) -> Charset | None:
    """Python's reading of a regex set whose characters are all literal (pathspec
    doubles backslashes): ranges `a-z`, a leading `]` and a trailing `-` as literals.
    None for a reversed range, which pathspec cannot compile."""
    ranges: list[tuple[int, int]] = []
    i = 0
    while i < len(body):
        lo = ord(body[i])
        if i + 2 < len(body) and body[i + 1] == "-":
            hi = ord(body[i + 2])
            if hi < lo:
                return None
            ranges.append((lo, hi))
            i += 3
        else:
            ranges.append((lo, lo))
            i += 1
    return _charset(ranges, negate)


def _segment(seg: str) -> list[Elem] | None:
    """One segment's wildcards, as pathspec's `_translate_segment_glob` reads them."""
    out: list[Elem] = []
    i, end = 0, len(seg)
    while i < end:
        char = seg[i]
        i += 1
        if char == "\\":
            # An escape; a trailing one is invalid for pathspec: read it as a literal.
            char = seg[i] if i < end else "\\"
            i += 1
            out.append(("c", ((ord(char), ord(char)),)))
        elif char == "*":
            out.append(("*", _NOT_SLASH))
        elif char == "?":
            out.append(("c", _NOT_SLASH))
        elif char == "[":
            j = i
            if j < end and seg[j] in "!^":
                j += 1
            if j < end and seg[j] == "]":
                j += 1
            while j < end and seg[j] != "]":
                j += 1
            if j >= end:
                return None  # unclosed `[`: git and pathspec discard the whole pattern
            negate = seg[i] in "!^"
            chars = _bracket(seg[i + 1 if negate else i : j], negate)
            if chars is None:
                return None
            out.append(("c", chars))
            i = j + 1
        else:
            out.append(("c", ((ord(char), ord(char)),)))
    return out


def elements(glob: str) -> list[Elem] | None:
    """The full-string language of a glob under pathspec's `regex.search`."""
    norm = _segments(glob)
    if norm is None:
        return None
    segs, is_dir = norm
    anything: Elem = ("*", ANY)
    # The regex overrides pathspec uses for these shapes, searched anywhere.
    if (segs == ["**"] and is_dir) or segs == ["**", "*", "**"]:
        return [anything, ("c", _SLASH), anything]  # any path with a slash
    if segs in (["**"], ["**", "*"]):
        return [("c", ANY), anything]  # any non-empty path
    out: list[Elem] = []
    need_slash = False
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        if seg == "**":
            if i == 0:
                out.append(("?", [("c", ANY), anything, ("c", _SLASH)]))
            elif i < last:
                out.append(("?", [("c", _SLASH), ("c", ANY), anything]))
                need_slash = True
            else:
                out += [("c", _SLASH), anything]
            continue
        if need_slash:
            out.append(("c", _SLASH))
        if seg == "*":
            out += [("c", _NOT_SLASH), ("*", _NOT_SLASH)]
        else:
            parts = _segment(seg)
            if parts is None:
                return None
            out += parts
        if i == last:
            out.append(("?", [("c", _SLASH), anything]))  # the folder and all under it
        need_slash = True
    return out


def literal_prefix(glob: str) -> tuple[str, ...]:
    """The leading segments without wildcards: every path the glob matches starts
    with them (``src/api/**/*.py`` → ``("src", "api")``)."""
    return glob_shape(glob).prefix


class GlobShape(NamedTuple):
    """What can be told without an automaton (a tuple: one per distinct glob, made fast)."""

    prefix: tuple[str, ...]
    null: bool  # adds no path to a scope
    simple: bool  # literal segments, then at most a final `**`: the folder and all below


@lru_cache(maxsize=131072)
def glob_shape(glob: str) -> GlobShape:
    norm = _segments(glob)
    segs = norm[0] if norm else []
    prefix: list[str] = []
    for seg in segs:
        if not seg or seg == "**" or _WILD.search(seg):
            break
        prefix.append(seg)
    rest = segs[len(prefix) :]
    # Only a bad `[...]` (unclosed, or a reversed range) discards a normalised pattern.
    null = norm is None or ("[" in glob and elements(glob) is None)
    return GlobShape(tuple(prefix), null, rest in ([], ["**"]))
