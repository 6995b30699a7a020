"""Write and read scopes: anchored gitignore-style globs, and whether two can overlap.

A scope glob is always anchored at the repository root (`*.md` is a root file,
`**/*.md` any), and means exactly what `pathspec`'s gitignore semantics give the
anchored pattern `/<glob>` (:func:`anchor`; `plait.scope` matches changed files the
same way): `*` stays in one folder, `**` crosses folders, and a pattern naming a
folder (`db`, `db/`, `db/**`) covers everything under it. A `!glob` only removes paths
from a scope, so for overlap it counts as matching nothing (a scope is never smaller
than its positive globs).

:func:`globs_overlap` decides whether some path could match both globs, whether or
not it exists. Each glob is translated, step for step as pathspec translates it to a
regular expression, into a small automaton over characters whose edges carry
character sets; two globs overlap when the product of their automata accepts some
string. That is exact for pathspec's language (quirks included: `[!a]` also matches
`/`), so it never misses an overlap; the only over-approximation is that it does not
insist on well-formed paths (no empty segments, no newline).

:class:`GlobIndex` keeps large plans fast: every path a glob matches starts with the
glob's leading literal segments, so two globs can only overlap when one literal
prefix is a prefix of the other; the index is a trie over those prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Generic, NamedTuple, TypeVar

__all__ = [
    "GlobIndex",
    "anchor",
    "globs_overlap",
    "literal_prefix",
    "scopes_overlap",
]

T = TypeVar("T")

# A character set: sorted, disjoint, inclusive code point ranges.
Charset = tuple[tuple[int, int], ...]
_MAX = 0x10FFFF
_ANY: Charset = ((0, _MAX),)
_NOT_SLASH: Charset = ((0, ord("/") - 1), (ord("/") + 1, _MAX))
_SLASH: Charset = ((ord("/"), ord("/")),)
_WILD = re.compile(r"[*?\[\\]")

# Regex-like elements: ("c", set) one character, ("*", set) any number of them,
# ("?", [elements]) an optional group.
_Elem = tuple[str, "Charset | list[_Elem]"]


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


def _segment(seg: str) -> list[_Elem] | None:
    """One segment's wildcards, as pathspec's `_translate_segment_glob` reads them."""
    out: list[_Elem] = []
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


def _elements(glob: str) -> list[_Elem] | None:
    """The full-string language of a glob under pathspec's `regex.search`."""
    norm = _segments(glob)
    if norm is None:
        return None
    segs, is_dir = norm
    anything: _Elem = ("*", _ANY)
    # The regex overrides pathspec uses for these shapes, searched anywhere.
    if (segs == ["**"] and is_dir) or segs == ["**", "*", "**"]:
        return [anything, ("c", _SLASH), anything]  # any path with a slash
    if segs in (["**"], ["**", "*"]):
        return [("c", _ANY), anything]  # any non-empty path
    out: list[_Elem] = []
    need_slash = False
    last = len(segs) - 1
    for i, seg in enumerate(segs):
        if seg == "**":
            if i == 0:
                out.append(("?", [("c", _ANY), anything, ("c", _SLASH)]))
            elif i < last:
                out.append(("?", [("c", _SLASH), ("c", _ANY), anything]))
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
    return _shape(glob).prefix


class _Shape(NamedTuple):
    """What can be told without an automaton (a tuple: one per distinct glob, made fast)."""

    prefix: tuple[str, ...]
    null: bool  # adds no path to a scope
    simple: bool  # literal segments, then at most a final `**`: the folder and all below


@lru_cache(maxsize=131072)
def _shape(glob: str) -> _Shape:
    norm = _segments(glob)
    segs = norm[0] if norm else []
    prefix: list[str] = []
    for seg in segs:
        if not seg or seg == "**" or _WILD.search(seg):
            break
        prefix.append(seg)
    rest = segs[len(prefix) :]
    # Only a bad `[...]` (unclosed, or a reversed range) discards a normalised pattern.
    null = norm is None or ("[" in glob and _elements(glob) is None)
    return _Shape(tuple(prefix), null, rest in ([], ["**"]))


