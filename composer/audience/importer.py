"""Merge another CSV into a subscriber list: dedupe, report each row's fate, write atomically."""

from __future__ import annotations

import csv
import re
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self

from composer.atomic import AtomicFile
from composer.audience.forget import forgotten_check
from composer.audience.ledger import AddressLedger
from composer.audience.records import (
    BLOCK,
    EMAIL,
    CsvLines,
    Table,
    address_key,
    is_blank,
    list_writer,
    open_table,
)
from composer.audience.rowcheck import UNSUBSCRIBED, CellJudge, status_problem
from composer.audience.suppressions import SUPPRESSIONS_FILE
from composer.errors import ComposeError, InvalidInput, Problem, UsageError
from composer.project import Project, display_path

STATUS = "status"
_LIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FORGOTTEN = (
    "this address was erased at the reader's request (compose subscribers forget); "
    "not imported again"
)
_UNNAMED = re.compile(r"column\d+\Z")  # what records.open_table calls a column without a name


@dataclass
class ImportReport:
    """What an import did to a list, and why rows of the source were left out."""

    list_name: str
    path: Path
    created: bool = False
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Problem] = field(default_factory=list)  # source rows with errors
    notes: list[Problem] = field(default_factory=list)  # warnings: duplicates, kept unsubscribed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)


def import_list(project: Project, source: Path, list_name: str) -> ImportReport:
    """Merge `source` into list `list_name` (created if new); rows with errors are rejected.

    Streamed: the source is read twice (to check it and find its repeats, then to write its
    new readers) and the list twice; memory holds a hash of each address (`AddressLedger` and
    `_Updates`, under 100 bytes a row); source rows that update a known reader wait on disk.
    """
    name = list_name.removesuffix(".csv")
    if not _LIST_NAME.match(name) or f"{name}.csv" == SUPPRESSIONS_FILE:
        raise UsageError(f"'{list_name}' cannot be a list name (use letters, digits, - and _)")
    target = project.subscribers_dir / f"{name}.csv"
    report = ImportReport(name, target, created=not target.exists())
    judge = CellJudge(project.newsletter.pillars)
    from filelock import FileLock  # only writers need it; readers start faster

    lock = FileLock(str(project.state_dir() / f"list-{name}.lock"), timeout=60)
    with lock, tempfile.TemporaryDirectory(prefix="import-", dir=project.state_dir()) as spill:
        updates = _Updates(Path(spill) / "updates.csv", _list_hashes(target))
        with updates, AtomicFile(target) as out:
            survey = _survey(source, judge, report, updates, forgotten_check(project))
            if target.exists():
                with open_table(target, display_path(target)) as table:
                    header = _union(table.columns, survey.columns)
                    lines = _start(out, header, *list_writer(table))
                    for cells in _merge(table, updates, report):
                        out.write(lines.line([cells.get(c, "") for c in header]))
                    if table.problems:  # rewriting would drop the rows it could not read
                        raise _unreadable_list(table.problems)
            else:  # a new list takes the dialect of the spreadsheet it came from
                header = survey.columns
                lines = _start(out, header, *survey.dialect)
            repeats: list[Problem] = []
            for new in _new_rows(source, survey, updates, repeats):
                report.added += 1
                out.write(lines.line([new.get(c, "") for c in header]))
            report.notes[:0] = repeats  # in the source's order, before what the merge said
            if not report.changed:
                out.discard()  # leave a file that needs nothing untouched, byte for byte
    return report


@dataclass
class _Survey:
    """What the first pass over the source found: enough to write without holding its rows."""

    columns: list[str]  # the source's columns worth adding to the list
    rejected: set[int]  # lines of source rows with errors
    repeats: dict[int, int]  # line of a row repeating an earlier address -> that row's line
    stamp: tuple[int, int, int, int]  # the source file's identity
    dialect: tuple[str, CsvLines]  # the source's BOM and line writer: a new list keeps them


def _list_hashes(target: Path) -> array[int]:
    """The hash of the address key of every row of the list (whatever else the row holds)."""
    hashes = array("q")
    if target.exists():
        with open_table(target, display_path(target)) as table:
            ei = table.position(EMAIL)
            hashes.extend(hash(address_key(row[ei])) for _, row in table.rows() if row)
            if table.problems:
                raise _unreadable_list(table.problems)
    return array("q", sorted(hashes))


