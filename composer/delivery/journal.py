"""The in-flight journal: a send's outcomes made durable by one append each, applied in bulk.

Exactly once needs each outcome, and the next message's `sending` mark, to survive a killed
process before that next message goes. A SQLite commit a message does that at ~50 us and, worse,
one commit at a time for all the send's connections. An append of one line to this file does it
at a few microseconds (the same guarantee as the log's WAL with synchronous=NORMAL: a killed
process loses nothing, a power cut may), and a background thread applies the lines to the
delivery log hundreds at a time. The next open of the log replays whatever a crash left
unapplied, then removes the file.

The file's first line names the run; the log remembers, in the transaction that applies them,
up to which line of which run it has applied, so a replay never applies a line twice. A live
send holds an exclusive lock on its journal: another process opening the log leaves it alone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

Row = Sequence[object]
SUFFIX = "-inflight"
APPLIED_TABLE = """
CREATE TABLE IF NOT EXISTS journal_applied (run TEXT PRIMARY KEY, line INTEGER NOT NULL)
"""


@dataclass(frozen=True)
class Entry:
    """One append: outcomes to record, and marks of what goes next, in that order."""

    line: int
    records: list[Row]
    marks: list[Row]


def journal_path(log_path: Path) -> Path:
    """The journal beside a delivery log."""
    return log_path.with_name(log_path.name + SUFFIX)


class Journal:
    """The live journal of one run: appends from the workers, applied by one thread."""

    def __init__(self, path: Path, apply: Callable[[str, list[Entry]], None]) -> None:
        self.path = path
        self.run = uuid.uuid4().hex
        self._apply = apply  # applies entries and records (run, last line) in one transaction
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(self._fd, (json.dumps({"run": self.run}) + "\n").encode())
        except OSError:
            os.close(self._fd)
            raise
        self._lock = threading.Lock()  # orders line numbers, file writes and the queue alike
        self._changed = threading.Condition(self._lock)
        self._queue: list[Entry] = []
        self._written = 0  # the last line appended
        self._applied = 0  # the last line applied to the log
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._drain, name="journal", daemon=True)
        self._thread.start()

    def append(self, records: list[Row], marks: list[Row]) -> None:
        """Make these durable now (one write); they reach the log soon after."""
        with self._lock:
            self._raise_error()
            line = self._written + 1
            data = (json.dumps([line, records, marks], separators=(",", ":")) + "\n").encode()
            if os.write(self._fd, data) != len(data):  # O_APPEND: short only when the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self._written = line
            self._queue.append(Entry(line, records, marks))
            self._changed.notify_all()

    def settle(self) -> None:
        """Wait until everything appended so far is in the log (before reading the log)."""
        with self._lock:
            target = self._written
            while self._applied < target and self._error is None:
                self._changed.wait()
            self._raise_error()

    def close(self) -> None:
        """Apply the rest, stop the thread, and remove the file once all of it is applied."""
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        applied = self._error is None and self._applied == self._written
        with contextlib.suppress(OSError):
            if applied:
                self.path.unlink()
        os.close(self._fd)  # releases the lock: a crash's leftovers are replayed on next open
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._changed.wait()
                batch, self._queue = self._queue, []
                if not batch:
                    return
            try:
                self._apply(self.run, batch)
            except BaseException as exc:
                with self._lock:
                    self._error = exc
                    self._changed.notify_all()
                return
            with self._lock:
                self._applied = batch[-1].line
                self._changed.notify_all()


@contextlib.contextmanager
def leftover(path: Path) -> Iterator[tuple[str, list[Entry]] | None]:
    """The run and entries a crashed send left in `path`, locked while the caller applies them
    (None when there is no journal, or a live send holds it); removed after a clean exit."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None  # a send is writing it now
            return
        with os.fdopen(os.dup(fd), "rb") as handle:
            lines = handle.read().splitlines()
        yield _parse(lines)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    finally:
        os.close(fd)


def _parse(lines: list[bytes]) -> tuple[str, list[Entry]] | None:
    """The run and its entries; a last line cut short by a kill is dropped (it never returned,
    so the message it would have marked never went)."""
    try:
        run = json.loads(lines[0])["run"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    entries = []
    for raw in lines[1:]:
        try:
            line, records, marks = json.loads(raw)
        except ValueError:
            break
        entries.append(Entry(line, records, marks))
    return str(run), entries