# ------------------------------------------------------------------ automata


@dataclass(frozen=True)
class _Nfa:
    """An epsilon-free automaton; state 0 starts."""

    edges: tuple[tuple[tuple[Charset, int], ...], ...]
    accepting: tuple[bool, ...]
    live: tuple[bool, ...]  # an accepting state is reachable from here
    live_states: frozenset[int]
    # Live states that loop on every character: once one is reached, every longer
    # input still reaches it, so every deeper folder stays live.
    universal: frozenset[int]
    # Memoised (states, character) → states: a lazily built DFA for literal prefixes.
    steps: dict[tuple[frozenset[int], str], frozenset[int]] = field(
        default_factory=dict, compare=False, hash=False
    )


def _build(elems: Sequence[_Elem]) -> tuple[list[list[tuple[Charset, int]]], list[list[int]], int]:
    edges: list[list[tuple[Charset, int]]] = [[]]
    eps: list[list[int]] = [[]]

    def new() -> int:
        edges.append([])
        eps.append([])
        return len(edges) - 1

    def seq(items: Sequence[_Elem], cur: int) -> int:
        for kind, arg in items:
            if isinstance(arg, list):
                inner = seq(arg, cur)
                join = new()  # a fresh join, so skipping never enters the group's loops
                eps[inner].append(join)
                eps[cur].append(join)
                cur = join
            elif kind == "c":
                nxt = new()
                edges[cur].append((arg, nxt))
                cur = nxt
            else:
                # A fresh state per star, so `a*b*` never becomes `(a|b)*`.
                nxt = new()
                eps[cur].append(nxt)
                edges[nxt].append((arg, nxt))
                cur = nxt
        return cur

    final = seq(elems, 0)
    return edges, eps, final


@lru_cache(maxsize=65536)
def _nfa(glob: str) -> _Nfa | None:
    elems = _elements(glob)
    if elems is None:
        return None
    raw, eps, final = _build(elems)
    n = len(raw)
    closure: list[set[int]] = []
    for q in range(n):
        seen, stack = {q}, [q]
        while stack:
            for p in eps[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        closure.append(seen)
    edges = tuple(tuple(dict.fromkeys(e for p in closure[q] for e in raw[p])) for q in range(n))
    accepting = tuple(final in closure[q] for q in range(n))
    back: list[list[int]] = [[] for _ in range(n)]
    for q in range(n):
        for _, p in edges[q]:
            back[p].append(q)
    live = list(accepting)
    stack = [q for q in range(n) if live[q]]
    while stack:
        for q in back[stack.pop()]:
            if not live[q]:
                live[q] = True
                stack.append(q)
    universal = frozenset(q for q in range(n) if live[q] and any(e == (_ANY, q) for e in edges[q]))
    live_states = frozenset(q for q in range(n) if live[q])
    return _Nfa(edges, accepting, tuple(live), live_states, universal)


def _meets(a: Charset, b: Charset) -> bool:
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i][1] < b[j][0]:
            i += 1
        elif b[j][1] < a[i][0]:
            j += 1
        else:
            return True
    return False


def _product_accepts(a: _Nfa, b: _Nfa) -> bool:
    width = len(b.edges)
    seen = {0}
    stack = [(0, 0)]
    while stack:
        qa, qb = stack.pop()
        if a.accepting[qa] and b.accepting[qb]:
            return True
        for set_a, na in a.edges[qa]:
            if not a.live[na]:
                continue
            for set_b, nb in b.edges[qb]:
                key = na * width + nb
                if key not in seen and b.live[nb] and _meets(set_a, set_b):
                    seen.add(key)
                    stack.append((na, nb))
    return False


