"""Scope globs: overlap never missed (checked against pathspec), rarely over-reported."""

from __future__ import annotations

import itertools

import pathspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from plait.globindex import GlobIndex
from plait.globs import globs_overlap, scopes_overlap
from plait.globsyntax import anchor, literal_prefix


def matches(glob: str, path: str) -> bool:
    """The scope enforcer's meaning: pathspec's gitignore semantics, anchored."""
    return pathspec.GitIgnoreSpec.from_lines([anchor(glob)]).match_file(path)


OVERLAP = [
    ("src/**/*.py", "src/api/x.py"),
    ("docs/*.md", "docs/api.md"),
    ("a/*/c", "a/b/*"),
    ("db", "db/migrations/001.sql"),  # a bare folder name covers what is under it
    ("db/", "db/**"),
    ("db/", "db/x"),
    ("package.json", "**/package.json"),
    ("**/package.json", "src/*.json"),
    ("[abc]x", "bx"),
    ("a?", "ab"),
    ("src/**", "**/*.md"),
    ("src/**/test_*.py", "src/**/*_test.py"),
    ("a/**/b", "a/b"),
    ("*.md", "notes.md/inner.txt"),  # `*.md` also names a folder called x.md
    ("a[!b]c", "a/c"),  # pathspec's `[!b]` also matches a slash
    ("**", "anything/at/all"),
    ("src/*", "src/x/y"),
    ("x\\*y", "x*y"),
    ("[a-c]*", "b/z"),
    ("src/api/**", "src/api/**"),
]

APART = [
    ("src/ui/**", "src/api/**"),
    ("*.md", "docs/a.md"),  # `*` stays in the root folder
    ("package.json", "src/package.json"),
    ("src/*.py", "src/ui/**"),
    ("src/*/test_*.py", "src/a/b/x_test.py"),
    ("db", "dbx"),
    ("db/**", "db2/**"),
    ("[abc]x", "dx"),
    ("a?", "abc"),
    ("docs/*.md", "docs/a.txt"),
    ("src/**/*.py", "lib/**"),
    ("a/*/c", "a/b/d"),
    ("x\\*y", "xzy"),
    ("[!a]", "a"),
    ("!src/**", "src/x"),  # a negation only removes paths from a scope
    ("a[", "a["),  # an unclosed bracket: git and pathspec drop the pattern
    ("a[z-a]", "a[z-a]"),  # a reversed range cannot be compiled: matches nothing
]


@pytest.mark.parametrize(("a", "b"), OVERLAP)
def test_known_overlaps(a: str, b: str) -> None:
    assert globs_overlap(a, b)
    assert globs_overlap(b, a)


@pytest.mark.parametrize(("a", "b"), APART)
def test_known_non_overlaps(a: str, b: str) -> None:
    assert not globs_overlap(a, b)
    assert not globs_overlap(b, a)


def test_the_examples_behave_as_pathspec_says() -> None:
    # The hand-picked answers above are pathspec's, not just our reading of it.
    assert matches("*.md", "notes.md/inner.txt")
    assert matches("a[!b]c", "a/c")
    assert not matches("*.md", "docs/a.md")
    assert matches("db", "db/migrations/001.sql")
    assert not matches("package.json", "src/package.json")


def test_literal_prefix() -> None:
    assert literal_prefix("src/api/**/*.py") == ("src", "api")
    assert literal_prefix("src/api/x.py") == ("src", "api", "x.py")
    assert literal_prefix("db/") == ("db",)
    assert literal_prefix("**/x") == ()
    assert literal_prefix("src/*.py") == ("src",)
    assert literal_prefix("a\\*b/c") == ()


def test_scopes_overlap_names_the_pairs() -> None:
    a = ["src/api/**", "docs/api.md", "README.md"]
    b = ["src/**/*.py", "docs/*.md", "tests/**"]
    assert scopes_overlap(a, b) == [("src/api/**", "src/**/*.py"), ("docs/api.md", "docs/*.md")]
    assert scopes_overlap(["src/ui/**"], ["src/api/**"]) == []


# ------------------------------------------------------------------ properties

