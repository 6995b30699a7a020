"""Whether two scope globs can overlap: some path could match both, existing or not.

Each glob is translated (`plait.globsyntax`), step for step as pathspec translates
it to a regular expression, into a small automaton over characters whose edges
carry character sets; two globs overlap when the product of their automata accepts
some string. That is exact for pathspec's language (quirks included: `[!a]` also
matches `/`), so it never misses an overlap; the only over-approximation is that it
does not insist on well-formed paths (no empty segments, no newline).

Most pairs are settled before any product is built: globs whose leading literal
segments diverge cannot meet; a glob that is a whole folder meets any non-empty
glob below it, and one above it whose automaton is still live after reading the
folder's path (:func:`states_after`, :func:`step_segment`, which `plait.globindex`
also uses to walk its trie).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from plait.globsyntax import ANY, Charset, Elem, elements, glob_shape

__all__ = [
    "globs_overlap",
    "nfa_of",
    "scopes_overlap",
    "states_after",
    "step_segment",
]


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


def _build(elems: Sequence[Elem]) -> tuple[list[list[tuple[Charset, int]]], list[list[int]], int]:
    edges: list[list[tuple[Charset, int]]] = [[]]
    eps: list[list[int]] = [[]]

    def new() -> int:
        edges.append([])
        eps.append([])
        return len(edges) - 1

    def seq(items: Sequence[Elem], cur: int) -> int:
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
    elems = elements(glob)
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
    universal = frozenset(q for q in range(n) if live[q] and any(e == (ANY, q) for e in edges[q]))
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
def states_after(glob: str, prefix: tuple[str, ...]) -> frozenset[int]:
    """The automaton's states after reading ``prefix/``, one segment at a time so that
    globs sharing leading folders share the work."""
    if not prefix:
        return frozenset((0,))
    return step_segment(nfa_of(glob), states_after(glob, prefix[:-1]), prefix[-1])


def step_segment(nfa: _Nfa, states: frozenset[int], segment: str) -> frozenset[int]:
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


def nfa_of(glob: str) -> _Nfa:
    nfa = _nfa(glob)
    assert nfa is not None, glob  # callers rule out null globs first
    return nfa


def _is_prefix(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    return len(short) <= len(long) and long[: len(short)] == short


@lru_cache(maxsize=262144)
def _overlap(a: str, b: str) -> bool:
    sa, sb = glob_shape(a), glob_shape(b)
    if sa.null or sb.null:
        return False
    if a == b:
        return sa.simple or nfa_of(a).live[0]
    if _is_prefix(sb.prefix, sa.prefix):
        a, b, sa, sb = b, a, sb, sa  # now a's literal prefix is the shorter one
    elif not _is_prefix(sa.prefix, sb.prefix):
        return False  # diverging literal segments: no path starts with both
    # Every language here is closed under appending `/x` (a folder match covers what
    # is under it), so a glob covering all of its prefix's folder meets any non-empty
    # deeper one, and a deeper simple glob only needs the other to reach below it.
    if sa.simple:
        return sb.simple or nfa_of(b).live[0]
    if sb.simple:
        nfa = nfa_of(a)
        return any(nfa.live[q] for q in states_after(a, sb.prefix))
    return _product_accepts(nfa_of(a), nfa_of(b))


def globs_overlap(a: str, b: str) -> bool:
    """True if some path could match both scope globs (whether or not it exists).

    Never misses a real overlap; may, for ill-formed paths only, report one that no
    real file can have.
    """
    return _overlap(a, b) if a <= b else _overlap(b, a)


def scopes_overlap(a: Sequence[str], b: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs (glob of ``a``, glob of ``b``) that overlap, in the scopes' order."""
    return [(x, y) for x in dict.fromkeys(a) for y in dict.fromkeys(b) if globs_overlap(x, y)]
