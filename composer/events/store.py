"""The event store: one SQLite (WAL) file in the state folder, beside (not inside) the delivery log.

Each event is kept once, under its own id (SendGrid's `sg_event_id`, or a digest of a bounce
report and its recipient), so a replayed webhook batch or a mailbox imported twice changes
nothing. Clicks through `/c/<token>` are counted per link; per reader only when the newsletter
says `tracking.per_recipient: true`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

from composer.errors import ComposeError
from composer.project import display_path

EVENTS_FILE = "events.sqlite"
HOUR = 3600
SCHEMA_VERSION = 1

# What an event says happened, in our words (SendGrid's names where they fit).
DELIVERED, DEFERRED, PROCESSED = "delivered", "deferred", "processed"
HARD_BOUNCE, SOFT_BOUNCE, DROPPED = "bounce", "soft_bounce", "dropped"
COMPLAINT, UNSUBSCRIBE, CLICK, OPEN = "spamreport", "unsubscribe", "click", "open"
RETRY = "retry"  # a soft bounce handed back to the delivery log for the next send
KINDS = (
    DELIVERED, DEFERRED, PROCESSED, HARD_BOUNCE, SOFT_BOUNCE, DROPPED, COMPLAINT, UNSUBSCRIBE,
    CLICK, OPEN, RETRY,
)  # fmt: skip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id      TEXT PRIMARY KEY,   -- sg_event_id, or mailbox:<digest>:<recipient>
    issue   TEXT NOT NULL,
    list    TEXT NOT NULL DEFAULT '',  -- the list the address was reached through
    email   TEXT NOT NULL,      -- as the delivery log keys it (address_key)
    kind    TEXT NOT NULL,
    at      REAL NOT NULL,      -- unix time the event happened
    reason  TEXT NOT NULL DEFAULT '',
    url     TEXT NOT NULL DEFAULT '',
    source  TEXT NOT NULL       -- sendgrid | mailbox | composer
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_issue ON events (issue, kind, list, at, email);
CREATE INDEX IF NOT EXISTS events_clicks ON events (issue, kind, url, email) WHERE kind = 'click';
CREATE TABLE IF NOT EXISTS tallies (      -- what was received but not kept, by why
    issue   TEXT NOT NULL,
    name    TEXT NOT NULL,                -- unmatched | unknown_type | ignored
    n       INTEGER NOT NULL,
    PRIMARY KEY (issue, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reader_clicks ( -- tracking.per_recipient: who clicked, pseudonymous
    issue    TEXT NOT NULL,
    url      TEXT NOT NULL,
    delivery TEXT NOT NULL,                -- the reader's delivery id (events/ids.py), no address
    at       REAL NOT NULL,
    PRIMARY KEY (issue, url, delivery)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS link_clicks (  -- aggregate counts, always
    issue   TEXT NOT NULL,
    url     TEXT NOT NULL,
    total   INTEGER NOT NULL DEFAULT 0,
    scanner INTEGER NOT NULL DEFAULT 0,   -- early clicks by known link scanners, kept apart
    PRIMARY KEY (issue, url)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS counts (      -- events per issue, list, kind and hour: the report's
    issue   TEXT NOT NULL,                -- figures without reading millions of events
    list    TEXT NOT NULL,
    kind    TEXT NOT NULL,
    hour    INTEGER NOT NULL,             -- unix time of the hour's start
    n       INTEGER NOT NULL,
    PRIMARY KEY (issue, kind, list, hour)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS soft_streaks ( -- issues in a row on which an address soft-bounced
    email   TEXT PRIMARY KEY,
    issues  TEXT NOT NULL                 -- the slugs, NUL-separated
) WITHOUT ROWID;
"""


class Event(NamedTuple):
    """One thing that happened to one delivery, as the store keeps it (a tuple: a webhook
    batch makes a thousand of them)."""

    id: str
    issue: str
    email: str
    kind: str
    at: float
    reason: str = ""
    url: str = ""
    source: str = "sendgrid"
    list: str = ""


class EventStoreError(ComposeError):
    """The event store cannot be read or written."""


class EventStore:
    """Events, clicks and tallies; writes are transactions, safe across threads and processes."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if readonly:
                self._db = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
                )
            else:
                self._db = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=30
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                if self._db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    self._db.executescript(_SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")
        except sqlite3.Error as exc:
            raise EventStoreError(f"the event store cannot be opened: {exc}", display_path(path))
        self._db.isolation_level = None

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> EventStore:
        """The store in a project's state folder, created on first use."""
        return cls(state_dir / EVENTS_FILE)

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for read-only queries (the report)."""
        return self._db

    def close(self) -> None:
        """Close the database."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE), rolled back on any error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise EventStoreError(
                        f"the event store cannot be written: {exc}", display_path(self.path)
                    ) from exc
                raise

    def known_ids(self, db: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are stored already (within a transaction)."""
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0] for row in db.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
            )
        return found

    @staticmethod
    def insert(db: sqlite3.Connection, events: Sequence[Event]) -> None:
        """Store new `events` (the caller has left out ids already known) and count them."""
        db.executemany(
            "INSERT OR IGNORE INTO events (id, issue, list, email, kind, at, reason, url, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.id, e.issue, e.list, e.email, e.kind, e.at, e.reason, e.url, e.source)
             for e in events],
        )  # fmt: skip
        counts = Counter((e.issue, e.kind, e.list, int(e.at // HOUR) * HOUR) for e in events)
        db.executemany(
            "INSERT INTO counts (issue, kind, list, hour, n) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (issue, kind, list, hour) DO UPDATE SET n = n + excluded.n",
            [(*key, n) for key, n in counts.items()],
        )
        clicks = Counter((e.issue, e.url) for e in events if e.kind == CLICK and e.url)
        db.executemany(
            "INSERT INTO link_clicks (issue, url, total, scanner) VALUES (?, ?, ?, 0) "
            "ON CONFLICT (issue, url) DO UPDATE SET total = total + excluded.total",
            [(*key, n) for key, n in clicks.items()],
        )

    @staticmethod
    def tally(db: sqlite3.Connection, issue: str, name: str, n: int = 1) -> None:
        """Count `n` events received for `issue` and not kept, under `name`."""
        if n:
            db.execute(
                "INSERT INTO tallies (issue, name, n) VALUES (?, ?, ?) "
                "ON CONFLICT (issue, name) DO UPDATE SET n = n + excluded.n",
                (issue, name, n),
            )

    def count_click(
        self, issue: str, url: str, *, scanner: bool, reader: str | None = None
    ) -> None:
        """One click on `url` in `issue`, by a reader or (scanner) a link scanner; `reader`: the
        delivery id the link carried (tracking.per_recipient), kept once per link."""
        with self.transaction() as db:
            if reader and not scanner:
                db.execute(
                    "INSERT OR IGNORE INTO reader_clicks (issue, url, delivery, at) "
                    "VALUES (?, ?, ?, ?)",
                    (issue, url, reader, time.time()),
                )
            db.execute(
                "INSERT INTO link_clicks (issue, url, total, scanner) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (issue, url) DO UPDATE SET total = total + excluded.total, "
                "scanner = scanner + excluded.scanner",
                (issue, url, 0 if scanner else 1, 1 if scanner else 0),
            )


def events_path(state_dir: Path) -> Path:
    """Where a project's event store lives."""
    return state_dir / EVENTS_FILE
