"""The delivery log: one SQLite (WAL) row per (issue, list, address), so a send resumes exactly."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from composer.errors import SendAborted
from composer.project import display_path

LOG_FILE = "delivery.sqlite"
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
REFUSED = "refused"  # a permanent refusal (5xx for the recipient): final, never retried
UNKNOWN = "unknown"  # accepted or not? cannot be known; resent only with --retry-unknown
STATES = (PENDING, SENDING, SENT, FAILED, REFUSED, UNKNOWN)
SCHEMA_VERSION = 2
_CHUNK = 500  # SQLite limits bound parameters per statement

_DELIVERIES = """
CREATE TABLE IF NOT EXISTS {name} (
    issue       TEXT NOT NULL,
    list        TEXT NOT NULL,
    email       TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN
                    ('pending', 'sending', 'sent', 'failed', 'refused', 'unknown')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    provider_id TEXT,
    transport   TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    sent_at     REAL,
    bounce      INTEGER NOT NULL DEFAULT 0,  -- 1: a hard bounce not yet in suppressions.csv
    PRIMARY KEY (issue, list, email)
) WITHOUT ROWID;
"""
_SENDS = """
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
    source      TEXT,  -- the issue file, relative to the project (NULL: logged before v2)
    fingerprint TEXT,  -- volume, date and subject: which issue this is
    PRIMARY KEY (issue, list)
);
"""
_V1_COLUMNS = (
    "issue, list, email, state, attempts, last_error, provider_id, transport, created_at, "
    "updated_at, sent_at"
)
_MARK_SENDING = (
    "UPDATE deliveries SET state='sending', attempts=attempts+1, updated_at=? "
    "WHERE issue=? AND list=? AND email=? AND state NOT IN ('sent', 'refused')"
)
_RECORD = (
    "UPDATE deliveries SET state=?, last_error=?, provider_id=COALESCE(?, provider_id), "
    "attempts=attempts+?-1, updated_at=?, sent_at=CASE WHEN ?='sent' THEN ? ELSE sent_at END, "
    "bounce=? WHERE issue=? AND list=? AND email=?"
)


@dataclass(frozen=True)
class Outcome:
    """What became of one recipient in one attempt: sent, failed, refused, unknown or pending."""

    email: str
    state: str
    error: str | None = None
    provider_id: str | None = None
    tries: int = 1  # attempts within this run (retries after 4xx, drops, 429, 5xx)
    bounce: bool = False  # the peer refused the address itself: suppress it as a hard bounce


@dataclass(frozen=True)
class SendRecord:
    """The first run of a send of an issue to a list: what was sent, and how."""

    subject: str
    mode: str
    content_sha: str
    transport: str
    segment: str | None = None
    source: str | None = None  # the issue file, relative to the project
    fingerprint: str | None = None


@dataclass(frozen=True)
class IssueSend:
    """Which issue file a slug was sent from, to one list."""

    list_name: str
    subject: str
    source: str | None
    fingerprint: str | None


@dataclass
class _Pending:
    """One record() call waiting for a group commit."""

    rows: Sequence[Sequence[object]]
    marks: Sequence[Sequence[object]]
    done: bool = False
    error: BaseException | None = None


def _cannot_write(path: Path, exc: sqlite3.Error) -> SendAborted:
    code = getattr(exc, "sqlite_errorcode", None)
    why = "disk full" if code is not None and code & 0xFF == sqlite3.SQLITE_FULL else str(exc)
    return SendAborted(f"the delivery log cannot be written: {why} at {display_path(path)}")


class DeliveryLog:
    """Durable per-recipient outcomes; every write is committed before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection shared by the send's worker threads, serialised by a lock.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._queued = threading.Lock()  # guards _waiting, held for an append, never for I/O
        self._waiting: list[_Pending] = []  # record() calls not yet committed
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL survives a killed process (not a power cut) without an fsync a commit.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise _cannot_write(path, exc) from exc

    def _migrate(self) -> None:
        """Create the tables, or bring a log of an earlier release up to date without loss."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master")}
                if "deliveries" in tables:  # v1: widen the states (a CHECK needs a new table)
                    self._db.execute(_DELIVERIES.format(name="deliveries_v2"))
                    self._db.execute(
                        f"INSERT INTO deliveries_v2 ({_V1_COLUMNS}) "
                        f"SELECT {_V1_COLUMNS} FROM deliveries"
                    )
                    self._db.execute("DROP TABLE deliveries")
                    self._db.execute("ALTER TABLE deliveries_v2 RENAME TO deliveries")
                else:
                    self._db.execute(_DELIVERIES.format(name="deliveries"))
                if "sends" in tables:
                    columns = {row[1] for row in self._db.execute("PRAGMA table_info(sends)")}
                    for column in ("source", "fingerprint"):
                        if column not in columns:
                            self._db.execute(f"ALTER TABLE sends ADD COLUMN {column} TEXT")
                else:
                    self._db.execute(_SENDS)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @classmethod
    def for_project(cls, state_dir: Path) -> DeliveryLog:
        """The log in a project's state folder, created on first use."""
        return cls(state_dir / LOG_FILE)

    def close(self) -> None:
        """Close the database (a failure to checkpoint on a full disk loses nothing: WAL)."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _transaction(self, *steps: tuple[str, Iterable[Sequence[object]]]) -> None:
        """Run `steps` in one transaction; on any failure roll back and raise (never hang)."""
        with self._lock:
            self._commit(*steps)

    def _commit(self, *steps: tuple[str, Iterable[Sequence[object]]]) -> None:
        """`_transaction` for a caller that holds the lock."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for sql, rows in steps:
                self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _cannot_write(self.path, exc) from exc
            raise

    def _write(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._transaction((sql, rows))

    def begin_send(self, issue: str, list_name: str, record: SendRecord) -> SendRecord | None:
        """Remember how this send started; returns the earlier record when one exists."""
        with self._lock:
            row = self._db.execute(
                "SELECT subject, mode, content_sha, transport, segment, source, fingerprint "
                "FROM sends WHERE issue=? AND list=?",
                (issue, list_name),
            ).fetchone()
        now = time.time()
        if row is None:
            self._write(
                "INSERT INTO sends VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(issue, list_name, record.subject, record.mode, record.content_sha,
                  record.transport, record.segment, now, now, record.source,
                  record.fingerprint)],
            )  # fmt: skip
            return None
        self._write(
            "UPDATE sends SET updated_at=?, segment=?, source=COALESCE(?, source), "
            "fingerprint=COALESCE(?, fingerprint) WHERE issue=? AND list=?",
            [(now, record.segment, record.source, record.fingerprint, issue, list_name)],
        )
        return SendRecord(*row)

    def issue_sends(self, issue: str) -> list[IssueSend]:
        """Every list this slug was sent to, with the issue file it came from."""
        with self._lock:
            rows = self._db.execute(
                "SELECT list, subject, source, fingerprint FROM sends WHERE issue=? ORDER BY list",
                (issue,),
            ).fetchall()
        return [IssueSend(*row) for row in rows]

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
        """Record what the transport said; and, in the same transaction, mark the next batch.

        Group commit: the workers that call this while another's transaction runs are committed
        together in the next one, and each returns once its own rows are committed. Nothing is
        held back: a commit a message becomes one for all that arrived meanwhile.
        """
        now = time.time()
        rows = [
            (o.state, o.error, o.provider_id, o.tries, now, o.state, now, int(o.bounce),
             issue, list_name, o.email)
            for o in outcomes
        ]  # fmt: skip
        marks = [(now, issue, list_name, email) for email in then_sending]
        mine = _Pending(rows, marks)
        with self._queued:
            self._waiting.append(mine)
        with self._lock:  # the one committing; the others wait here and find theirs done
            if not mine.done:
                with self._queued:
                    group, self._waiting = self._waiting, []
                try:
                    self._commit(
                        (_RECORD, [row for pending in group for row in pending.rows]),
                        (_MARK_SENDING, [mark for pending in group for mark in pending.marks]),
                    )
                except BaseException as exc:
                    for pending in group:
                        pending.error = exc
                for pending in group:
                    pending.done = True
        if mine.error is not None:
            raise mine.error

    def bounces(self, issue: str, list_name: str) -> list[tuple[str, str]]:
        """(address, server's reply) of hard bounces not yet added to the suppressions."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email, COALESCE(last_error, '') FROM deliveries "
                "WHERE issue=? AND list=? AND bounce=1 ORDER BY email",
                (issue, list_name),
            ).fetchall()
        return [(email, reason) for email, reason in rows]

    def bounces_suppressed(self, issue: str, list_name: str, emails: Sequence[str]) -> None:
        """These hard bounces are in the suppressions now."""
        self._write(
            "UPDATE deliveries SET bounce=0 WHERE issue=? AND list=? AND email=?",
            [(issue, list_name, email) for email in emails],
        )

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

    def failures(
        self, issue: str, list_name: str, state: str = FAILED
    ) -> Iterator[tuple[str, str, int]]:
        """(address, last error, attempts) for each recipient in `state` (failed by default)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email, COALESCE(last_error, ''), attempts FROM deliveries "
                "WHERE issue=? AND list=? AND state=? ORDER BY email",
                (issue, list_name, state),
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
