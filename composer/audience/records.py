"""Read subscriber CSV files the way people really save them, and write them back atomically."""

from __future__ import annotations

import csv
import io
import os
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Self, TextIO

from composer.errors import InvalidInput, Problem, suggest

EMAIL = "email"
BLOCK = 128  # lines split and judged together: enough to amortize, few enough to stay in cache
_CHUNK_CHARS = 1 << 18  # characters read at a time


def address_key(email: str) -> str:
    """The form of an address used to compare, dedupe and log it: trimmed, NFC, lowercased."""
    email = email.strip()
    if not email.isascii():
        email = unicodedata.normalize("NFC", email)
    return email.lower()


def is_blank(row: list[str]) -> bool:
    """Whether a row is a blank line or only empty cells (a spreadsheet's trailing rows)."""
    return not any(cell.strip() for cell in row)


class LineSource:
    """The physical lines of a text file opened with newline="", read in large chunks.

    `take(n)` hands out up to n lines of the current chunk without their line ends (one
    split per chunk, instead of one read per line), or None for a chunk with lone CR line
    ends, whose lines must be iterated. Iterating hands out one line with its end, which is
    what csv.reader wants. Lines end at LF, CRLF or CR, as csv.reader sees them.
    """

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._lines: list[str] = []
        self._pos = 0
        self._end = "\n"  # the current chunk's line end; "" when its lines keep their own
        self._rest = ""  # the start of a line whose end is in the next read
        self.plain = True  # the current chunk has no quote and no NUL: no line needs csv

    def take(self, count: int) -> list[str] | None:
        """Up to `count` lines without ends ([] at the end of the file), or None (see above)."""
        if self._pos >= len(self._lines) and not self._fill():
            return []
        if not self._end:
            return None
        lines = self._lines[self._pos : self._pos + count]
        self._pos += len(lines)
        return lines

    def ending(self) -> str:
        """The line end of the chunk `take` last read from."""
        return self._end

    def __iter__(self) -> LineSource:
        return self

    def __next__(self) -> str:
        if self._pos >= len(self._lines) and not self._fill():
            raise StopIteration
        line = self._lines[self._pos]
        self._pos += 1
        return line + self._end

    def _fill(self) -> bool:
        """Read the next chunk of whole lines; False at the end of the file."""
        text = ""
        while not text:
            data = self._handle.read(_CHUNK_CHARS)
            if not data:
                text, self._rest = self._rest, ""
                if not text:
                    return False
                break
            data = self._rest + data
            # Cut after the last line end; a final CR might be the first half of a CRLF.
            cut = max(data.rfind("\n"), data.rfind("\r", 0, len(data) - 1)) + 1
            text, self._rest = data[:cut], data[cut:]
        if "\r" not in text:
            self._end, lines = "\n", text.split("\n")
        elif text.count("\r") == text.count("\r\n") == text.count("\n"):
            self._end, lines = "\r\n", text.split("\r\n")
        else:  # lone CRs: let io split it exactly as the file would be
            self._end, lines = "", list(io.StringIO(text, newline=""))
        if self._end and lines[-1] == "":
            lines.pop()  # the empty remainder after the final line end
        self._lines, self._pos = lines, 0
        self.plain = '"' not in text and "\0" not in text
        return True


class _Feed:
    """Hands csv.reader the lines of one quoted record: a pushed-back line, then the file's."""

    __slots__ = ("count", "lines", "pending")

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines: Iterator[str] = lines
        self.pending: str | None = None
        self.count = 0  # lines handed out since the caller last reset it

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        line = self.pending
        if line is None:
            line = next(self.lines)
        else:
            self.pending = None
        self.count += 1
        return line


