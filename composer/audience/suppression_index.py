"""Who is suppressed, answered from memory: the keys of suppressions.csv, kept in step with it.

Suppressions are only ever appended (a rewrite that removes lines replaces the file), so the
index reads the file once and then only what was added since: it remembers how far it has
read, the file's identity and the bytes just before that point. Anything else (a new inode, a
shorter file, different bytes where it stopped) means the file was rewritten: read it again.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from composer.audience.records import EMAIL, CsvLines, address_key
from composer.errors import InvalidInput, Problem

HEADER = ("email", "reason", "date")
_TAIL = 64  # bytes kept from just before the read point, to notice a rewrite in place
_BOM = b"\xef\xbb\xbf"


class SuppressionIndex:
    """The address keys of one suppressions file, refreshed incrementally as it grows.

    Thread-safe. `append` must be called under the file lock every writer takes; reads need
    no lock (a writer appends whole lines with one write).
    """

    def __init__(self, path: Path, display: str) -> None:
        self.path = path
        self.display = display
        self._mutex = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._identity: tuple[int, int, int, int] | None = None  # dev, inode, size, mtime_ns
        self._offset = 0  # bytes read up to the end of the last terminated record
        self._tail = b""  # the bytes just before _offset
        self._keys: set[str] = set()
        self._open_keys: set[str] = set()  # from a last line with no line end yet
        self._email_at: int | None = None  # None until the header has been read
        self._width = 0
        self._newline = "\n"

    def refresh(self) -> None:
        """Bring the index up to date with the file now (it also does so on every question)."""
        with self._mutex:
            self._refresh()

    def keys(self) -> set[str]:
        """A snapshot of every suppressed address key."""
        with self._mutex:
            self._refresh()
            return self._keys | self._open_keys

    def __contains__(self, key: object) -> bool:
        with self._mutex:
            self._refresh()
            return key in self._keys or key in self._open_keys

    def append(self, rows: Iterable[tuple[str, str, str]]) -> list[bool]:
        """Append the rows whose address is not suppressed yet (the first of each wins) with
        one write and fsync; whether each row was written. Call with the writers' lock held.
        """
        with self._mutex:
            self._refresh()
            fresh: list[tuple[str, str, str]] = []
            written: list[bool] = []
            added: set[str] = set()
            for row in rows:
                key = address_key(row[0])
                new = key not in self._keys and key not in self._open_keys and key not in added
                if new:
                    added.add(key)
                    fresh.append(row)
                written.append(new)
            if fresh:
                self._write(fresh, added)
            return written

    def _write(self, rows: list[tuple[str, str, str]], keys: set[str]) -> None:
        lines = CsvLines(self._newline)
        parts = []
        if self._email_at is None:  # a new or empty file
            parts.append(lines.line(HEADER))
        elif self._open_keys or self._identity and self._identity[2] > self._offset:
            parts.append(self._newline)  # end the last line, which has no line end
        parts.extend(map(lines.line, rows))
        data = "".join(parts).encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            before = os.fstat(fd)
            view = memoryview(data)
            while view:  # a regular file takes it in one write; loop only to be correct
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        expected = (self._identity or (before.st_dev, before.st_ino, 0, 0))[:3]
        if (before.st_dev, before.st_ino, before.st_size) != expected:
            self._reset()  # someone wrote without the lock: read it all again next time
            return
        if self._email_at is None:
            self._email_at, self._width = 0, len(HEADER)
        self._keys |= self._open_keys | keys
        self._open_keys = set()
        self._tail = (self._tail + data)[-_TAIL:]
        self._offset = after.st_size
        self._identity = (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns)

    def _refresh(self) -> None:
        """Read what was added since the last look, or everything when the file was rewritten."""
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            self._reset()
            return
        with handle:
            info = os.fstat(handle.fileno())
            identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            tail_at = self._offset - len(self._tail)
            same_file = self._identity is not None and self._identity[:2] == identity[:2]
            if same_file and info.st_size >= self._offset:
                handle.seek(tail_at)
                if handle.read(len(self._tail)) == self._tail:
                    if identity == self._identity:
                        return
                else:
                    same_file = False
            if not same_file or info.st_size < self._offset:
                self._reset()
            handle.seek(self._offset)
            data = handle.read(info.st_size - self._offset)
            self._identity = identity
            self._take(data)

    def _take(self, data: bytes) -> None:
        """Parse `data`, read from `_offset`: its terminated records advance the read point."""
        skip = len(_BOM) if self._offset == 0 and data.startswith(_BOM) else 0
        try:
            text = data[skip:].decode("utf-8")
        except UnicodeDecodeError:
            raise self._unreadable("not UTF-8 text; save the file as UTF-8") from None
        self._open_keys = set()
        if self._offset == 0:
            self._email_at = None  # a header without a line end is read again each time
        done = 0  # characters of text in terminated records
        try:
            for end, row in _records(text):
                terminated = text[end - 1] in "\r\n"
                if terminated:
                    done = end
                if self._email_at is None:
                    self._header(row, text[:end])
                    continue
                if len(row) > self._width:
                    raise self._unreadable(
                        f"row has {len(row)} fields but the header has {self._width}"
                    )
                email = row[self._email_at] if len(row) > self._email_at else ""
                if email.strip():
                    (self._keys if terminated else self._open_keys).add(address_key(email))
        except csv.Error as exc:
            raise self._unreadable(f"unreadable row: {exc}") from None
        if not done:
            return
        used = skip + (len(data) - skip if done == len(text) else len(text[:done].encode()))
        self._tail = (self._tail + data[:used])[-_TAIL:]
        self._offset += used

    def _header(self, row: list[str], line: str) -> None:
        columns = [cell.strip().lower() for cell in row]
        if EMAIL not in columns or len(set(columns)) != len(columns):
            raise self._unreadable("the header needs one 'email' column")
        self._email_at, self._width = columns.index(EMAIL), len(columns)
        self._newline = "\r\n" if line.endswith("\r\n") else "\n"

    def _unreadable(self, message: str) -> InvalidInput:
        self._reset()
        return InvalidInput([Problem(message, self.display)])


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(end of the record in `text`, its cells) for each record; blank lines give []."""
    if '"' not in text and "\r" not in text and "\0" not in text:
        end = 0
        for line in text.split("\n"):
            if not line and end == len(text):
                return  # the empty remainder after the final line end
            end += len(line) + 1
            yield min(end, len(text)), line.split(",") if line else []
        return
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(text, newline=""):
            consumed += len(line)
            yield line

    for row in csv.reader(lines(), strict=True):
        yield consumed, row


_INDEXES: dict[str, SuppressionIndex] = {}
_INDEXES_MUTEX = threading.Lock()


def index_for(path: Path, display: str) -> SuppressionIndex:
    """The process's one index of the suppressions file at `path`."""
    key = os.path.abspath(path)
    with _INDEXES_MUTEX:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = SuppressionIndex(path, display)
        return index
