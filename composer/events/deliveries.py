"""Read-only questions to the delivery log, in plain SQL keyed by (issue, email).

The delivery log belongs to composer/delivery; these queries never write it and never depend
on whether `list` is part of its key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from composer.delivery.log import LOG_FILE


def log_path(state_dir: Path) -> Path:
    """Where the delivery log lives."""
    return state_dir / LOG_FILE


def connect_readonly(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to a state database (the delivery log, the event store), or
    None when there is none yet."""
    if not path.is_file():
        return None
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def sent_issues(state_dir: Path) -> set[str]:
    """The issues the delivery log holds a send of."""
    db = connect_readonly(log_path(state_dir))
    if db is None:
        return set()
    try:
        return {row[0] for row in db.execute("SELECT DISTINCT issue FROM sends")}
    except sqlite3.Error:
        return set()
    finally:
        db.close()


def latest_deliveries(
    state_dir: Path, emails: Sequence[str]
) -> dict[str, list[tuple[str, str, float]]]:
    """For each address: (issue, list, sent_at) of its deliveries that were sent, newest first."""
    db = connect_readonly(log_path(state_dir))
    found: dict[str, list[tuple[str, str, float]]] = {}
    if db is None:
        return found
    try:
        for start in range(0, len(emails), 500):
            chunk = list(emails[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for email, issue, list_name, sent_at in db.execute(
                f"SELECT email, issue, list, COALESCE(sent_at, updated_at) FROM deliveries "
                f"WHERE email IN ({marks}) AND state IN ('sent', 'failed') "
                "ORDER BY COALESCE(sent_at, updated_at) DESC",
                chunk,
            ):
                found.setdefault(email, []).append((issue, list_name, sent_at))
    finally:
        db.close()
    return found
