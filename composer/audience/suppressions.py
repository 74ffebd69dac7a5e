"""subscribers/suppressions.csv: addresses never mailed again, added safely from many writers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

from composer.atomic import write_atomically
from composer.audience.records import CsvLines, address_key, open_table
from composer.errors import InvalidInput, Problem
from composer.project import Project, display_path

SUPPRESSIONS_FILE = "suppressions.csv"
HEADER = ("email", "reason", "date")
LOCK_FILE = "suppressions.lock"
# A writer that holds the lock longer than this is stuck; better to fail loudly than hang.
LOCK_TIMEOUT_SECONDS = 60


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


def load_suppressed(project: Project) -> set[str]:
    """Every suppressed address, lowercased (see `address_key`)."""
    return {address_key(email) for email, _, _ in suppression_rows(project)}


def add_suppressions(project: Project, entries: Iterable[tuple[str, str, str]]) -> int:
    """Append (email, reason, date_iso) entries not yet suppressed; return how many were new.

    Safe under concurrent calls from threads and processes: an exclusive lock serializes
    writers, the file is re-read under it, and the new file replaces the old atomically.
    """
    wanted = [(e.strip(), r.strip(), d.strip()) for e, r, d in entries if e and e.strip()]
    if not wanted:
        return 0
    path = suppressions_path(project)
    from filelock import FileLock  # only writers need it; readers start faster

    lock = FileLock(str(project.state_dir() / LOCK_FILE), timeout=LOCK_TIMEOUT_SECONDS)
    with lock:
        present = load_suppressed(project)
        fresh: list[tuple[str, str, str]] = []
        for email, reason, date in wanted:
            key = address_key(email)
            if key not in present:
                present.add(key)
                fresh.append((email, reason, date or utc_today()))
        if not fresh:
            return 0
        old = ""
        if path.is_file():
            with path.open(encoding="utf-8-sig", newline="") as handle:  # keep its line ends
                old = handle.read()
        newline = "\r\n" if "\r\n" in old else "\n"
        if old and not old.endswith(("\n", "\r")):
            old += newline
        lines = CsvLines(newline)
        if not old.strip():
            old = lines.line(HEADER)
        write_atomically(path, [old, *map(lines.line, fresh)])
    return len(fresh)


def check_suppressions(project: Project) -> list[Problem]:
    """Problems in suppressions.csv (unreadable rows, missing email column), for `check`."""
    try:
        for _ in suppression_rows(project):
            pass
    except InvalidInput as exc:
        return list(exc.problems)
    return []