@dataclass
class Table:
    """An open CSV file: its normalized header and a stream of data rows with their lines.

    Lines without a quote character are split directly (what csv.reader would make of them,
    at a third of the cost); any line with a quote goes through csv.reader, which may pull
    further lines for a quoted field that spans them.
    """

    path: Path
    display: str
    columns: list[str]  # lowercased, trimmed header names; "columnN" for unnamed ones
    problems: list[Problem] = field(default_factory=list)
    crlf: bool = False
    bom: bool = False
    expected_rows: int = 0  # an estimate from the file size and the first lines' length
    _handle: TextIO | None = None
    _source: LineSource | None = None
    _feed: _Feed | None = None
    _line: int = 1  # physical lines consumed so far

    def index(self, column: str) -> int | None:
        """Position of `column` in the header, or None when the file has no such column."""
        try:
            return self.columns.index(column)
        except ValueError:
            return None

    def position(self, column: str) -> int:
        """Position of a column that `open_table` required (so the header has it)."""
        return self.columns.index(column)

    def identity(self) -> tuple[int, int, int, int]:
        """Device, inode, size and modification time of the open file: equal means unchanged."""
        assert self._handle is not None, "table is closed"
        info = os.fstat(self._handle.fileno())
        return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(physical start line, cells padded to the header width) for each record.

        Blank lines are skipped; a full-width row of empty cells is not (see `is_blank`).
        An unreadable record is reported in `problems` and yielded with no cells.
        """
        for lines, rows in self.blocks():
            yield from zip(lines, rows)

    def blocks(self) -> Iterator[tuple[Sequence[int], list[list[str]]]]:
        """The records of `rows()` in blocks of up to BLOCK lines: (start lines, rows).

        A block of plain lines (no quote, every row as wide as the header, the common case)
        is split in one go; any other block is read record by record. Block split: 1M rows
        counted in 2.18 s CPU vs 2.67 s record by record (benchmarks/subscribers.py, 2026-12-02).
        """
        assert self._source is not None, "table is closed"
        source = self._source
        width = len(self.columns)
        try:
            while (block := source.take(BLOCK)) != []:
                if block is None:  # lines with lone CR ends: one by one
                    yield self._block_of(list(self._one_by_one(source, BLOCK)))
                    continue
                if source.plain or ('"' not in (text := "\n".join(block)) and "\0" not in text):
                    rows = list(map(str.split, block, repeat(",")))
                    if min(map(len, rows)) == width == max(map(len, rows)):
                        first = self._line + 1
                        self._line += len(block)
                        yield range(first, first + len(block)), rows
                        continue
                end = source.ending()
                lines = chain([line + end for line in block], source)
                yield self._block_of(list(self._one_by_one(lines, len(block))))
        except UnicodeDecodeError as exc:
            problem = _decode_problem(self.path, self.display, exc)
            raise InvalidInput([*self.problems, problem]) from None

    @staticmethod
    def _block_of(records: list[tuple[int, list[str]]]) -> tuple[list[int], list[list[str]]]:
        return [line for line, _ in records], [row for _, row in records]

    def _one_by_one(self, source: Iterator[str], count: int) -> Iterator[tuple[int, list[str]]]:
        """Records from `source` until `count` lines are used (a quoted field may use more)."""
        feed = self._feed
        assert feed is not None
        outer, feed.lines = feed.lines, source
        reader = csv.reader(feed, strict=True)
        width = len(self.columns)
        end = self._line + count
        try:
            while self._line < end:
                text = next(source, None)
                if text is None:
                    return
                self._line += 1
                start = self._line
                if '"' not in text and "\0" not in text:
                    row = text.rstrip("\r\n").split(",")
                else:
                    feed.pending, feed.count = text, 0
                    try:
                        row = next(reader)
                    except csv.Error as exc:
                        self._line = start + feed.count - 1
                        self.problems.append(_csv_problem(exc, self.display, start, self._line))
                        yield start, []
                        continue
                    self._line = start + feed.count - 1
                if len(row) == width:
                    yield start, row
                else:
                    yield from self._odd(row, start, width)
        finally:
            feed.lines = outer

    def _odd(self, row: list[str], line: int, width: int) -> Iterator[tuple[int, list[str]]]:
        """A row of the wrong width: blank (skipped), short (padded) or long (an error)."""
        if is_blank(row):
            return
        if len(row) < width:
            yield line, row + [""] * (width - len(row))
            return
        message = (
            f"row has {len(row)} fields but the header has {width}; "
            "quote values that contain commas"
        )
        self.problems.append(Problem(message, self.display, line))
        yield line, []  # the caller counts it as invalid

    def close(self) -> None:
        """Close the underlying file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._source = self._feed = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_table(path: Path, display: str, *, required: Iterable[str] = (EMAIL,)) -> Table:
    """Open `path` as a CSV table; raise InvalidInput when the header itself is unusable."""
    try:
        with path.open("rb") as raw:
            head = raw.read(64 * 1024)
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput([Problem(f"cannot read file: {exc.strerror}", display)]) from None
    source = LineSource(handle)
    feed = _Feed(source)
    try:
        header = next(csv.reader(feed, strict=True), None)
    except UnicodeDecodeError as exc:
        handle.close()
        raise InvalidInput([_decode_problem(path, display, exc)]) from None
    except csv.Error as exc:
        handle.close()
        raise InvalidInput([Problem(f"unreadable header: {exc}", display, 1)]) from None
    if header is None:
        handle.close()
        raise InvalidInput(
            [Problem("file is empty; the first line must name the columns", display, 1)]
        )
    # An unnamed column still holds data: give it a name so nothing is dropped on rewrite.
    columns = [cell.strip().lower() or f"column{n}" for n, cell in enumerate(header, 1)]
    table = Table(
        path, display, columns, crlf=b"\r\n" in head, bom=head.startswith(b"\xef\xbb\xbf")
    )
    line_length = len(head) / max(1, head.count(b"\n"))
    table.expected_rows = int(path.stat().st_size / max(line_length, 1.0)) + 1
    table._handle, table._source, table._feed, table._line = handle, source, feed, feed.count
    header_problems = _header_problems(columns, display, required)
    if header_problems:
        table.close()
        raise InvalidInput(header_problems)
    return table