CHARS = "ab."
segment_text = st.text(alphabet=CHARS, min_size=1, max_size=3)
paths = st.lists(segment_text, min_size=1, max_size=5)


@st.composite
def generalise(draw: st.DrawFn, path: list[str]) -> str:
    """A glob that matches ``path``: its segments loosened with every wildcard kind."""
    segs: list[str] = []
    i = 0
    while i < len(path):
        kind = draw(st.integers(0, 9))
        seg = path[i]
        if kind == 0 and i + 1 < len(path):
            skip = draw(st.integers(0, len(path) - i - 1))
            segs.append("**")  # stands for `skip` whole segments (maybe none)
            i += skip
            continue
        if kind == 1:
            segs.append("*")
        elif kind == 2:
            cut = draw(st.integers(0, len(seg)))
            segs.append(seg[:cut] + "*" + seg[len(seg) - draw(st.integers(0, len(seg) - cut)) :])
        else:
            out = ""
            for char in seg:
                how = draw(st.integers(0, 6))
                other = draw(st.sampled_from("abz"))
                if how == 0:
                    out += "?"
                elif how == 1:
                    out += f"[{char}{other}]"
                elif how == 2 and other != char:
                    out += f"[!{other}]"
                elif how == 3:
                    out += "\\" + char
                else:
                    out += char
            segs.append(out)
        i += 1
    # A glob naming a folder of the path covers the path too.
    cut = draw(st.integers(1, len(segs)))
    glob = "/".join(segs[:cut]) + draw(st.sampled_from(["", "/"] if cut < len(segs) else [""]))
    return glob


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_path_matching_both_means_overlap(data: st.DataObject) -> None:
    path = data.draw(paths)
    text = "/".join(path)
    a = data.draw(generalise(path))
    b = data.draw(generalise(path))
    # The generator aims to cover the path; pathspec is the judge of whether it did.
    assume(matches(a, text) and matches(b, text))
    assert globs_overlap(a, b), (a, b, text)
    assert globs_overlap(b, a), (a, b, text)


TOKENS = ["a", "b", ".", "*", "?", "[ab]", "[!a]", "[a-b]", "\\a", "**"]
random_segments = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3).map("".join)
random_globs = st.builds(
    lambda segs, slash: "/".join(segs) + slash,
    st.lists(random_segments, min_size=1, max_size=3),
    st.sampled_from(["", "", "/"]),
)

UNIVERSE = [
    "/".join(p)
    for n in (1, 2, 3)
    for p in itertools.product(["a", "b", "ab", "ba", ".a", "a.b"], repeat=n)
]


@settings(max_examples=250, deadline=None)
@given(random_globs, random_globs)
def test_no_path_is_missed_in_a_small_universe(a: str, b: str) -> None:
    if globs_overlap(a, b):
        return
    spec_a = pathspec.GitIgnoreSpec.from_lines([anchor(a)])
    spec_b = pathspec.GitIgnoreSpec.from_lines([anchor(b)])
    both = [p for p in UNIVERSE if spec_a.match_file(p) and spec_b.match_file(p)]
    assert not both, (a, b, both[:3])


@settings(max_examples=100, deadline=None)
@given(st.lists(random_globs, min_size=1, max_size=12), random_globs)
def test_index_finds_every_overlap(globs: list[str], query: str) -> None:
    index: GlobIndex[int] = GlobIndex((g, i) for i, g in enumerate(globs))
    found = {i for _, values in index.overlapping(query) for i in values}
    assert found == {i for i, g in enumerate(globs) if globs_overlap(query, g)}


def test_index_keeps_apart_folders_apart() -> None:
    index: GlobIndex[str] = GlobIndex()
    for i in range(50):
        index.add(f"src/mod{i}/**", f"t{i}")
    index.add("**/*.md", "docs")
    index.add("*.md", "root-docs")
    candidates = {g for g, _ in index.candidates("src/mod7/x.py")}
    assert candidates == {"src/mod7/**", "**/*.md", "*.md"}
    # `src/mod7/x.py` also names a folder, which could hold a README.md.
    assert sorted(v for _, vs in index.overlapping("src/mod7/x.py") for v in vs) == ["docs", "t7"]
