"""Read subscriber CSV files the way people really save them, and write them back atomically."""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from pathlib import Path
from typing import Self

from composer.audience.encodings import (
    LEGACY_NAMES,
    SAVE_AS_CSV,
    DecodeFailure,
    binary_kind,
    decode_problem,
    legacy_codec,
    legacy_note,
    text_codec,
)
from composer.errors import InvalidInput, Problem, suggest

EMAIL = "email"
NAME = "name"
BLOCK = 128  # lines split and judged together: enough to amortize, few enough to stay in cache
_CHUNK_CHARS = 1 << 18  # bytes read at a time
DELIMITERS = (",", ";", "\t")  # in order of preference when a header has as many of each
_DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}
# Header spellings of the e-mail and name columns that people, Excel and Outlook write, compared
# with case, spaces, hyphens and underscores ignored ("E-mail Address" -> "emailaddress").
ALIASES = {
    "email": EMAIL,
    "mail": EMAIL,
    "emailaddress": EMAIL,
    "mailaddress": EMAIL,
    "name": NAME,
    "fullname": NAME,
    "displayname": NAME,
}
_SQUEEZE = re.compile(r"[\s_-]+")
_QUOTED = re.compile(r'"[^"]*(?:"|$)')


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
    """The physical lines of a text file, decoded and read in large chunks.

    `take(n)` hands out up to n lines of the current chunk without their line ends (one
    split per chunk, instead of one read per line), or None for a chunk with lone CR line
    ends, whose lines must be iterated. Iterating hands out one line with its end, which is
    what csv.reader wants. Lines end at LF, CRLF or CR, as csv.reader sees them.

    With `fallback`, a file that is not UTF-8 is read in a Windows code page instead: bytes are
    decoded as UTF-8 until the first one that is not, and if every byte before it was ASCII
    (so both readings agree on them), the rest is read as Windows-1250 or -1252, chosen from
    the bytes ahead (see `legacy_codec`); `legacy` then names it.
    """

    def __init__(self, raw: io.FileIO, codec: str, *, fallback: bool = False) -> None:
        self._raw = raw
        # UTF-8 is decoded directly (see `_read`); other codecs incrementally.
        self._decoder = None if codec == "utf-8" else codecs.getincrementaldecoder(codec)()
        self._pending = b""  # bytes of a UTF-8 character that the next read completes
        self._fallback = fallback
        self._offset = raw.tell()  # bytes read so far
        self._buffer = bytearray(_CHUNK_CHARS)
        self._view = memoryview(self._buffer)
        self.legacy: str | None = None  # the Windows code page switched to, if any
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

    def _read(self) -> tuple[str, bool]:
        """The next chunk of text, and whether the file has ended."""
        # One buffer, refilled, decoded in place: a fresh 256 KB bytes object per read (or per
        # incremental decode, which copies) costs more than the decoding.
        size = self._raw.readinto(self._buffer) or 0
        data: memoryview | bytes = self._view[:size]
        start = self._offset - len(self._pending)
        self._offset += size
        if self._pending:  # the start of a character cut by the previous read
            data = self._pending + data
        try:
            if self._decoder is None:
                text, used = codecs.utf_8_decode(data, "strict", not size)
                self._pending = bytes(data[used:])
            else:
                text = self._decoder.decode(data, not size)
        except UnicodeDecodeError as exc:
            decoder = self._switch(data, exc.start, start)
            try:
                text = decoder.decode(data, not size)
            except UnicodeDecodeError as bad:
                raise DecodeFailure(start + bad.start) from None
        else:
            if self._fallback and not text.isascii():
                self._fallback = False  # UTF-8 beyond ASCII: a later bad byte is an error
        return text, not size

    def _switch(self, data: memoryview | bytes, bad: int, start: int) -> codecs.IncrementalDecoder:
        """The decoder of the Windows code page to read on in, from the first byte UTF-8
        cannot read (`bad` into `data`, which starts `start` bytes into the file)."""
        # Only a file that was all ASCII so far may switch: what was read reads the same.
        if not self._fallback or not bytes(data[:bad]).isascii():
            raise DecodeFailure(start + bad)
        codec = legacy_codec(os.pread(self._raw.fileno(), 1 << 20, start))
        if codec is None:
            raise DecodeFailure(start + bad)
        self.legacy, self._fallback, self._pending = codec, False, b""
        self._decoder = codecs.getincrementaldecoder(codec)()
        return self._decoder

    def _fill(self) -> bool:
        """Read the next chunk of whole lines; False at the end of the file."""
        text = ""
        while not text:
            data, ended = self._read()
            if ended:
                text, self._rest = self._rest + data, ""
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
    problems: list[Problem] = field(default_factory=list)  # rows that could not be read
    crlf: bool = False
    bom: bool = False
    expected_rows: int = 0  # an estimate from the file size and the first lines' length
    delimiter: str = ","  # sniffed from the header line: "," ";" or a tab
    header: list[str] = field(default_factory=list)  # the header's cells as written, trimmed
    _handle: io.FileIO | None = None
    _source: LineSource | None = None
    _feed: _Feed | None = None
    _line: int = 1  # physical lines consumed so far
    _codec: str = "utf-8"

    def index(self, column: str) -> int | None:
        """Position of `column` in the header, or None when the file has no such column."""
        try:
            return self.columns.index(column)
        except ValueError:
            return None

    def position(self, column: str) -> int:
        """Position of a column that `open_table` required (so the header has it)."""
        return self.columns.index(column)

    @property
    def encoding(self) -> str:
        """The encoding the file is read in: "utf-8", "utf-16", "cp1250" or "cp1252".

        A Windows code page is known only once the reading reached its first byte that is not
        ASCII (usually in the header or the first rows).
        """
        if self._source is not None and self._source.legacy:
            self._codec = self._source.legacy
        return self._codec

    @property
    def notes(self) -> list[Problem]:
        """Warnings about the file as a whole (read in a Windows code page), once known."""
        codec = self.encoding
        return [legacy_note(self.display, codec)] if codec in LEGACY_NAMES else []

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
                    rows = list(map(str.split, block, repeat(self.delimiter)))
                    if min(map(len, rows)) == width == max(map(len, rows)):
                        first = self._line + 1
                        self._line += len(block)
                        yield range(first, first + len(block)), rows
                        continue
                end = source.ending()
                lines = chain([line + end for line in block], source)
                yield self._block_of(list(self._one_by_one(lines, len(block))))
        except DecodeFailure as exc:
            problem = decode_problem(self.path, self.display, exc.offset, self.encoding)
            raise InvalidInput([*self.problems, problem]) from None

    @staticmethod
    def _block_of(records: list[tuple[int, list[str]]]) -> tuple[list[int], list[list[str]]]:
        return [line for line, _ in records], [row for _, row in records]

    def _one_by_one(self, source: Iterator[str], count: int) -> Iterator[tuple[int, list[str]]]:
        """Records from `source` until `count` lines are used (a quoted field may use more)."""
        feed = self._feed
        assert feed is not None
        outer, feed.lines = feed.lines, source
        delimiter = self.delimiter
        reader = csv.reader(feed, strict=True, delimiter=delimiter)
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
                    row = text.rstrip("\r\n").split(delimiter)
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
            f"quote values that contain {_DELIMITER_NAMES[self.delimiter]}"
        )
        self.problems.append(Problem(message, self.display, line))
        yield line, []  # the caller counts it as invalid

    def close(self) -> None:
        """Close the underlying file."""
        if self._handle is not None:
            self._codec = self.encoding  # still known once the source is gone
            self._handle.close()
            self._handle = None
            self._source = self._feed = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_table(path: Path, display: str, *, required: Iterable[str] = (EMAIL,)) -> Table:
    """Open `path` as a CSV table; raise InvalidInput when the file or its header is unusable.

    Read as spreadsheets save it: the delimiter sniffed from the header line, UTF-8 with or
    without a BOM (UTF-16 with one), else Windows-1250/1252 (see `Table.notes`), any line ends,
    and the usual spellings of the e-mail and name columns (`ALIASES`).
    """
    try:
        with path.open("rb") as raw:
            head = raw.read(64 * 1024)
        handle = path.open("rb", buffering=0)  # read in big chunks: no buffer to copy through
    except OSError as exc:
        raise InvalidInput([Problem(f"cannot read file: {exc.strerror}", display)]) from None
    what = binary_kind(head)
    if what:
        handle.close()
        message = f"this is {what}, not CSV text; {SAVE_AS_CSV}"
        raise InvalidInput([Problem(message, display, 1)])
    codec = text_codec(head)
    if codec == "utf-8-sig":  # skip the BOM and read plain UTF-8: faster, same text
        codec = "utf-8"
        handle.seek(len(codecs.BOM_UTF8))
    source = LineSource(handle, codec, fallback=not head.startswith(codecs.BOM_UTF8))
    feed = _Feed(source)
    try:
        first = next(source, None)
        delimiter = sniff_delimiter(first or "")
        feed.pending, feed.count = first, 0
        header = next(csv.reader(feed, strict=True, delimiter=delimiter), None)
    except DecodeFailure as exc:
        handle.close()
        problem = decode_problem(path, display, exc.offset, source.legacy or codec)
        raise InvalidInput([problem]) from None
    except csv.Error as exc:
        handle.close()
        raise InvalidInput([Problem(f"unreadable header: {exc}", display, 1)]) from None
    if header is None or first is None:
        handle.close()
        raise InvalidInput(
            [Problem("file is empty; the first line must name the columns", display, 1)]
        )
    columns = header_columns(header)
    table = Table(
        path,
        display,
        columns,
        crlf=first.endswith("\r\n"),
        bom=head.startswith(codecs.BOM_UTF8),
        delimiter=delimiter,
        header=[cell.strip() for cell in header],
        _codec=codec,
    )
    line_length = len(head) / max(1, head.count(b"\n"))
    table.expected_rows = int(path.stat().st_size / max(line_length, 1.0)) + 1
    table._handle, table._source, table._feed, table._line = handle, source, feed, feed.count
    header_problems = _header_problems(table, required)
    if header_problems:
        table.close()
        raise InvalidInput(header_problems)
    return table