class CsvLines:
    """Rows as CSV text with the given line end, a field holding CR or LF always quoted.

    (csv.writer quotes a field only for the characters of *its* line terminator, so with "\n"
    it would write a lone CR unquoted, and the file would read back as two broken rows.)
    """

    def __init__(self, newline: str = "\n") -> None:
        self._newline = newline
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def line(self, row: Iterable[str]) -> str:
        """One row as CSV text, ending with the line end."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(row)
        return self._buffer.getvalue()[:-2] + self._newline


# What a spreadsheet takes for the start of a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """`value` as a spreadsheet shows it and never runs it: a formula gets a leading `'`."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


class ExportLines(CsvLines):
    """CSV for people to open in a spreadsheet: each cell `spreadsheet_safe`.

    Only for exports. The files we read back (lists, suppressions.csv) are written with
    `CsvLines` and keep every value exactly as it is.
    """

    def line(self, row: Iterable[str]) -> str:
        """One row as CSV text, formulas neutralised, ending with the line end."""
        return super().line(map(spreadsheet_safe, row))


# Tab-separated text has no quoting: a tab or line break inside a value would start a new
# cell or row (and a row may start with a formula), so each becomes a space.
_ONE_CELL = str.maketrans({"\t": " ", "\r": " ", "\n": " "})


def export_tsv_line(row: Iterable[str]) -> str:
    """One row as tab-separated text for people (no line end): each cell one spreadsheet-safe
    line."""
    return "\t".join(spreadsheet_safe(cell.translate(_ONE_CELL)) for cell in row)


def _header_problems(columns: list[str], display: str, required: Iterable[str]) -> list[Problem]:
    problems = []
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            problems.append(Problem(f"column '{column}' appears twice in the header", display, 1))
        seen.add(column)
    for column in required:
        if column not in seen:
            hint = suggest(column, columns, cutoff=0.5)
            fix = f"; did you mean '{hint}'? rename it to '{column}'" if hint else ""
            named = ", ".join(c for c in columns if c) or "none"
            problems.append(
                Problem(f"no '{column}' column in the header (columns: {named}){fix}", display, 1)
            )
    return problems


def _decode_problem(path: Path, display: str, exc: UnicodeDecodeError) -> Problem:
    """Where the first byte that is not UTF-8 is: its physical line, found by reading again."""
    byte = f"0x{exc.object[exc.start]:02x}"
    with path.open("rb") as raw:
        for number, line in enumerate(raw, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                byte = f"0x{line[bad.start]:02x}"
                return Problem(
                    f"not UTF-8 text (byte {byte}); save the file as UTF-8", display, number
                )
    return Problem(f"not UTF-8 text (byte {byte}); save the file as UTF-8", display)


def _csv_problem(exc: csv.Error, display: str, start: int, end: int) -> Problem:
    text = str(exc)
    # A field over csv's size limit (128 KB) is a quote that swallowed the rest of the file.
    if "unexpected end of data" in text or "field larger than field limit" in text:
        message = (
            f"a quoted field opened here is never closed (it runs to line {end}); "
            'close the quote or write a literal quote as ""'
        )
    elif "expected after" in text:
        message = f'stray quote in a field ({text}); quote the whole field and write a quote as ""'
    else:
        message = f"unreadable row: {text}"
    return Problem(message, display, start)
