"""Named segments from subscribers/segments.yaml: filters over list columns, compiled per file."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ComposeError, InvalidInput, Problem, suggest
from composer.issue.marks import MarkedYaml, read_marked_yaml

SEGMENTS_FILE = "segments.yaml"
INTERESTS = "interests"
STANDARD_COLUMNS = ("email", "name", "country", "organization", "language", "interests", "status")
# Columns of a million-row file can hold a million distinct values; stop remembering after this.
CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class Condition:
    """One `column: value(s)` line of a segment; the row must match any of the values."""

    column: str
    values: tuple[str, ...]
    line: int | None
    col: int | None


@dataclass(frozen=True)
class Segment:
    """A named filter: every condition must hold."""

    name: str
    conditions: tuple[Condition, ...]
    file: str
    line: int | None


# A compiled condition: column position, a memo of cell value -> verdict, and the test itself.
Test = tuple[int, dict[str, bool], Callable[[str], bool]]


@dataclass
class Segments:
    """Everything segments.yaml defines, with the problems found reading it."""

    file: str
    by_name: dict[str, Segment]
    problems: list[Problem]

    def get(self, name: str) -> Segment:
        """The segment called `name`; exit 1 with a did-you-mean when there is none."""
        if self.problems:
            raise InvalidInput(self.problems)
        segment = self.by_name.get(name)
        if segment is not None:
            return segment
        known = sorted(self.by_name)
        if not known:
            raise ComposeError(f"unknown segment '{name}': {self.file} defines no segments")
        hint = suggest(name, known, cutoff=0.5)
        fix = f"; did you mean '{hint}'?" if hint else ""
        raise ComposeError(
            f"unknown segment '{name}' (segments: {', '.join(known)}){fix}", self.file
        )

    def check_columns(self, known: Iterable[str]) -> list[Problem]:
        """Problems for conditions on columns that no list has (for `subscribers check`)."""
        columns = set(known) | set(STANDARD_COLUMNS)
        return [
            _unknown_column(self.file, c, sorted(columns), "no list has")
            for segment in self.by_name.values()
            for c in segment.conditions
            if c.column not in columns
        ]


def load_segments(subscribers_dir: Path, display: str, pillars: Iterable[str]) -> Segments:
    """Read segments.yaml (a missing file means no segments); problems are kept, not raised."""
    path = subscribers_dir / SEGMENTS_FILE
    if not path.is_file():
        return Segments(display, {}, [])
    doc = read_marked_yaml(path, display)
    segments: dict[str, Segment] = {}
    if not isinstance(doc.data, dict):
        doc.problem((), "segments.yaml must map segment names to their conditions")
        return Segments(display, {}, doc.problems)
    pillar_keys = list(pillars)
    for name, body in doc.data.items():
        conditions = _conditions(doc, str(name), body, pillar_keys)
        line, _ = doc.spot((name,), key=True)
        segments[str(name)] = Segment(str(name), tuple(conditions), display, line)
    return Segments(display, segments, doc.problems)


def _conditions(doc: MarkedYaml, name: str, body: object, pillars: list[str]) -> list[Condition]:
    if not isinstance(body, dict) or not body:
        doc.problem(
            (name,),
            f"segment '{name}' needs conditions such as 'country: Serbia' "
            "(leave out --segment to mean the whole list)",
        )
        return []
    conditions = []
    for raw_column, raw_values in body.items():
        path = (name, raw_column)
        items = raw_values if isinstance(raw_values, list) else [raw_values]
        values = []
        for n, item in enumerate(items):
            where = (*path, n) if isinstance(raw_values, list) else path
            if isinstance(item, bool) or item is None or isinstance(item, (dict, list)):
                doc.problem(
                    where,
                    f"'{raw_column}' value reads as {_yaml_reading(item)}; "
                    "write the text in quotes",
                )
                continue
            values.append(str(item).strip())
        if not items:
            doc.problem(path, f"'{raw_column}' has no values")
        column = str(raw_column).strip().lower()
        if column == INTERESTS:
            for n, value in enumerate(values):
                if value not in pillars:
                    where = (*path, n) if isinstance(raw_values, list) else path
                    doc.problem(where, f"'{value}' is not a pillar (pillars: {', '.join(pillars)})")
        line, col = doc.spot(path, key=True)
        conditions.append(Condition(column, tuple(values), line, col))
    return conditions


def compile_segment(segment: Segment, columns: list[str], list_display: str) -> list[Test]:
    """Tests for `segment` against a file with these columns; unknown columns are errors."""
    problems = [
        _unknown_column(segment.file, c, [n for n in columns if n], f"{list_display} does not have")
        for c in segment.conditions
        if c.column not in columns
    ]
    if problems:
        raise InvalidInput(problems)
    tests: list[Test] = []
    for condition in segment.conditions:
        wanted = frozenset(v.casefold() for v in condition.values)
        if condition.column == INTERESTS:
            test = _contains_test(wanted)
        else:
            test = _equals_test(wanted)
        tests.append((columns.index(condition.column), {}, test))
    return tests


def matches(tests: list[Test], row: list[str]) -> bool:
    """Whether every compiled test holds for `row`, judging each distinct cell value once."""
    for index, memo, test in tests:
        cell = row[index]
        verdict = memo.get(cell)
        if verdict is None:
            verdict = test(cell)
            if len(memo) < CACHE_LIMIT:
                memo[cell] = verdict
        if not verdict:
            return False
    return True


def _yaml_reading(item: object) -> str:
    if isinstance(item, bool):
        return "true/yes" if item else "false/no"
    return "nothing" if item is None else "a nested value"


def _equals_test(wanted: frozenset[str]) -> Callable[[str], bool]:
    return lambda cell: cell.strip().casefold() in wanted


def _contains_test(wanted: frozenset[str]) -> Callable[[str], bool]:
    return lambda cell: any(part.strip().casefold() in wanted for part in cell.split(";"))


def _unknown_column(file: str, condition: Condition, columns: list[str], where: str) -> Problem:
    hint = suggest(condition.column, columns)
    fix = f"; did you mean '{hint}'?" if hint else f" (columns: {', '.join(columns)})"
    return Problem(
        f"segment filters on column '{condition.column}', which {where}{fix}",
        file,
        condition.line,
        condition.col,
    )
