"""Apply matched events: store each once, and suppress who must never be mailed again.

One path for SendGrid's webhook and for bounce mailboxes. Inside one store transaction: the
events not seen before are kept, soft-bounce streaks move, and the suppressions they call for
are appended (suppressions.csv's own locked, group-committed writer); when that append fails
the transaction is rolled back, so a retried webhook or import applies it all again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from composer.audience.suppressions import add_suppressions, utc_today
from composer.events import store as kinds
from composer.events.sendgrid_events import suppression_reason
from composer.events.store import Event, EventStore
from composer.project import Project

SOFT_BOUNCE_LIMIT = 3  # issues in a row with a soft bounce: then the address is suppressed
_SEP = "\x00"


@dataclass
class Applied:
    """What applying a batch did."""

    received: int = 0
    applied: int = 0
    duplicates: int = 0
    suppressed: int = 0  # addresses newly added to suppressions.csv
    not_kept: dict[str, int] = field(default_factory=dict)  # unmatched, unknown_type, ignored


def apply_events(
    project: Project,
    store: EventStore,
    events: list[Event],
    tallies: Mapping[tuple[str, str], int] | None = None,
) -> Applied:
    """Store the events not seen before and suppress the addresses they call for."""
    result = Applied(received=len(events) + sum((tallies or {}).values()))
    for (_, why), n in (tallies or {}).items():
        result.not_kept[why] = result.not_kept.get(why, 0) + n
    unique = list({e.id: e for e in events}.values())
    with store.transaction() as db:
        known = store.known_ids(db, [e.id for e in unique])
        new = [e for e in unique if e.id not in known]
        store.insert(db, new)
        for (issue, why), n in (tallies or {}).items():
            store.tally(db, issue, why, n)
        entries = [(e.email, reason) for e in new if (reason := suppression_reason(e))]
        entries += _streaks(db, new)
        today = utc_today()
        wanted = [(email, reason, today) for email, reason in entries if email]
        if wanted:  # inside the transaction: if this fails, nothing above is kept
            result.suppressed = add_suppressions(project, wanted)
    result.applied = len(new)
    result.duplicates = len(events) - len(new)
    return result


def _streaks(db: sqlite3.Connection, events: Iterable[Event]) -> list[tuple[str, str]]:
    """Move each address's run of issues with a soft bounce; the addresses it suppresses.

    A delivery ends a run; a soft bounce on another issue lengthens it. Within one batch the
    deliveries are taken first (a batch spans seconds; a run spans issues).
    """
    delivered: set[str] = set()
    soft: list[Event] = []
    for event in events:
        if event.kind == kinds.DELIVERED:
            delivered.add(event.email)
        elif event.kind == kinds.SOFT_BOUNCE:
            soft.append(event)
    ended = sorted(delivered - {event.email for event in soft})
    for start in range(0, len(ended), 500):
        chunk = ended[start : start + 500]
        db.execute(f"DELETE FROM soft_streaks WHERE email IN ({','.join('?' * len(chunk))})", chunk)
    suppress = []
    for event in soft:
        row = db.execute("SELECT issues FROM soft_streaks WHERE email=?", (event.email,)).fetchone()
        issues = row[0].split(_SEP) if row else []
        if event.issue in issues:
            continue
        issues.append(event.issue)
        if len(issues) >= SOFT_BOUNCE_LIMIT:
            db.execute("DELETE FROM soft_streaks WHERE email=?", (event.email,))
            reason = f"soft bounces on {len(issues)} issues in a row ({event.source})"
            suppress.append((event.email, reason))
        else:
            db.execute(
                "INSERT OR REPLACE INTO soft_streaks (email, issues) VALUES (?, ?)",
                (event.email, _SEP.join(issues)),
            )
    return suppress
