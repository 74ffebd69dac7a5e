"""The readers of one send: one or more lists (and a segment), each address once.

An address on several lists is reached through the first of them (in the order given on the
command line). Streaming the union of large lists must not hold every address in memory, so the
addresses already seen live in a temporary SQLite table on disk (only when there are two lists
or more: one list has no repeated addresses).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from composer.audience import Recipient, Selection

CHUNK = 1000  # recipients handled at a time (log lookups, seen-table lookups)
_LOOKUP = 500  # SQLite limits bound parameters per statement


class Chunk(NamedTuple):
    """Readers of one list (the list that reaches them), at most CHUNK of them."""

    list_name: str
    recipients: list[Recipient]


class Audience:
    """The union of the selected lists, streamed in chunks, each address once."""

    def __init__(self, selections: Sequence[Selection]) -> None:
        if not selections:
            raise ValueError("an audience needs at least one list")
        self.selections = list(selections)
        self._count: int | None = selections[0].count if len(selections) == 1 else None

    @property
    def list_names(self) -> list[str]:
        """The lists, in the order they were given."""
        return [selection.list_name for selection in self.selections]

    @property
    def suppressed(self) -> int:
        """Rows left out as suppressed, over all lists."""
        return sum(selection.suppressed for selection in self.selections)

    @property
    def unsubscribed(self) -> int:
        """Rows left out as unsubscribed, over all lists."""
        return sum(selection.unsubscribed for selection in self.selections)

    @property
    def count(self) -> int:
        """How many distinct readers the send reaches (one pass over the lists, once)."""
        if self._count is None:
            self._count = sum(len(chunk.recipients) for chunk in self.chunks())
        return self._count

    def chunks(self) -> Iterator[Chunk]:
        """The readers in chunks of at most CHUNK, an address on two lists only the first time."""
        with contextlib.closing(_Seen()) as seen:
            many = len(self.selections) > 1
            for selection in self.selections:
                for chunk in _recipient_chunks(selection):
                    if many:
                        fresh = seen.fresh([r.key for r in chunk])
                        chunk = [r for r in chunk if r.key in fresh]
                    if chunk:
                        yield Chunk(selection.list_name, chunk)


def _recipient_chunks(selection: Selection) -> Iterator[list[Recipient]]:
    assert selection.recipients is not None
    chunk: list[Recipient] = []
    for recipient in selection.recipients:
        chunk.append(recipient)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Seen:
    """Addresses already yielded in this pass, in a temporary on-disk table (opened lazily)."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None

    def fresh(self, keys: list[str]) -> set[str]:
        """The keys not seen before; all of them are seen from now on."""
        if self._db is None:
            self._db = sqlite3.connect("")  # "": a temporary file SQLite deletes on close
            self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        known: set[str] = set()
        for start in range(0, len(keys), _LOOKUP):
            part = keys[start : start + _LOOKUP]
            marks = ",".join("?" * len(part))
            known.update(
                key
                for (key,) in self._db.execute(f"SELECT key FROM seen WHERE key IN ({marks})", part)
            )
        fresh = set(keys) - known
        self._db.executemany("INSERT INTO seen VALUES (?)", [(key,) for key in fresh])
        return fresh

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
