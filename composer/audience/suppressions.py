"""subscribers/suppressions.csv: addresses never mailed again, added safely from many writers."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from composer.audience.groupcommit import GroupRegistry
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
    path = suppressions_path(project)
    return sum(_GROUPS.submit(path, wanted, lambda batch: _append(project, batch)))


Entry = tuple[str, str, str]
_GROUPS: GroupRegistry[Entry, int] = GroupRegistry()


def _append(project: Project, entries: list[Entry]) -> list[int]:
    """Append one batch in one locked write; for each entry 1 when it was new, else 0."""
    from filelock import FileLock  # only writers need it; readers start faster

    index = suppression_index(project)
    lock = FileLock(
        str(project.state_dir() / LOCK_FILE),
        timeout=LOCK_TIMEOUT_SECONDS,
        poll_interval=LOCK_POLL_SECONDS,
    )
    rows = [(e, r, d or utc_today()) for e, r, d in entries]
    with lock:
        return [int(new) for new in _precisely(project, lambda: index.append(rows))]


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
