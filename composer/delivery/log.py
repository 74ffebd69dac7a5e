"""The delivery log: one SQLite (WAL) row per (issue, list, address), so a send resumes exactly."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

LOG_FILE = "delivery.sqlite"
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
STATES = (PENDING, SENDING, SENT, FAILED)
_CHUNK = 500  # SQLite limits bound parameters per statement

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    issue       TEXT NOT NULL,
    list        TEXT NOT NULL,
    email       TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    provider_id TEXT,
    transport   TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    sent_at     REAL,
    PRIMARY KEY (issue, list, email)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sends (
    issue       TEXT NOT NULL,
    list        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    mode        TEXT NOT NULL,
    content_sha TEXT NOT NULL,
    transport   TEXT NOT NULL,
    segment     TEXT,
    started_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (issue, list)
);
"""
_MARK_SENDING = (
    "UPDATE deliveries SET state='sending', attempts=attempts+1, updated_at=? "
    "WHERE issue=? AND list=? AND email=? AND state!='sent'"
)
_RECORD = (
    "UPDATE deliveries SET state=?, last_error=?, provider_id=COALESCE(?, provider_id), "
    "attempts=attempts+?-1, updated_at=?, sent_at=CASE WHEN ?='sent' THEN ? ELSE sent_at END "
    "WHERE issue=? AND list=? AND email=?"
)


@dataclass(frozen=True)
class Outcome:
    """What became of one recipient in one attempt: sent, failed, or pending (retry later)."""

    email: str
    state: str
    error: str | None = None
    provider_id: str | None = None
    tries: int = 1  # attempts within this run (retries after 4xx, drops, 429, 5xx)


@dataclass(frozen=True)
class SendRecord:
    """The first run of a send of an issue to a list: what was sent, and how."""

    subject: str
    mode: str
    content_sha: str
    transport: str
    segment: str | None = None


class DeliveryLog:
    """Durable per-recipient outcomes; every write is its own committed transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection shared by the send's worker threads, serialised by a lock.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives a killed process (not a power cut) without an fsync per commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_project(cls, state_dir: Path) -> DeliveryLog:
        """The log in a project's state folder, created on first use."""
        return cls(state_dir / LOG_FILE)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _write(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def begin_send(self, issue: str, list_name: str, record: SendRecord) -> SendRecord | None:
        """Remember how this send started; returns the earlier record when one exists."""
        with self._lock:
            row = self._db.execute(
                "SELECT subject, mode, content_sha, transport, segment FROM sends "
                "WHERE issue=? AND list=?",
                (issue, list_name),
            ).fetchone()
        now = time.time()
        if row is None:
            self._write(
                "INSERT INTO sends VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(issue, list_name, record.subject, record.mode, record.content_sha,
                  record.transport, record.segment, now, now)],
            )  # fmt: skip
            return None
        self._write(
            "UPDATE sends SET updated_at=?, segment=? WHERE issue=? AND list=?",
            [(now, record.segment, issue, list_name)],
        )
        return SendRecord(*row)

    def states(self, issue: str, list_name: str, emails: Sequence[str]) -> dict[str, str]:
        """The logged state of each of `emails` that has a row."""
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(emails), _CHUNK):
                chunk = emails[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT email, state FROM deliveries "
                        f"WHERE issue=? AND list=? AND email IN ({marks})",
                        (issue, list_name, *chunk),
                    ).fetchall()
                )
        return found

    def enqueue(self, issue: str, list_name: str, emails: Iterable[str], transport: str) -> None:
        """Add pending rows for addresses not yet in the log (existing rows are untouched)."""
        now = time.time()
        self._write(
            "INSERT OR IGNORE INTO deliveries (issue, list, email, state, transport, created_at, "
            "updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
            [(issue, list_name, email, transport, now, now) for email in emails],
        )

    def mark_sending(self, issue: str, list_name: str, emails: Iterable[str]) -> None:
        """Record that these messages are about to be handed to the transport."""
        now = time.time()
        self._write(_MARK_SENDING, [(now, issue, list_name, email) for email in emails])

    def record(
        self,
        issue: str,
        list_name: str,
        outcomes: Sequence[Outcome],
        then_sending: Sequence[str] = (),
    ) -> None:
        """Record what the transport said; and, in the same transaction, mark the next batch."""
        now = time.time()
        rows = [
            (o.state, o.error, o.provider_id, o.tries, now, o.state, now, issue, list_name, o.email)
            for o in outcomes
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_RECORD, rows)
                self._db.executemany(
                    _MARK_SENDING, [(now, issue, list_name, email) for email in then_sending]
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def segment(self, issue: str, list_name: str) -> str | None:
        """The segment the latest run of this send used."""
        with self._lock:
            row = self._db.execute(
                "SELECT segment FROM sends WHERE issue=? AND list=?", (issue, list_name)
            ).fetchone()
        return row[0] if row else None

    def lists(self, issue: str) -> list[str]:
        """The lists this issue has been sent (or started) to."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT list FROM deliveries WHERE issue=? ORDER BY list", (issue,)
            ).fetchall()
        return [row[0] for row in rows]

    def counts(self, issue: str, list_name: str) -> dict[str, int]:
        """How many rows of this (issue, list) are in each state."""
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM deliveries WHERE issue=? AND list=? GROUP BY state",
                (issue, list_name),
            ).fetchall()
        counts = dict.fromkeys(STATES, 0)
        counts.update(rows)
        return counts

    def failures(self, issue: str, list_name: str) -> Iterator[tuple[str, str, int]]:
        """(address, last error, attempts) for each failed recipient."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email, COALESCE(last_error, ''), attempts FROM deliveries "
                "WHERE issue=? AND list=? AND state='failed' ORDER BY email",
                (issue, list_name),
            ).fetchall()
        yield from rows

    def row(self, issue: str, list_name: str, email: str) -> dict[str, object] | None:
        """Everything logged about one recipient (for tests and `status`)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT * FROM deliveries WHERE issue=? AND list=? AND email=?",
                (issue, list_name, email),
            )
            found = cursor.fetchone()
            names = [column[0] for column in cursor.description]
        return dict(zip(names, found, strict=True)) if found else None
