"""YAML read safely, with the line and column of every key and value.

Plans and profile front matter are read here. A plan is trusted no more than any
file in a repository: aliases (and with them "billion laughs"), custom tags,
duplicate keys, deep nesting and oversized text are refused with a located
`Problem` each, before any value is built.

Two readers give the same answer. The fast one walks the parser's events and
builds values directly: a 10,000-task plan in a third of the time of composing a
node tree first. It accepts only plain YAML (no anchor, alias, explicit tag, merge
or non-text key, duplicate key, nesting past `MAX_DEPTH`, second document or
syntax error); anything else goes to the careful reader, which composes the tree
and reports each problem, so every message stays the same.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from plait.errors import PlanError, Problem

MAX_PLAN_BYTES = 2 * 1024 * 1024  # a plan, or a prompt_file, larger than this is refused
MAX_DEPTH = 32  # YAML nesting; real plans need about 6

_STD = "tag:yaml.org,2002:"
_STR, _TIMESTAMP, _SEQ, _MAP = (_STD + t for t in ("str", "timestamp", "seq", "map"))
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
# libyaml when present: about 3x faster, and it caps nesting itself.
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.constructor.SafeConstructor()
_RESOLVER: Any = yaml.resolver.Resolver()  # the loaders' own implicit typing of plain scalars


class Located:
    """Plain YAML data plus the 1-based (line, column) of every key and value by field path.

    A plan read without problems needs only its tasks' lines, so the fast reader
    records the keys of the top two levels (`tasks.<id>`) and reads the rest of the
    locations again only when they are first asked for (`keys`, `values`, `where`).
    """

    def __init__(
        self,
        data: Any,
        keys: dict[str, tuple[int, int]] | None = None,
        values: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        self.data = data
        self._keys = {} if keys is None else keys
        self._values = {} if values is None else values
        self._rest: tuple[str, int] | None = None  # (text, first line) still to locate

    @property
    def keys(self) -> dict[str, tuple[int, int]]:
        """Where each key is, by field path."""
        self._complete()
        return self._keys

    @property
    def values(self) -> dict[str, tuple[int, int]]:
        """Where each value is, by field path."""
        self._complete()
        return self._values

    def top_key(self, path: str) -> tuple[int, int] | None:
        """The location of a key of the top two levels (``tasks.api``), read or not."""
        if self._rest is not None and path.count(".") + path.count("[") > 1:
            self._complete()  # deeper: (a key with a dot in it looks deeper too)
        return self._keys.get(path)

    def where(self, path: str) -> tuple[int | None, int | None]:
        """The location of `path`, else of its nearest located parent."""
        keys, values = self.keys, self.values
        while True:
            found = keys.get(path) or values.get(path)
            if found:
                return found
            if not path:
                return None, None
            path = _parent(path)

    def _complete(self) -> None:
        if self._rest is not None:
            text, first_line = self._rest
            full = _EventReader(text, first_line, full=True).read()
            self._keys, self._values, self._rest = full._keys, full._values, None


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[: max(cut, 0)]


def join(path: str, part: str | int) -> str:
    """Field path of `part` inside `path`: ``join("tasks", "api")`` → ``tasks.api``."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


