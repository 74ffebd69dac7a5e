"""subscribers/consent.csv: proof of consent, one appended line per subscribe, confirm,
preference change, unsubscribe and resubscribe.

The file only grows (erasure, `compose subscribers forget`, is the one rewrite). Writers take
`.compose/consent.lock` and append whole lines with one write and an fsync; threads of one
process that write at once share a turn (`GroupRegistry`), so many at once lose nothing and
never leave half a line. An IP address is never stored: only a keyed hash of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from composer.atomic import AtomicFile
from composer.audience.groupcommit import GroupRegistry
from composer.audience.records import EMAIL, CsvLines, address_key, list_writer, open_table
from composer.errors import InvalidInput
from composer.project import Project, display_path

CONSENT_FILE = "consent.csv"
LOCK_FILE = "consent.lock"
LOCK_TIMEOUT_SECONDS = 60
ACTIONS = ("subscribe", "confirm", "preferences", "unsubscribe", "resubscribe")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_AGENT_CHARS = 300


@dataclass(frozen=True)
class ConsentRecord:
    """One line of consent.csv: who did what to which list, when, and from where (hashed)."""

    email: str
    list: str
    action: str
    at: str
    ip_hash: str = ""
    form: str = ""
    consent_text_sha256: str = ""
    user_agent: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown consent action {self.action!r}")


COLUMNS = tuple(f.name for f in fields(ConsentRecord))


def utc_now() -> str:
    """Now, in UTC, as ISO 8601 to the second: `2026-12-02T04:33:29Z`."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text_sha256(text: str) -> str:
    """The SHA-256 (hex) of a consent sentence exactly as it was shown, UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ip_hash(secret: bytes, ip: str | None) -> str:
    """A keyed hash of a client address: the same IP gives the same value, nobody can reverse
    it without the secret (an unkeyed hash of 2^32 IPv4 addresses would be undone at once)."""
    if not ip:
        return ""
    key = hmac.digest(secret, b"composer consent ip hash v1", "sha256")
    return hmac.new(key, ip.encode("utf-8"), "sha256").hexdigest()[:32]


def clean_agent(agent: str | None) -> str:
    """A User-Agent as recorded: one line, at most 300 characters."""
    return _CONTROL.sub(" ", agent or "")[:_MAX_AGENT_CHARS]


def consent_path(project: Project) -> Path:
    """Where the project's consent records live."""
    return project.subscribers_dir / CONSENT_FILE


_GROUPS: GroupRegistry[ConsentRecord, None] = GroupRegistry()


def append_consent(project: Project, records: Sequence[ConsentRecord]) -> None:
    """Append `records` to consent.csv (created with its header), safely from many writers."""
    if records:
        path = consent_path(project)
        _GROUPS.submit(path, records, lambda batch: _append(project, path, batch))


def _append(project: Project, path: Path, batch: list[ConsentRecord]) -> list[None]:
    from filelock import FileLock

    lines = CsvLines()
    body = "".join(lines.line(list(asdict(r).values())) for r in batch).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(project.state_dir() / LOCK_FILE), timeout=LOCK_TIMEOUT_SECONDS):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                body = lines.line(COLUMNS).encode("utf-8") + body
            elif not _ends_with_newline(path, size):
                body = b"\n" + body  # a hand-edited file's last line, ended before ours
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    return [None] * len(batch)


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def consent_rows(project: Project, email: str | None = None) -> Iterator[dict[str, str]]:
    """The records of consent.csv in file order (only `email`'s, whatever its case, if given)."""
    path = consent_path(project)
    if not path.is_file():
        return
    key = address_key(email) if email is not None else None
    with open_table(path, display_path(path)) as table:
        ei = table.position(EMAIL)
        for _, row in table.rows():
            if row and (key is None or address_key(row[ei]) == key):
                yield dict(zip(table.columns, row, strict=True))
        if table.problems:
            raise InvalidInput(table.problems)


def erase_consent(project: Project, email: str) -> int:
    """Rewrite consent.csv without `email`'s records (erasure); how many were removed."""
    from filelock import FileLock

    path = consent_path(project)
    if not path.is_file():
        return 0
    key = address_key(email)
    removed = 0
    lock = FileLock(str(project.state_dir() / LOCK_FILE), timeout=LOCK_TIMEOUT_SECONDS)
    with lock, open_table(path, display_path(path)) as table, AtomicFile(path) as out:
        ei = table.position(EMAIL)
        bom, lines = list_writer(table)
        out.write(bom + lines.line(table.columns))
        for _, row in table.rows():
            if row and address_key(row[ei]) == key:
                removed += 1
            elif row:
                out.write(lines.line(row))
        if table.problems:
            raise InvalidInput(table.problems)
        if not removed:
            out.discard()
    return removed
