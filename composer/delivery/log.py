"""The delivery log: one SQLite (WAL) row per (issue, address), so a send resumes exactly.

An address gets an issue at most once, whatever lists it was sent through: the row names the
list that reached it last, and a send to another list that holds the address skips it.
"""

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
SCHEMA_VERSION = 3
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
    PRIMARY KEY (issue, email)
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
    schedule    TEXT,  -- send --at, as given (NULL: sent at once)
    schedule_base REAL,  -- when that schedule was made: a time of day is the next one after it
    PRIMARY KEY (issue, list)
);
"""
_V1_COLUMNS = (
    "issue, list, email, state, attempts, last_error, provider_id, transport, created_at, "
    "updated_at, sent_at"
)
_V2_COLUMNS = _V1_COLUMNS + ", bounce"
_SENDS_ADDED = (("source", "TEXT"), ("fingerprint", "TEXT"), ("schedule", "TEXT"),
                ("schedule_base", "REAL"))  # fmt: skip
# v2 kept a row per (issue, list, address). Merging them, the row that says most wins: a copy
# delivered beats a refusal, beats an unknown outcome, beats one in flight, failed or pending.
_STATE_RANK = (
    "CASE state WHEN 'sent' THEN 0 WHEN 'refused' THEN 1 WHEN 'unknown' THEN 2 "
    "WHEN 'sending' THEN 3 WHEN 'failed' THEN 4 ELSE 5 END"
)
# The rows that lost keep their history here: a migration loses no record.
_SUPERSEDED = "superseded_deliveries"
_MARK_SENDING = (
    "UPDATE deliveries SET state='sending', attempts=attempts+1, updated_at=?, list=? "
    "WHERE issue=? AND email=? AND state NOT IN ('sent', 'refused')"
)
_RECORD = (
    "UPDATE deliveries SET state=?, last_error=?, provider_id=COALESCE(?, provider_id), "
    "attempts=attempts+?-1, updated_at=?, sent_at=CASE WHEN ?='sent' THEN ? ELSE sent_at END, "
    "bounce=? WHERE issue=? AND email=?"
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
    schedule: str | None = None  # send --at, as given
    schedule_base: float | None = None  # when that schedule was made


@dataclass(frozen=True)
class IssueSend:
    """Which issue file a slug was sent from, to one list, and when it was scheduled for."""

    list_name: str
    subject: str
    source: str | None
    fingerprint: str | None
    schedule: str | None = None
    schedule_base: float | None = None


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
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master")}
                if "deliveries" in tables:
                    self._merge_lists(widen=version < 2)
                else:
                    self._db.execute(_DELIVERIES.format(name="deliveries"))
                if "sends" in tables:
                    columns = {row[1] for row in self._db.execute("PRAGMA table_info(sends)")}
                    for column, kind in _SENDS_ADDED:
                        if column not in columns:
                            self._db.execute(f"ALTER TABLE sends ADD COLUMN {column} {kind}")
                else:
                    self._db.execute(_SENDS)
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _merge_lists(self, *, widen: bool) -> None:
        """v1/v2 -> v3: one row per (issue, address); the others move to superseded_deliveries.

        `widen`: a v1 log has neither the newer states nor the bounce column.
        """
        columns = _V1_COLUMNS if widen else _V2_COLUMNS
        self._db.execute("ALTER TABLE deliveries RENAME TO deliveries_old")
        self._db.execute(_DELIVERIES.format(name="deliveries"))
        # INSERT OR IGNORE keeps the first row of each (issue, email) in this order: the best.
        self._db.execute(
            f"INSERT OR IGNORE INTO deliveries ({columns}) SELECT {columns} FROM deliveries_old "
            f"ORDER BY issue, email, {_STATE_RANK}, updated_at DESC"
        )
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {_SUPERSEDED} AS SELECT * FROM deliveries WHERE 0"
        )
        old_columns = ", ".join("o." + column.strip() for column in columns.split(","))
        self._db.execute(
            f"INSERT INTO {_SUPERSEDED} ({columns}) SELECT {old_columns} FROM deliveries_old AS o "
            "JOIN deliveries AS d ON d.issue = o.issue AND d.email = o.email WHERE d.list <> o.list"
        )
        if not widen:  # a hard bounce still to suppress stays to suppress, whichever row won
            self._db.execute(
                "UPDATE deliveries SET bounce = 1 WHERE EXISTS (SELECT 1 FROM deliveries_old AS o "
                "WHERE o.issue = deliveries.issue AND o.email = deliveries.email AND o.bounce = 1)"
            )
        self._db.execute("DROP TABLE deliveries_old")

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

    def _transaction(self, *steps: tuple[str, Iterable[Sequence[object]]]) -> int:
        """Run `steps` in one transaction; on any failure roll back and raise (never hang).
        Returns how many rows they changed."""
        with self._lock:
            return self._commit(*steps)

    def _commit(self, *steps: tuple[str, Iterable[Sequence[object]]]) -> int:
        """`_transaction` for a caller that holds the lock."""
        changed = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for sql, rows in steps:
                changed += self._db.executemany(sql, rows).rowcount
            self._db.execute("COMMIT")
            return changed
        except BaseException as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _cannot_write(self.path, exc) from exc
            raise

    def _write(self, sql: str, rows: Iterable[Sequence[object]]) -> int:
        return self._transaction((sql, rows))

    def begin_send(self, issue: str, list_name: str, record: SendRecord) -> SendRecord | None:
        """Remember how this send started; returns the earlier record when one exists."""
        with self._lock:
            row = self._db.execute(
                "SELECT subject, mode, content_sha, transport, segment, source, fingerprint, "
                "schedule, schedule_base FROM sends WHERE issue=? AND list=?",
                (issue, list_name),
            ).fetchone()
        now = time.time()
        if row is None:
            self._write(
                "INSERT INTO sends (issue, list, subject, mode, content_sha, transport, segment, "
                "started_at, updated_at, source, fingerprint, schedule, schedule_base) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(issue, list_name, record.subject, record.mode, record.content_sha,
                  record.transport, record.segment, now, now, record.source,
                  record.fingerprint, record.schedule, record.schedule_base)],
            )  # fmt: skip
            return None
        self._write(
            "UPDATE sends SET updated_at=?, segment=?, source=COALESCE(?, source), "
            "fingerprint=COALESCE(?, fingerprint), schedule=?, schedule_base=? "
            "WHERE issue=? AND list=?",
            [(now, record.segment, record.source, record.fingerprint, record.schedule,
              record.schedule_base, issue, list_name)],
        )  # fmt: skip
        return SendRecord(*row)

    def issue_sends(self, issue: str) -> list[IssueSend]:
        """Every list this slug was sent to, with the issue file it came from."""
        with self._lock:
            rows = self._db.execute(
                "SELECT list, subject, source, fingerprint, schedule, schedule_base FROM sends "
                "WHERE issue=? ORDER BY list",
                (issue,),
            ).fetchall()
        return [IssueSend(*row) for row in rows]

    def states(self, issue: str, emails: Sequence[str]) -> dict[str, str]:
        """The logged state of each of `emails` that has a row, whatever list reached it."""
        return self._lookup(issue, "state", emails)

    def lists_of(self, issue: str, emails: Sequence[str]) -> dict[str, str]:
        """The list that (last) reached each of `emails` that has a row."""
        return self._lookup(issue, "list", emails)

    def _lookup(self, issue: str, column: str, emails: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(emails), _CHUNK):
                chunk = emails[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT email, {column} FROM deliveries "
                        f"WHERE issue=? AND email IN ({marks})",
                        (issue, *chunk),
                    ).fetchall()
                )
        return found

    def enqueue(self, issue: str, list_name: str, emails: Iterable[str], transport: str) -> int:
        """Add pending rows for addresses not yet in the log (existing rows are untouched);
        returns how many were added."""
        now = time.time()
        return self._write(
            "INSERT OR IGNORE INTO deliveries (issue, list, email, state, transport, created_at, "
            "updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
            [(issue, list_name, email, transport, now, now) for email in emails],
        )

    def mark_sending(self, issue: str, recipients: Iterable[tuple[str, str]]) -> None:
        """Record that these (address, list) are about to be handed to the transport."""
        now = time.time()
        self._write(_MARK_SENDING, _marks(now, issue, recipients))

    def record(
        self,
        issue: str,
        outcomes: Sequence[Outcome],
        then_sending: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record what the transport said; and, in the same transaction, mark the next batch
        (its (address, list) pairs).

        Group commit: the workers that call this while another's transaction runs are committed
        together in the next one, and each returns once its own rows are committed. Nothing is
        held back: a commit a message becomes one for all that arrived meanwhile.
        """
        now = time.time()
        rows = [
            (o.state, o.error, o.provider_id, o.tries, now, o.state, now, int(o.bounce),
             issue, o.email)
            for o in outcomes
        ]  # fmt: skip
        mine = _Pending(rows, _marks(now, issue, then_sending))
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

    def bounces(self, issue: str) -> list[tuple[str, str]]:
        """(address, server's reply) of hard bounces not yet added to the suppressions."""
        with self._lock:
            rows = self._db.execute(
                "SELECT email, COALESCE(last_error, '') FROM deliveries "
                "WHERE issue=? AND bounce=1 ORDER BY email",
                (issue,),
            ).fetchall()
        return [(email, reason) for email, reason in rows]

    def bounces_suppressed(self, issue: str, emails: Sequence[str]) -> None:
        """These hard bounces are in the suppressions now."""
        self._write(
            "UPDATE deliveries SET bounce=0 WHERE issue=? AND email=?",
            [(issue, email) for email in emails],
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
                "SELECT list FROM sends WHERE issue=? UNION "
                "SELECT DISTINCT list FROM deliveries WHERE issue=? ORDER BY list",
                (issue, issue),
            ).fetchall()
        return [row[0] for row in rows]

    def counts(self, issue: str, list_name: str) -> dict[str, int]:
        """How many readers this list reached (last) for this issue, in each state."""
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

    def row(self, issue: str, email: str) -> dict[str, object] | None:
        """Everything logged about one recipient (for tests and `status`)."""
        with self._lock:
            cursor = self._db.execute(
                "SELECT * FROM deliveries WHERE issue=? AND email=?", (issue, email)
            )
            found = cursor.fetchone()
            names = [column[0] for column in cursor.description]
        return dict(zip(names, found, strict=True)) if found else None


def _marks(
    now: float, issue: str, recipients: Iterable[tuple[str, str]]
) -> list[tuple[object, ...]]:
    return [(now, list_name, issue, email) for email, list_name in recipients]