class _Walker:
    """Turns a composed node tree into plain data, recording locations and problems."""

    def __init__(self, first_line: int) -> None:
        self.first_line = first_line
        self.out = Located(None)
        self.problems: list[Problem] = []
        self.seen: set[int] = set()
        self.alias_path: str | None = None  # where the first alias was met

    def mark(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + self.first_line, node.start_mark.column + 1

    def problem(self, path: str, message: str, node: yaml.Node) -> None:
        line, column = self.out.keys.get(path) or self.mark(node)
        self.problems.append(Problem(path, message, line, column))

    def value(self, node: yaml.Node, path: str, depth: int) -> Any:
        if id(node) in self.seen:
            # The composer hands out the anchored node again for each alias: refusing
            # the second visit defuses "billion laughs" before anything expands.
            # Only the first is reported; `read_yaml` finds where it was written.
            self.alias_path = path if self.alias_path is None else self.alias_path
            return None
        self.seen.add(id(node))
        self.out.values[path] = self.mark(node)
        tag = node.tag
        if depth > MAX_DEPTH:
            self.problem(path, f"nested more than {MAX_DEPTH} levels deep", node)
        elif isinstance(node, yaml.ScalarNode) and tag in _SCALAR_TAGS:
            if tag in (_STR, _TIMESTAMP):
                return node.value  # a date-looking string stays the string it was
            return _SCALARS.yaml_constructors[tag](_SCALARS, node)
        elif isinstance(node, yaml.SequenceNode) and tag == _SEQ:
            return [self.value(item, join(path, i), depth + 1) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode) and tag == _MAP:
            return self.mapping(node, path, depth)
        else:
            self.problem(path, f"YAML tag {_tag_name(tag)} is not allowed in a plan", node)
        return None

    def mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            at = self.mark(key_node)
            if key_node.tag == _STD + "merge":
                message = "YAML merge keys (<<) are not allowed; use `defaults:`"
                self.problems.append(Problem(path, message, *at))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _SCALAR_TAGS:
                self.problems.append(Problem(path, "mapping keys must be plain text", *at))
                continue
            key = str(key_node.value)  # as written: `1:` is the key "1", `yes:` is "yes"
            sub = join(path, key)
            if key in out:
                first = self.out.keys[sub][0]
                message = f"duplicate key '{key}' (first given on line {first})"
                self.problems.append(Problem(sub, message, *at))
                continue
            self.out.keys[sub] = at
            out[key] = self.value(value_node, sub, depth + 1)
        return out


class _Unusual(Exception):
    """The text needs the careful reader (see the module docstring)."""


class _EventReader:
    """Plain data straight from the parser's events, with the careful reader's locations.

    Raises `_Unusual` at the first thing the careful reader would report or treat
    specially, so whatever this reader returns is what the careful one would.
    """

    def __init__(self, text: str, first_line: int, *, full: bool) -> None:
        self.loader = _LOADER(text)
        self.next = self.loader.get_event
        self.first_line = first_line
        self.full = full  # every location, or only the keys of the top two levels
        self.out = Located(None)
        self.keys, self.values = self.out._keys, self.out._values
        self.plain: dict[str, Any] = {}  # plain scalar text → its value, once per text
        if not full:
            self.out._rest = (text, first_line)

    def read(self) -> Located:
        try:
            self.next()  # stream start
            event = self.next()
            if type(event) is DocumentStartEvent:
                self.out.data = self.node(self.next(), "", 0)
                self.next()  # document end
                event = self.next()
            if type(event) is not StreamEndEvent:
                raise _Unusual  # a second document
            return self.out
        finally:
            self.loader.dispose()

    def resolve(self, text: str) -> Any:
        """The value of a plain scalar, typed as the safe loader types it."""
        tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
        if tag in (_STR, _TIMESTAMP):
            value: Any = text  # a date-looking string stays the string it was
        elif tag in _SCALAR_TAGS:
            value = _SCALARS.yaml_constructors[tag](_SCALARS, yaml.ScalarNode(tag, text))
        else:
            raise _Unusual  # a merge key (<<) or the value key (=)
        self.plain[text] = value
        return value

    def node(self, event: Any, path: str, depth: int) -> Any:
        kind = type(event)
        if depth > MAX_DEPTH or event.anchor is not None or event.tag is not None:
            raise _Unusual  # (an alias has an anchor too)
        if self.full:
            mark = event.start_mark
            self.values[path] = (mark.line + self.first_line, mark.column + 1)
        if kind is ScalarEvent:
            text = event.value
            if not event.implicit[0]:
                return text  # quoted or block text
            return self.plain[text] if text in self.plain else self.resolve(text)
        if kind is MappingStartEvent:
            return self.mapping(path, depth)
        if kind is not SequenceStartEvent:
            raise _Unusual
        return self.sequence(path, depth)

    # The two loops below read scalar values in line (most values are scalars); what
    # they do is what `node` does.

    def sequence(self, path: str, depth: int) -> list[Any]:
        items: list[Any] = []
        values, first_line, plain, next_event = self.values, self.first_line, self.plain, self.next
        inline = depth < MAX_DEPTH
        full = self.full
        located = full or depth < 2  # paths are needed only where something is recorded
        while True:
            event = next_event()
            kind = type(event)
            sub = f"{path}[{len(items)}]" if located else ""
            if kind is ScalarEvent and inline and event.anchor is None and event.tag is None:
                if full:
                    mark = event.start_mark
                    values[sub] = (mark.line + first_line, mark.column + 1)
                text = event.value
                if not event.implicit[0]:
                    items.append(text)
                else:
                    items.append(plain[text] if text in plain else self.resolve(text))
            elif kind is SequenceEndEvent:
                return items
            else:
                items.append(self.node(event, sub, depth + 1))

    def mapping(self, path: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys, values, first_line, plain, next_event = (
            self.keys,
            self.values,
            self.first_line,
            self.plain,
            self.next,
        )
        prefix = path + "." if path else ""
        inline = depth < MAX_DEPTH
        full = self.full
        located = full or depth < 2  # the keys of the top two levels are always recorded
        while True:
            event: Any = next_event()
            if type(event) is not ScalarEvent:
                if type(event) is MappingEndEvent:
                    return out
                raise _Unusual  # a key that is not plain text
            if event.anchor is not None or event.tag is not None:
                raise _Unusual
            key = event.value
            if event.implicit[0] and key not in plain:
                self.resolve(key)  # only to refuse `<<` and `=`
            if key in out:
                raise _Unusual  # a duplicate key
            sub = prefix + key if located else ""
            if located:
                mark: Any = event.start_mark
                keys[sub] = (mark.line + first_line, mark.column + 1)
            event = next_event()
            if type(event) is ScalarEvent and inline and event.anchor is None and event.tag is None:
                if full:
                    mark = event.start_mark
                    values[sub] = (mark.line + first_line, mark.column + 1)
                text = event.value
                if not event.implicit[0]:
                    out[key] = text
                else:
                    out[key] = plain[text] if text in plain else self.resolve(text)
            else:
                out[key] = self.node(event, sub, depth + 1)


def read_yaml(text: str, *, file: str | None = None, first_line: int = 1) -> Located:
    """Read one YAML document safely, keeping the location of every value.

    Raises PlanError for invalid YAML, aliases, custom tags, duplicate keys, deep
    nesting and text over `MAX_PLAN_BYTES`. `first_line` is the file line the text
    starts on (front matter starts on line 2).
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_PLAN_BYTES:
        message = f"is {size:,} bytes; plan files are capped at {MAX_PLAN_BYTES:,} bytes"
        raise PlanError([Problem("", message, first_line, 1)], file)
    try:
        return _EventReader(text, first_line, full=False).read()
    except (_Unusual, yaml.YAMLError, RecursionError):
        pass  # the careful reader below says what is wrong, exactly as it always has
    return _careful(text, file=file, first_line=first_line)


def _careful(text: str, *, file: str | None, first_line: int) -> Located:
    """Compose the node tree, then walk it, reporting every problem."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in str(exc.problem or ""):
            mark = exc.context_mark  # a quote or bracket never closed: where it opened
        what = ", ".join(str(p) for p in (exc.context, exc.problem) if p)
        if mark is not None and "\t" in _indent_of(text, mark.line):
            what += " (a tab indents this line: YAML indents with spaces only)"
        line = mark.line + first_line if mark else first_line
        column = mark.column + 1 if mark else 1
        raise PlanError([Problem("", f"not valid YAML: {what}", line, column)], file) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + first_line
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"not valid YAML: the control character U+{code:04X} is not allowed"
        raise PlanError([Problem("", message, line, None)], file) from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise PlanError([Problem("", f"not valid YAML: {exc}", first_line, 1)], file) from exc
    walker = _Walker(first_line)
    if node is not None:
        walker.out.data = walker.value(node, "", 0)
    if walker.alias_path is not None:
        walker.problems.append(_alias_problem(text, walker.alias_path, first_line))
    if walker.problems:
        raise PlanError(sorted(walker.problems, key=lambda p: p.line or 0), file)
    return walker.out


def _indent_of(text: str, line: int) -> str:
    """The leading white space of `text`'s line number `line` (0-based)."""
    lines = text.splitlines()
    row = lines[line] if 0 <= line < len(lines) else ""
    return row[: len(row) - len(row.lstrip(" \t"))]


def _alias_problem(text: str, path: str, first_line: int) -> Problem:
    """The first alias, located where it is written (composed nodes only know the anchor)."""
    line = column = None
    for event in yaml.parse(text, Loader=_LOADER):
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent) and mark is not None:
            line, column = mark.line + first_line, mark.column + 1
            break
    message = "YAML aliases (*name) are not allowed in a plan; write the value out"
    return Problem(path, message, line, column)