class _Updates:
    """Source rows for addresses the list may have, in a spill file on disk, found by hash.

    A million rows would not fit in memory; here each takes 20 bytes (its key's hash and its
    place in the file). The list's addresses are held as sorted hashes too: a hash match only
    says "maybe", and the keys themselves, stored with the rows, decide.
    """

    def __init__(self, path: Path, list_hashes: array[int]) -> None:
        self._path = path
        self._list = list_hashes
        self._hashes = array("q")  # of the kept rows' keys, in source order
        self._offsets = array("q")  # where each kept row starts in the spill file
        self._sizes = array("i")  # and how many bytes it takes
        self._source_lines = array("q")  # and its line in the source
        self._cursor = 0  # the first kept row `merged` has not passed yet
        self._taken = bytearray()  # whether a list row took each kept row
        self._search = array("q")  # (part of a row's hash, its number) packed, sorted
        self._shift = 1  # bits of a row's number in `_search`
        self._columns: list[str] = []
        self._lines = CsvLines()
        self._spill: BinaryIO | None = None
        self._size = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def may_know(self, key: str) -> bool:
        """Whether the list may have `key` (it surely has not when this is False)."""
        return _has(self._list, hash(key))

    def offer(self, key: str, columns: list[str], row: list[str], email: str, line: int) -> None:
        """Keep the source row of `key` (at `line`), which the list may have, for the merge."""
        if self._spill is None:
            self._spill = self._path.open("w+b")
            self._columns = columns
        values = [email if c == EMAIL else row[i].strip() for i, c in enumerate(columns)]
        data = self._lines.line([key, *values]).encode("utf-8")
        self._spill.write(data)
        self._hashes.append(hash(key))
        self._offsets.append(self._size)
        self._sizes.append(len(data))
        self._source_lines.append(line)
        self._size += len(data)

    def sort(self) -> None:
        """Make the kept rows searchable: call once every row has been offered."""
        # One sorted array of (hash bits, row number) and no permutation of the others: the
        # hash bits left out only add candidates, which the keys then tell apart.
        self._shift = max(1, len(self._hashes).bit_length())
        mask = (1 << (63 - self._shift)) - 1
        packed = sorted(((h & mask) << self._shift) | n for n, h in enumerate(self._hashes))
        self._search = array("q", packed)
        del packed
        self._hashes = array("q")
        self._taken = bytearray(len(self._offsets))
        if self._spill is not None:
            self._spill.flush()

    def take(self, key: str) -> dict[str, str] | None:
        """The row kept first for `key`, once: a later list row with that address gets None."""
        for n in self._candidates(key):
            stored, *values = self._read(n)
            if stored == key:
                if self._taken[n]:
                    return None
                self._taken[n] = 1
                return dict(zip(self._columns, values, strict=True))
        return None

    def merged(self, line: int) -> bool:
        """Whether a list row took the source row at `line`; ask in the source's order."""
        lines, n = self._source_lines, self._cursor
        while n < len(lines) and lines[n] < line:
            n += 1
        self._cursor = n
        return n < len(lines) and lines[n] == line and bool(self._taken[n])

    def _candidates(self, key: str) -> list[int]:
        """The numbers of the kept rows whose key may be `key`, in source order."""
        shift = self._shift
        part = hash(key) & ((1 << (63 - shift)) - 1)
        start = bisect_left(self._search, part << shift)
        stop = bisect_left(self._search, (part + 1) << shift, lo=start)
        low = (1 << shift) - 1
        return [self._search[at] & low for at in range(start, stop)]

    def _read(self, n: int) -> list[str]:
        assert self._spill is not None
        self._spill.seek(self._offsets[n])
        text = self._spill.read(self._sizes[n]).decode("utf-8")
        return next(csv.reader([text], strict=True))


def _has(hashes: array[int], value: int) -> bool:
    at = bisect_left(hashes, value)
    return at < len(hashes) and hashes[at] == value


def _unreadable_list(problems: list[Problem]) -> InvalidInput:
    return InvalidInput([*problems, Problem("fix these rows of the list before importing into it")])


