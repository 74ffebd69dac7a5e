"""Which issues reached a real list: what the web archive may make public.

Read from the delivery log without writing to it (a read-only connection), so `compose serve`
can ask while `compose send` is writing. A `--test` copy is never logged, so it publishes nothing.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from composer.delivery.log import LOG_FILE, SENT

RECHECK_SECONDS = 2.0  # a send writes the log constantly: look again at most this often

# An issue counts once one reader of one list got it: the sends table names the issues, and the
# deliveries' primary key (issue, email) finds a sent row of each without a full scan.
_SENT_ISSUES = """
SELECT DISTINCT s.issue FROM sends AS s
WHERE EXISTS (SELECT 1 FROM deliveries AS d WHERE d.issue = s.issue AND d.state = ?)
"""

Stamp = tuple[tuple[int, int] | None, ...]


def sent_issues(state_dir: Path) -> frozenset[str]:
    """The slugs of issues delivered to at least one reader of a list; none without a log."""
    path = state_dir / LOG_FILE
    if not path.is_file():
        return frozenset()
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            rows = db.execute(_SENT_ISSUES, (SENT,)).fetchall()
    except sqlite3.Error:
        return frozenset()  # an unreadable or older log publishes nothing; drafts stay private
    return frozenset(str(row[0]) for row in rows)


class SentIssues:
    """sent_issues() for one project, read again only when the log has changed."""

    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._checked = float("-inf")
        self._stamp: Stamp = ()
        self._slugs: frozenset[str] = frozenset()

    def stamp(self) -> Stamp:
        """What the log files look like now (size and mtime), checked at most every few seconds."""
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            log = self._state_dir / LOG_FILE
            stamp = tuple(_stat(Path(f"{log}{suffix}")) for suffix in ("", "-wal"))
            if stamp != self._stamp:
                self._stamp, self._slugs = stamp, sent_issues(self._state_dir)
        return self._stamp

    def slugs(self) -> frozenset[str]:
        """The sent issues as of the last stamp()."""
        return self._slugs


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns)
