"""An index of scope globs that finds the pairs which may overlap without comparing all.

Every path a glob matches starts with the glob's leading literal segments
(``src/api/**/*.py`` → ``src``, ``api``), so two globs can only overlap when one
literal prefix is a prefix of the other. :class:`GlobIndex` is a trie over those
prefixes: large plans (thousands of tasks, scopes in many folders) compare each
glob only with the globs on its own path and below it, and carry the automaton's
states down the trie instead of recomputing them per pair. Whether two globs
overlap is `plait.globs`'s to say; the index only narrows down which pairs are
asked, and shares the work of asking.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from plait.globs import globs_overlap, nfa_of, states_after, step_segment
from plait.globsyntax import GlobShape, glob_shape, literal_prefix

__all__ = ["GlobIndex"]

T = TypeVar("T")


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
        shape = glob_shape(glob)
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
                shape = glob_shape(glob)
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
    glob: str, shape: GlobShape, node: _Node[T], path: tuple[str, ...]
) -> Iterator[tuple[str, list[T]]]:
    """Entries under ``node`` (at ``path``, where ``glob`` is) that overlap ``glob``.

    A folder scope down there meets ``glob`` when the automaton is still live after
    reading the folder's path (`plait.globs._overlap`'s rule), so the states are carried down the
    trie instead of recomputed per entry.
    """
    if shape.simple:
        for other, others in _Node.subtree_items(node.children.values()):
            if _meets_candidate(shape, glob, other):
                yield other, others
        return
    nfa = nfa_of(glob)
    stack = [
        (child, step_segment(nfa, states_after(glob, path), seg))
        for seg, child in node.children.items()
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
        stack.extend(
            (child, step_segment(nfa, states, seg)) for seg, child in below.children.items()
        )


def _deeper_meets(glob: str, other: str, live: bool) -> bool:
    """`globs_overlap` of a non-folder glob and one with a longer literal prefix, given
    whether the first is still live after reading the other's prefix."""
    found = glob_shape(other)
    if found.simple:
        return live and not found.null
    return globs_overlap(glob, other)


def _meets_candidate(shape: GlobShape, glob: str, other: str) -> bool:
    """`globs_overlap` for a candidate (compatible literal prefixes) of a non-null glob."""
    if shape.simple:
        found = glob_shape(other)
        if found.simple:
            # Both cover whole folders, one inside the other: they meet unless null.
            return not found.null
    return globs_overlap(glob, other)
