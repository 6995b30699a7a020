"""YAML read safely, with the line and column of every key and value.

Plans and profile front matter are read here. A plan is trusted no more than any
file in a repository: aliases (and with them "billion laughs"), custom tags,
duplicate keys, deep nesting and oversized text are refused with a located
`Problem` each, before any value is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from plait.errors import PlanError, Problem

MAX_PLAN_BYTES = 2 * 1024 * 1024  # a plan, or a prompt_file, larger than this is refused
MAX_DEPTH = 32  # YAML nesting; real plans need about 6

_STD = "tag:yaml.org,2002:"
_STR, _TIMESTAMP, _SEQ, _MAP = (_STD + t for t in ("str", "timestamp", "seq", "map"))
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
# libyaml when present: about 3x faster, and it caps nesting itself.
_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.constructor.SafeConstructor()


@dataclass
class Located:
    """Plain YAML data plus the 1-based (line, column) of every key and value by field path."""

    data: Any
    keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    values: dict[str, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: str) -> tuple[int | None, int | None]:
        """The location of `path`, else of its nearest located parent."""
        while True:
            found = self.keys.get(path) or self.values.get(path)
            if found:
                return found
            if not path:
                return None, None
            path = _parent(path)


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
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(str(p) for p in (exc.context, exc.problem) if p)
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