def _survey(
    source: Path,
    judge: CellJudge,
    report: ImportReport,
    updates: _Updates,
    forgotten: Callable[[str], bool] | None = None,
) -> _Survey:
    """Check every source row once, find its repeats exactly, keep the rows the list may have.

    A row of an address erased by `compose subscribers forget` (`forgotten`) is rejected.
    """
    rejected: set[int] = set()
    with open_table(source, display_path(source)) as table:
        stamp = table.identity()
        ei, ii, si = table.position(EMAIL), table.index("interests"), table.index(STATUS)
        # Where each unnamed column has a value: kept only if a row that counts fills it.
        unnamed = {i: array("q") for i, c in enumerate(table.columns) if _UNNAMED.match(c)}
        ledger = AddressLedger(table.expected_rows)
        keys: list[str] = []
        hashes: list[int] = []
        lines = array("q")
        for line, row in table.rows():
            if not row or is_blank(row):
                continue
            email = row[ei].strip()
            reasons = [judge.address_problem(email)]
            if ii is not None:
                reasons.append(judge.interests_problem(row[ii]))
            if si is not None and judge.subscribed(row[si]) is None:
                reasons.append(status_problem(row[si]))
            errors = [Problem(r, table.display, line) for r in reasons if r]
            if errors:
                report.rejected.extend(errors)
                rejected.add(line)
                continue
            key = address_key(email)
            if forgotten is not None and forgotten(key):
                report.rejected.append(Problem(_FORGOTTEN, table.display, line))
                rejected.add(line)
                continue
            if updates.may_know(key):
                updates.offer(key, table.columns, row, email, line)
            for i, filled in unnamed.items():
                if row[i].strip():
                    filled.append(line)
            keys.append(key)
            hashes.append(hash(key))
            lines.append(line)
            if len(keys) == BLOCK:
                _record(ledger, keys, hashes, lines)
                keys, hashes, lines = [], [], array("q")
        _record(ledger, keys, hashes, lines)
        report.rejected.extend(table.problems)
        report.notes.extend(table.notes)  # read in a Windows code page: said, as `send` says it
        dialect = list_writer(table)
        repeats = {
            ledger.line_of(ordinal): ledger.line_of(first)
            for ordinal, first in sorted(ledger.repeats().items())
        }
        del ledger  # before the updates are sorted: the two are the peak of an import
        # A spreadsheet's trailing empty, unnamed column is not worth adding to the list.
        columns = [
            c
            for i, c in enumerate(table.columns)
            if i not in unnamed or any(line not in repeats for line in unnamed[i])
        ]
    report.rejected.sort(key=lambda p: p.line or 0)
    updates.sort()
    return _Survey(columns, rejected, repeats, stamp, dialect)


def _record(ledger: AddressLedger, keys: list[str], hashes: list[int], lines: array[int]) -> None:
    if keys:
        ledger.add_block("\n".join(keys), lines)  # a valid address never holds a line break
        ledger.add_hashes(hashes)


def _cells(columns: list[str], row: list[str], email: str) -> list[tuple[str, str]]:
    """(column, trimmed value) of a source row, its address as checked."""
    return [(c, email if c == EMAIL else row[i].strip()) for i, c in enumerate(columns)]


def _new_rows(
    source: Path, survey: _Survey, updates: _Updates, repeats: list[Problem]
) -> Iterator[dict[str, str]]:
    """The source's rows for addresses the list does not have, first of each, in order; each
    repeat of an earlier row becomes a warning in `repeats`."""
    display = display_path(source)
    with open_table(source, display) as table:
        if table.identity() != survey.stamp:
            raise ComposeError(f"{display} changed while it was imported; run the command again")
        ei = table.position(EMAIL)
        for line, row in table.rows():
            if not row or line in survey.rejected or is_blank(row):
                continue
            email = row[ei].strip()
            first = survey.repeats.get(line)
            if first is not None:
                message = f"duplicate of line {first} ({email}); the first row wins"
                repeats.append(Problem(message, display, line, severity="warning"))
                continue
            if not updates.merged(line):
                yield dict(_cells(table.columns, row, email))


def _merge(table: Table, updates: _Updates, report: ImportReport) -> Iterator[dict[str, str]]:
    """The list's rows with the source rows for their addresses merged in (first row only)."""
    ei = table.position(EMAIL)
    for line, row in table.rows():
        if not row:
            continue
        cells = dict(zip(table.columns, row, strict=True))
        key = address_key(row[ei])
        update = updates.take(key)  # later duplicates in the list are left as they are
        if update is None:
            yield cells
            continue
        changed = False
        for column, value in update.items():
            if column == EMAIL or not value or cells.get(column, "").strip() == value:
                continue
            if column == STATUS and cells.get(STATUS, "").strip().lower() == UNSUBSCRIBED:
                message = (
                    f"{update[EMAIL]} stays unsubscribed (line {line} of {table.display}); "
                    "an import never re-subscribes a reader"
                )
                report.notes.append(Problem(message, severity="warning"))
                continue
            cells[column] = value
            changed = True
        report.updated += changed
        report.unchanged += not changed
        yield cells


def _union(existing: list[str], extra: list[str]) -> list[str]:
    return [*existing, *(c for c in extra if c not in existing)]


def _start(out: AtomicFile, header: list[str], bom: str, lines: CsvLines) -> CsvLines:
    """Write the BOM (if the list keeps one) and the header; the writer for the rows."""
    out.write(bom + lines.line(header))
    return lines