def sniff_delimiter(line: str) -> str:
    """The delimiter of a header line: the most frequent of `,` `;` tab outside quotes (`,`
    when it has none, a one-column header)."""
    bare = _QUOTED.sub("", line)
    count, _, delimiter = max((bare.count(d), -n, d) for n, d in enumerate(DELIMITERS))
    return delimiter if count else ","


def header_columns(header: list[str]) -> list[str]:
    """The header's names as the code knows them: trimmed, lowercased, "columnN" for an unnamed
    one, and the first column spelled like an e-mail or name column (`ALIASES`) named so when
    the header has no column of exactly that name."""
    # An unnamed column still holds data: give it a name so nothing is dropped on rewrite.
    columns = [cell.strip().lower() or f"column{n}" for n, cell in enumerate(header, 1)]
    for canonical in (EMAIL, NAME):
        if canonical in columns:
            continue
        for n, column in enumerate(columns):
            if ALIASES.get(_SQUEEZE.sub("", column)) == canonical:
                columns[n] = canonical
                break
    return columns


class CsvLines:
    """Rows as CSV text with the given line end and delimiter, a field holding CR or LF always
    quoted (a writer keeping a list's dialect passes `Table.crlf` and `Table.delimiter`).

    (csv.writer quotes a field only for the characters of *its* line terminator, so with "\n"
    it would write a lone CR unquoted, and the file would read back as two broken rows.)
    """

    def __init__(self, newline: str = "\n", delimiter: str = ",") -> None:
        self._newline = newline
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n", delimiter=delimiter)

    def line(self, row: Iterable[str]) -> str:
        """One row as CSV text, ending with the line end."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(row)
        return self._buffer.getvalue()[:-2] + self._newline


def list_writer(table: Table) -> tuple[str, CsvLines]:
    """What a rewrite of `table`'s file starts with (a BOM or nothing) and the writer of its lines.

    The list keeps the dialect its owner's Excel uses: its delimiter and line ends. It is always
    written in UTF-8, with a BOM when it had one or came in a Windows code page (without the BOM,
    Excel would read the UTF-8 in its code page). Ask after opening: the first 256 KB are read
    then, so a Windows code page is known unless its first letter comes later.
    """
    bom = "\ufeff" if table.bom or table.encoding in LEGACY_NAMES else ""
    return bom, CsvLines("\r\n" if table.crlf else "\n", table.delimiter)


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


def _header_problems(table: Table, required: Iterable[str]) -> list[Problem]:
    columns, display = table.columns, table.display
    problems = []
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            problems.append(Problem(f"column '{column}' appears twice in the header", display, 1))
        seen.add(column)
    found = ", ".join(cell for cell in table.header if cell) or "none"
    for column in required:
        if column not in seen:
            what = "e-mail" if column == EMAIL else f"'{column}'"
            hint = suggest(column, columns, cutoff=0.5)
            fix = f"; did you mean '{hint}'? rename it to '{column}'" if hint else ""
            message = f"no {what} column: name one column '{column}' (found: {found}){fix}"
            problems.append(Problem(message, display, 1))
    return problems


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
