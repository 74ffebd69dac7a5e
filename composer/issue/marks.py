"""Read a YAML file into plain data plus the line and column of every key and value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from composer.errors import InvalidInput, Problem
from composer.issue import syntax

Path_ = tuple[str | int, ...]  # a place in the data: keys and list indexes from the root

_LEADING_TAB = re.compile(r"^ *\t")
MAX_DEPTH = 64  # issue files nest about 8 deep; a bound keeps hostile nesting from recursing
MAX_FILE_BYTES = 4 * 1024 * 1024  # the longest seed issue is 60 KB


class _Refused(yaml.MarkedYAMLError):
    """YAML that parses but that we refuse to build (aliases, nesting past MAX_DEPTH)."""


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader's composer without aliases or unbounded nesting.

    An alias repeats a node wherever it is used, so a few hundred bytes of anchors and aliases
    expand to gigabytes (a "billion laughs"); newsletter files have no use for them.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                problem=f"YAML aliases (*{event.anchor}) are not allowed; write the value out",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    problem=f"nested more than {MAX_DEPTH} levels deep",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass
class Spot:
    """Where a value (and the key naming it, for mapping entries) stands in the file."""

    line: int  # 1-based
    col: int  # 1-based
    key_line: int | None = None
    key_col: int | None = None
    block: bool = False  # a literal/folded block scalar: its text starts on the next line


@dataclass
class MarkedYaml:
    """Plain data from a YAML file with a Spot for every path; problems found while reading."""

    file: str
    data: object
    spots: dict[Path_, Spot]
    lines: list[str]
    problems: list[Problem] = field(default_factory=list)
    bad_paths: set[Path_] = field(default_factory=set)  # already reported, skip further checks
    # The text of every number as written: `sdg: 16.10` is the float 16.1 to YAML, "16.10" here.
    number_texts: dict[Path_, str] = field(default_factory=dict)

    def spot(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Line and column of `path`, or of its nearest ancestor that the file has."""
        for cut in range(len(path), -1, -1):
            found = self.spots.get(path[:cut])
            if found is not None:
                if key and cut == len(path) and found.key_line is not None:
                    return found.key_line, found.key_col
                return found.line, found.col
        return None, None

    def problem(
        self, path: Path_, message: str, *, key: bool = False, warning: bool = False
    ) -> None:
        if path in self.bad_paths and not warning:
            return  # one line per mistake: this place has been reported already
        line, col = self.spot(path, key=key)
        severity = "warning" if warning else "error"
        self.problems.append(Problem(message, self.file, line, col, severity))


def read_marked_yaml(path: Path, display: str | None = None) -> MarkedYaml:
    """Parse `path`; raise InvalidInput for unreadable, empty or syntactically broken files."""
    name = display or str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput([Problem(f"cannot read file: {exc.strerror}", name)]) from None
    if len(raw) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise InvalidInput(
            [Problem(f"file is larger than {limit} MB; is it the right file?", name)]
        )
    text = _decode(raw, name)
    lines = text.splitlines()
    tabs = [
        Problem(
            "tab character in indentation; YAML indents with spaces", name, n, line.index("\t") + 1
        )
        for n, line in enumerate(lines, 1)
        if _LEADING_TAB.match(line)
    ]
    if tabs:
        raise InvalidInput(tabs)
    if not text.strip() or all(ln.lstrip().startswith("#") or not ln.strip() for ln in lines):
        raise InvalidInput([Problem("file is empty", name, 1, 1)])
    try:
        loader = _GuardedLoader(text)  # checks every character first
    except yaml.reader.ReaderError as exc:
        raise InvalidInput([_character_problem(exc, text, name)]) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput([_syntax_problem(exc, name, lines)]) from None
    finally:
        loader.dispose()
    result = MarkedYaml(name, None, {}, lines)
    if node is None:
        raise InvalidInput([Problem("file is empty", name, 1, 1)])
    result.data = _construct(node, (), result, yaml.SafeLoader(""))
    result.spots.setdefault((), Spot(node.start_mark.line + 1, node.start_mark.column + 1))
    return result


def _decode(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", errors="replace")
        line = before.count("\n") + 1
        col = len(before) - (before.rfind("\n") + 1) + 1
        byte = raw[exc.start]
        raise InvalidInput(
            [
                Problem(
                    f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8", name, line, col
                )
            ]
        ) from None
    return text.removeprefix("\ufeff")


def _character_problem(exc: yaml.reader.ReaderError, text: str, name: str) -> Problem:
    """A character YAML forbids (NUL and other control characters), with where it stands."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    col = exc.position - (before.rfind("\n") + 1) + 1
    character = exc.character if isinstance(exc.character, str) else chr(exc.character)
    return Problem(
        f"control character U+{ord(character):04X} is not allowed in YAML; delete it",
        name,
        line,
        col,
    )


def _syntax_problem(exc: yaml.MarkedYAMLError, name: str, lines: list[str]) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if isinstance(exc, _Refused) and mark is not None:
        return Problem(exc.problem or "refused", name, mark.line + 1, mark.column + 1)
    message, line, col = syntax.explain(exc, lines)
    return Problem(message, name, line, col)


def _construct(node: yaml.Node, path: Path_, doc: MarkedYaml, loader: yaml.SafeLoader) -> object:
    if isinstance(node, yaml.MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                doc.problems.append(Problem("a key must be plain text", doc.file, line, col))
                continue
            key = str(key_node.value)
            kpath = (*path, key)
            kspot = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key == "<<":
                doc.problems.append(
                    Problem("YAML merge keys (<<) are not supported", doc.file, *kspot)
                )
                continue
            if key in result:
                first = doc.spots[kpath].key_line
                doc.problems.append(
                    Problem(f"duplicate key '{key}' (first at line {first})", doc.file, *kspot)
                )
                continue
            doc.spots[kpath] = Spot(
                value_node.start_mark.line + 1,
                value_node.start_mark.column + 1,
                *kspot,
                block=isinstance(value_node, yaml.ScalarNode) and value_node.style in ("|", ">"),
            )
            result[key] = _construct(value_node, kpath, doc, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            ipath = (*path, index)
            doc.spots[ipath] = Spot(item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_construct(item, ipath, doc, loader))
        return items
    try:
        value = loader.construct_object(node, deep=True)
    except ValueError:
        # PyYAML resolves 2026-13-45 as a timestamp and then fails with a bare ValueError.
        doc.problem(path, f"impossible date '{node.value}'; write a real date as YYYY-MM-DD")
        doc.bad_paths.add(path)
        return node.value
    except yaml.constructor.ConstructorError as exc:
        doc.problem(path, f"cannot read value: {exc.problem}")
        doc.bad_paths.add(path)
        return node.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        doc.number_texts[path] = str(node.value)
    return value
