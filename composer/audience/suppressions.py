"""subscribers/suppressions.csv: addresses never mailed again, added safely from many writers."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from composer.audience.records import address_key, open_table
from composer.audience.suppression_index import SuppressionIndex, index_for
from composer.errors import InvalidInput, Problem
from composer.project import Project, display_path

SUPPRESSIONS_FILE = "suppressions.csv"
LOCK_FILE = "suppressions.lock"
# A writer that holds the lock longer than this is stuck; better to fail loudly than hang.
LOCK_TIMEOUT_SECONDS = 60
# A writer holds the lock for an append (well under a millisecond): ask again soon.
LOCK_POLL_SECONDS = 0.002
T = TypeVar("T")


def utc_today() -> str:
    """Today's date in UTC, ISO 8601: the date every suppression is stamped with."""
    return dt.datetime.now(dt.UTC).date().isoformat()


def suppressions_path(project: Project) -> Path:
    """Where the project's suppression list lives."""
    return project.subscribers_dir / SUPPRESSIONS_FILE


def suppression_rows(project: Project) -> Iterator[tuple[str, str, str]]:
    """(email, reason, date) for each suppressed address, in file order."""
    path = suppressions_path(project)
    if not path.is_file():
        return
    with open_table(path, display_path(path)) as table:
        ei, ri, di = table.position("email"), table.index("reason"), table.index("date")
        for _, row in table.rows():
            if not row:
                continue
            email = row[ei].strip()
            if email:
                reason = row[ri].strip() if ri is not None else ""
                date = row[di].strip() if di is not None else ""
                yield email, reason, date
        # A row we could not read might be someone who must never be mailed: refuse to guess.
        if table.problems:
            raise InvalidInput(table.problems)


def suppression_index(project: Project) -> SuppressionIndex:
    """The process's index of the project's suppressions, brought up to date on each use."""
    path = suppressions_path(project)
    return index_for(path, display_path(path))


def preload_suppressions(project: Project) -> None:
    """Read suppressions.csv into the index in a background thread, so that the first
    question (a server's first unsubscribe) does not wait for a big file to be read."""

    def load() -> None:
        with contextlib.suppress(InvalidInput, OSError):  # the first question reports it
            suppression_index(project).refresh()

    threading.Thread(target=load, name="suppressions-preload", daemon=True).start()


def load_suppressed(project: Project) -> set[str]:
    """Every suppressed address, lowercased (see `address_key`): a snapshot of the index."""
    return _precisely(project, suppression_index(project).keys)


def is_suppressed(project: Project, email: str) -> bool:
    """Whether `email` is suppressed (whatever its case), without reading the whole file."""
    key = address_key(email)
    return _precisely(project, lambda: key in suppression_index(project))


def add_suppressions(project: Project, entries: Iterable[tuple[str, str, str]]) -> int:
    """Append (email, reason, date_iso) entries not yet suppressed; return how many were new.

    Safe under concurrent calls from threads and processes, and as cheap with two million
    suppressions as with two hundred: an exclusive lock serializes writers, the index says
    who is there already, and the new rows are appended with one write and fsync. Calls from
    threads of one process that arrive while a write is under way go out together in the next.
    """
    wanted = [(e.strip(), r.strip(), d.strip()) for e, r, d in entries if e and e.strip()]
    if not wanted:
        return 0
    request = _Request(wanted)
    queue = _queue_for(project)
    with queue.mutex:
        queue.pending.append(request)
    with queue.writer:
        if not request.done:
            with queue.mutex:
                batch, queue.pending = queue.pending, []
            _write_batch(project, batch)
    if request.error is not None:
        raise request.error
    return request.added


@dataclass
class _Request:
    """One caller's entries, and what became of them."""

    entries: list[tuple[str, str, str]]
    added: int = 0
    done: bool = False
    error: BaseException | None = None


@dataclass
class _Queue:
    """The calls waiting to be written to one suppressions file, and the writer's turn."""

    mutex: threading.Lock = field(default_factory=threading.Lock)
    writer: threading.Lock = field(default_factory=threading.Lock)
    pending: list[_Request] = field(default_factory=list)


_QUEUES: dict[str, _Queue] = {}
_QUEUES_MUTEX = threading.Lock()


def _queue_for(project: Project) -> _Queue:
    with _QUEUES_MUTEX:
        return _QUEUES.setdefault(os.path.abspath(suppressions_path(project)), _Queue())


def _write_batch(project: Project, batch: list[_Request]) -> None:
    """Write every request of `batch` in one locked append; each learns its own count."""
    try:
        from filelock import FileLock  # only writers need it; readers start faster

        index = suppression_index(project)
        lock = FileLock(
            str(project.state_dir() / LOCK_FILE),
            timeout=LOCK_TIMEOUT_SECONDS,
            poll_interval=LOCK_POLL_SECONDS,
        )
        owners = [n for n, request in enumerate(batch) for _ in request.entries]
        rows = [(e, r, d or utc_today()) for request in batch for e, r, d in request.entries]
        with lock:
            written = _precisely(project, lambda: index.append(rows))
        for owner, new in zip(owners, written, strict=True):
            batch[owner].added += new
    except BaseException as exc:  # every caller of the batch hears of it, not only this one
        for request in batch:
            request.error = exc
    finally:
        for request in batch:
            request.done = True


def _precisely(project: Project, read: Callable[[], T]) -> T:
    """`read()`; when the file cannot be read, raise every problem with its line, as `check`."""
    try:
        return read()
    except InvalidInput:
        for _ in suppression_rows(project):  # raises InvalidInput naming each bad row
            pass
        raise


def check_suppressions(project: Project) -> list[Problem]:
    """Problems in suppressions.csv (unreadable rows, missing email column), for `check`."""
    try:
        for _ in suppression_rows(project):
            pass
    except InvalidInput as exc:
        return list(exc.problems)
    return []