@lru_cache(maxsize=262144)
def _states_after(glob: str, prefix: tuple[str, ...]) -> frozenset[int]:
    """The automaton's states after reading ``prefix/``, one segment at a time so that
    globs sharing leading folders share the work."""
    if not prefix:
        return frozenset((0,))
    return _step(_nfa_of(glob), _states_after(glob, prefix[:-1]), prefix[-1])


def _step(nfa: _Nfa, states: frozenset[int], segment: str) -> frozenset[int]:
    """The states after reading ``segment/`` from ``states``."""
    for char in segment + "/":
        if not states:
            break
        nxt = nfa.steps.get((states, char))
        if nxt is None:
            code = ord(char)
            nxt = frozenset(
                target
                for q in states
                for chars, target in nfa.edges[q]
                if any(lo <= code <= hi for lo, hi in chars)
            )
            nfa.steps[(states, char)] = nxt
        states = nxt
    return states


def _nfa_of(glob: str) -> _Nfa:
    nfa = _nfa(glob)
    assert nfa is not None, glob  # callers rule out null globs first
    return nfa


def _is_prefix(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    return len(short) <= len(long) and long[: len(short)] == short


@lru_cache(maxsize=262144)
def _overlap(a: str, b: str) -> bool:
    sa, sb = _shape(a), _shape(b)
    if sa.null or sb.null:
        return False
    if a == b:
        return sa.simple or _nfa_of(a).live[0]
    if _is_prefix(sb.prefix, sa.prefix):
        a, b, sa, sb = b, a, sb, sa  # now a's literal prefix is the shorter one
    elif not _is_prefix(sa.prefix, sb.prefix):
        return False  # diverging literal segments: no path starts with both
    # Every language here is closed under appending `/x` (a folder match covers what
    # is under it), so a glob covering all of its prefix's folder meets any non-empty
    # deeper one, and a deeper simple glob only needs the other to reach below it.
    if sa.simple:
        return sb.simple or _nfa_of(b).live[0]
    if sb.simple:
        nfa = _nfa_of(a)
        return any(nfa.live[q] for q in _states_after(a, sb.prefix))
    return _product_accepts(_nfa_of(a), _nfa_of(b))


def globs_overlap(a: str, b: str) -> bool:
    """True if some path could match both scope globs (whether or not it exists).

    Never misses a real overlap; may, for ill-formed paths only, report one that no
    real file can have.
    """
    return _overlap(a, b) if a <= b else _overlap(b, a)


def scopes_overlap(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs (glob of ``a``, glob of ``b``) that overlap, in the scopes' order."""
    return [(x, y) for x in dict.fromkeys(a) for y in dict.fromkeys(b) if globs_overlap(x, y)]


# ------------------------------------------------------------------ the index


@dataclass
class _Node(Generic[T]):
    children: dict[str, _Node[T]] = field(default_factory=dict)
    items: dict[str, list[T]] = field(default_factory=dict)  # glob → its values

    @staticmethod
    def subtree_items(nodes: Iterable[_Node[T]]) -> Iterator[tuple[str, list[T]]]:
        """Every (glob, values) entry in these nodes and below them."""
        stack = list(nodes)
        while stack:
            node = stack.pop()
            yield from node.items.items()
            stack.extend(node.children.values())


class GlobIndex(Generic[T]):
    """Globs with values, found again by the globs they may overlap.

    A trie over literal prefixes: a query visits the nodes on its own prefix (more
    general globs) and the subtree below it (more specific ones) and nothing else, so
    a plan whose scopes live in many folders never compares every pair. Values of
    the same glob are kept together, so each distinct glob is compared once.
    """

    def __init__(self, items: Iterable[tuple[str, T]] = ()) -> None:
        self._root: _Node[T] = _Node()
        for glob, value in items:
            self.add(glob, value)

    def add(self, glob: str, value: T) -> None:
        """Index ``value`` under ``glob``."""
        node = self._root
        for seg in literal_prefix(glob):
            child = node.children.get(seg)
            if child is None:  # (setdefault would build a node per call)
                child = node.children[seg] = _Node()
            node = child
        node.items.setdefault(glob, []).append(value)

    def entries(self) -> Iterator[tuple[str, list[T]]]:
        """Every (glob, values) entry."""
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield from node.items.items()
            stack.extend(node.children.values())

    def candidates(self, glob: str) -> Iterator[tuple[str, list[T]]]:
        """(glob, values) entries whose literal prefixes are compatible with ``glob``'s:
        a superset of the overlapping ones."""
        node: _Node[T] | None = self._root
        for seg in literal_prefix(glob):
            assert node is not None
            yield from node.items.items()
            node = node.children.get(seg)
            if node is None:
                return
        stack = [node]
        while stack:
            below = stack.pop()
            assert below is not None
            yield from below.items.items()
            stack.extend(below.children.values())

    def overlapping(self, glob: str) -> Iterator[tuple[str, list[T]]]:
        """(glob, values) entries whose globs overlap ``glob``."""
        shape = _shape(glob)
        if shape.null:
            return  # matches nothing, so meets nothing
        for g, vs in self.candidates(glob):
            if _meets_candidate(shape, glob, g):
                yield g, vs

    def overlapping_pairs(self) -> Iterator[tuple[str, list[T], str, list[T]]]:
        """Every unordered pair of entries whose globs overlap, once, as (glob, values,
        other glob, other values); an entry pairs with itself when it has two values or
        more and its glob can match anything (one value has no other to meet). The same
        pairs as `overlapping` for each entry, at half the work."""
        stack: list[tuple[_Node[T], tuple[str, ...]]] = [(self._root, ())]
        while stack:
            node, path = stack.pop()
            # Compatible prefixes: the same node, or this node and one below it.
            entries = list(node.items.items())
            for i, (glob, values) in enumerate(entries):
                shape = _shape(glob)
                if shape.null:
                    continue
                for other, others in entries[i + (len(values) < 2) :]:
                    if _meets_candidate(shape, glob, other):
                        yield glob, values, other, others
                if node.children:
                    for other, others in _below(glob, shape, node, path):
                        yield glob, values, other, others
            stack.extend((child, (*path, seg)) for seg, child in node.children.items())


def _below(
    glob: str, shape: _Shape, node: _Node[T], path: tuple[str, ...]
) -> Iterator[tuple[str, list[T]]]:
    """Entries under ``node`` (at ``path``, where ``glob`` is) that overlap ``glob``.

    A folder scope down there meets ``glob`` when the automaton is still live after
    reading the folder's path (`_overlap`'s rule), so the states are carried down the
    trie instead of recomputed per entry.
    """
    if shape.simple:
        for other, others in _Node.subtree_items(node.children.values()):
            if _meets_candidate(shape, glob, other):
                yield other, others
        return
    nfa = _nfa_of(glob)
    stack = [
        (child, _step(nfa, _states_after(glob, path), seg)) for seg, child in node.children.items()
    ]
    while stack:
        below, states = stack.pop()
        if not nfa.universal.isdisjoint(states):
            for other, others in _Node.subtree_items([below]):  # all live down there
                if _deeper_meets(glob, other, True):
                    yield other, others
            continue
        live = not nfa.live_states.isdisjoint(states)
        for other, others in below.items.items():
            if _deeper_meets(glob, other, live):
                yield other, others
        stack.extend((child, _step(nfa, states, seg)) for seg, child in below.children.items())


def _deeper_meets(glob: str, other: str, live: bool) -> bool:
    """`globs_overlap` of a non-folder glob and one with a longer literal prefix, given
    whether the first is still live after reading the other's prefix."""
    found = _shape(other)
    if found.simple:
        return live and not found.null
    return globs_overlap(glob, other)


def _meets_candidate(shape: _Shape, glob: str, other: str) -> bool:
    """`globs_overlap` for a candidate (compatible literal prefixes) of a non-null glob."""
    if shape.simple:
        found = _shape(other)
        if found.simple:
            # Both cover whole folders, one inside the other: they meet unless null.
            return not found.null
    return globs_overlap(glob, other)
