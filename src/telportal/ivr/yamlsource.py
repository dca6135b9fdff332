"""Flow YAML to plain data, keeping where every key and value was written.

`yaml.safe_load` forgets positions, so flows are composed into nodes (the compose API)
and converted here. Each value and each mapping key is remembered by its path from the
document root, e.g. `("steps", "main_menu", "options", "1")`, so any later check can
report `FILE:LINE:COL` for exactly the node it complains about.

Rules that keep flows safe and unambiguous:
- anchors and aliases are refused: they can expand into enormous documents ("billion
  laughs") and make one node sit at several paths;
- duplicate keys are errors (YAML would silently keep the last one);
- keys are always strings, as written: `1:` stays "1" and `010:` stays "010";
- dates and times stay as written (`2026-01-01`, `18:00`), because YAML 1.1 would turn
  `18:00` into the integer 1080 (base 60) and dates into objects.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from telportal.ivr.problems import Problem

PathKey = str | int
Path = tuple[PathKey, ...]
MAX_SOURCE_BYTES = 1_000_000
_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_RAW_TAGS = {"tag:yaml.org,2002:timestamp"}


@dataclass(frozen=True, slots=True)
class Position:
    """Where a node starts; 1-based, as editors show it."""

    line: int
    column: int
    # For scalars: whether the text sits on one line and how it is quoted, so that an
    # offset inside an expression can be turned into a column.
    single_line: bool = False
    quoted: bool = False

    def shifted(self, offset: int) -> "Position":
        if not self.single_line:
            return self
        return Position(self.line, self.column + offset + (1 if self.quoted else 0))


@dataclass(slots=True)
class SourceMap:
    filename: str
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def value(self, path: Path) -> Position:
        """Where the value at `path` starts, or its nearest enclosing node that exists."""
        for prefix in _prefixes(path):
            if prefix in self.values:
                return self.values[prefix]
        return Position(1, 1)

    def key(self, path: Path) -> Position:
        """Where the key naming `path` is written (the value if it is a list item)."""
        for prefix in _prefixes(path):
            if prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return Position(1, 1)

    def problem(
        self, path: Path, message: str, *, at_key: bool = False, offset: int = 0
    ) -> Problem:
        pos = self.key(path) if at_key else self.value(path)
        if offset:
            pos = pos.shifted(offset)
        return Problem(self.filename, pos.line, pos.column, message)


def _prefixes(path: Path) -> Iterator[Path]:
    for end in range(len(path), -1, -1):
        yield path[:end]


def _position(node: Node) -> Position:
    start, end = node.start_mark, node.end_mark
    if isinstance(node, ScalarNode):
        return Position(
            start.line + 1,
            start.column + 1,
            single_line=start.line == end.line,
            quoted=node.style in ("'", '"'),
        )
    return Position(start.line + 1, start.column + 1)


class _FlowLoader(yaml.SafeLoader):
    """Safe loading that remembers where aliases are used, to refuse them there."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_marks: list[yaml.Mark] = []

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            self.alias_marks.append(event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def load_yaml(text: str, filename: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Plain data (dicts, lists, str, int, float, bool, None), its source map, and problems."""
    source = SourceMap(filename)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        return None, source, [Problem(filename, 1, 1, "file is larger than 1 MB")]
    loader = _FlowLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return None, source, [Problem(filename, line, column, f"YAML: {message}")]
    except yaml.YAMLError as exc:
        return None, source, [Problem(filename, 1, 1, f"YAML: {exc}")]
    if root is None:
        return None, source, [Problem(filename, 1, 1, "the file is empty")]
    converter = _Converter(loader, source)
    for mark in loader.alias_marks:
        converter.problems.append(
            Problem(
                filename, mark.line + 1, mark.column + 1, "aliases (*name) are not allowed in flows"
            )
        )
    try:
        data = converter.convert(root, ())
    finally:
        loader.dispose()
    return data, source, converter.problems


class _Converter:
    def __init__(self, loader: _FlowLoader, source: SourceMap) -> None:
        self.loader = loader
        self.source = source
        self.problems: list[Problem] = []
        self.seen: set[int] = set()

    def _fail(self, node: Node, message: str) -> None:
        pos = _position(node)
        self.problems.append(Problem(self.source.filename, pos.line, pos.column, message))

    def convert(self, node: Node, path: Path) -> Any:
        if id(node) in self.seen:
            # An alias, reported where it is used; later problems point at its key.
            self.source.values[path] = self.source.keys.get(path, _position(node))
            return None
        self.seen.add(id(node))
        self.source.values[path] = _position(node)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                self._fail(key_node, "keys must be plain names or numbers")
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in result:
                first = self.source.keys[child]
                self._fail(key_node, f"duplicate key '{key}' (first at line {first.line})")
                continue
            self.source.keys[child] = _position(key_node)
            result[key] = self.convert(value_node, child)
        return result

    def _scalar(self, node: Node) -> Any:
        assert isinstance(node, ScalarNode)
        if node.tag in _RAW_TAGS:
            return str(node.value)
        if node.tag not in _PLAIN_TAGS:
            self._fail(node, f"unsupported YAML tag {node.tag}")
            return None
        if node.tag == "tag:yaml.org,2002:int" and ":" in node.value:
            return str(node.value)  # YAML 1.1 base-60 (18:00 == 1080): keep the text
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError):
            return str(node.value)
