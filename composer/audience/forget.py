"""Erasure and access requests: everything held about one address, removed or shown.

`forget` removes an address from every list, consent.csv, suppressions.csv, the delivery log
(and any other SQLite record in the state folder that names addresses) and the outbox, then
keeps only a keyed hash of it in `.compose/forgotten`, so that `subscribers import` of an old
spreadsheet does not silently add the reader back. `export` gathers the same records as JSON.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience.consent import consent_rows, erase_consent
from composer.audience.membership import (
    Change,
    change_list,
    lift_suppression,
    reader_lists,
    rows_of,
)
from composer.audience.records import address_key
from composer.audience.suppressions import suppression_rows
from composer.delivery.log import LOG_FILE
from composer.events.store import EVENTS_FILE
from composer.project import Project

FORGOTTEN_FILE = "forgotten"
# Columns that hold an address in the state folder's SQLite files (the delivery log: `email`,
# holding the address key).
ADDRESS_COLUMNS = ("email", "address")
CONFIRMATIONS_DIR = "confirmations"


def forgotten_hash(secret: bytes, email: str) -> str:
    """The keyed hash kept of an erased address: no one without the secret can test for it."""
    key = hmac.digest(secret, b"composer forgotten address v1", "sha256")
    return hmac.new(key, address_key(email).encode("utf-8"), "sha256").hexdigest()


def forgotten_path(project: Project) -> Path:
    """Where the keyed hashes of erased addresses are kept."""
    return project.root / ".compose" / FORGOTTEN_FILE


def forgotten_check(project: Project) -> Callable[[str], bool] | None:
    """A test `is_forgotten(key)` for imports, or None when nobody was ever forgotten."""
    path = forgotten_path(project)
    if not path.is_file():
        return None
    from composer.delivery.tokens import load_secret

    secret = load_secret(project)
    hashes = set(path.read_text(encoding="ascii").split())
    return lambda key: forgotten_hash(secret, key) in hashes


@dataclass
class Erasure:
    """What `forget` removed, for the command to print."""

    email: str
    list_rows: dict[str, int] = field(default_factory=dict)
    consent_records: int = 0
    suppressions: int = 0
    log_rows: dict[str, int] = field(default_factory=dict)  # "file:table" -> rows
    outbox_files: int = 0


def forget(project: Project, email: str, secret: bytes) -> Erasure:
    """Erase `email` everywhere, and remember its keyed hash (see the module's docstring)."""
    key = address_key(email)
    report = Erasure(key)
    # The hash first: an import running now must not add the reader back after the lists.
    _remember(project, forgotten_hash(secret, key))
    for name in reader_lists(project):
        removed = change_list(project, name, [Change(key, "remove")])
        if removed == ["removed"]:
            report.list_rows[name] = 1
    report.consent_records = erase_consent(project, key)
    report.suppressions = len(lift_suppression(project, key))
    clicks = _reader_clicks(project, _reader_ids(project, key, secret), erase=True)
    for (where, table), count in _erase_logs(project, key).items():
        report.log_rows[f"{where}:{table}"] = count
    if clicks:
        report.log_rows[f"{EVENTS_FILE}:reader_clicks"] = len(clicks)
    report.outbox_files = _erase_outbox(project, key)
    return report


def _remember(project: Project, digest: str) -> None:
    path = forgotten_path(project)
    project.state_dir()
    known = set(path.read_text(encoding="ascii").split()) if path.is_file() else set()
    if digest in known:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, digest.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def _databases(project: Project) -> Iterator[Path]:
    state = project.root / ".compose"
    if state.is_dir():
        yield from sorted(p for p in state.glob("*.sqlite") if p.is_file())


def _address_tables(db: sqlite3.Connection) -> Iterator[tuple[str, str]]:
    """(table, address column) of each table that has one."""
    tables = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
        for column in ADDRESS_COLUMNS:
            if column in columns:
                yield table, column
                break


def _erase_logs(project: Project, key: str) -> dict[tuple[str, str], int]:
    erased: dict[tuple[str, str], int] = {}
    for path in _databases(project):
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            for table, column in list(_address_tables(db)):
                cursor = db.execute(f'DELETE FROM "{table}" WHERE lower("{column}") = ?', (key,))
                if cursor.rowcount:
                    erased[(path.name, table)] = cursor.rowcount
            db.execute("COMMIT")
        finally:
            db.close()
    return erased


def _outbox_files(project: Project, key: str) -> list[Path]:
    from composer.delivery.settings import resolve_settings
    from composer.delivery.transports.outbox import outbox_name

    folder = resolve_settings(project.root, project.newsletter.transport, "outbox").outbox_path
    if not folder.is_dir():
        return []
    name = outbox_name(key)
    return [p for p in folder.glob(f"*/{name}") if p.is_file()]


def _erase_outbox(project: Project, key: str) -> int:
    files = _outbox_files(project, key)
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return len(files)


def export(project: Project, email: str) -> dict[str, object]:
    """Everything held about `email`: list rows, consent records, suppressions, deliveries."""
    key = address_key(email)
    rows: dict[str, list[dict[str, str]]] = {}
    for name in reader_lists(project):
        found = list(rows_of(project.subscribers_dir / f"{name}.csv", key))
        if found:
            rows[name] = found
    suppressed = [
        {"email": e, "reason": r, "date": d}
        for e, r, d in suppression_rows(project)
        if address_key(e) == key
    ]
    return {
        "email": key,
        "lists": rows,
        "consent": list(consent_rows(project, key)),
        "suppressions": suppressed,
        "deliveries": _log_rows(project, key),
        "clicks": _reader_clicks(project, _reader_ids(project, key, _secret(project)), erase=False),
        "outbox": [str(p.relative_to(project.root)) for p in _outbox_files(project, key)],
    }


def _reader_ids(project: Project, key: str, secret: bytes | None) -> list[str]:
    """The delivery ids the reader's messages carried: under `tracking.per_recipient` their
    clicks are kept by these (no address in them), so erasing or exporting needs them."""
    from composer.events.deliveries import connect_readonly
    from composer.events.ids import expected_id

    db = connect_readonly(project.root / ".compose" / LOG_FILE)
    if secret is None or db is None:
        return []
    with closing(db):
        rows = db.execute(
            "SELECT issue, list FROM deliveries WHERE lower(email) = ?", (key,)
        ).fetchall()
    return [expected_id(secret, issue, list_name, key) for issue, list_name in rows]


def _reader_clicks(project: Project, ids: list[str], *, erase: bool) -> list[dict[str, object]]:
    """The reader's click rows (issue, link, when), erased too when `erase`."""
    path = project.root / ".compose" / EVENTS_FILE
    if not ids or not path.is_file():
        return []
    marks = ",".join("?" * len(ids))
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.row_factory = sqlite3.Row
        try:
            found = db.execute(
                f"SELECT issue, url, at FROM reader_clicks WHERE delivery IN ({marks})", ids
            ).fetchall()
            if erase:
                db.execute(f"DELETE FROM reader_clicks WHERE delivery IN ({marks})", ids)
        except sqlite3.OperationalError:  # an event store from before per-reader clicks
            return []
    return [dict(row) for row in found]


def _secret(project: Project) -> bytes | None:
    """The token secret, when anything was ever sent (an export creates none)."""
    from composer.delivery.tokens import load_secret

    return load_secret(project) if (project.root / ".compose" / LOG_FILE).is_file() else None


def _log_rows(project: Project, key: str) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    for path in _databases(project):
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            for table, column in list(_address_tables(db)):
                sql = f'SELECT * FROM "{table}" WHERE lower("{column}") = ?'
                hits = [dict(row) for row in db.execute(sql, (key,))]
                if hits:
                    found[f"{path.name}:{table}"] = hits
        finally:
            db.close()
    return found
