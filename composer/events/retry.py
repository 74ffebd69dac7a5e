"""Retry what can be retried: soft bounces whose window has passed go back to the next send.

A soft bounce (a full mailbox, a greylisting server that gave up) is worth one more try once
the receiving side has had time to recover; a hard bounce, a complaint or an unsubscribe never
is (those addresses are suppressed). The delivery log says "sent" for a message that later
soft-bounced; handing it back marks it failed there, with the bounce as its reason, so the next
run of the same `send` tries it again. A `retry` event remembers that it was handed back, so a
second run does not hand back the same bounce again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from composer.delivery.log import FAILED, SENT, DeliveryLog, Outcome
from composer.events import store as kinds
from composer.events.store import Event, EventStore, events_path
from composer.project import STATE_DIR, Project

RETRY_AFTER_SECONDS = 4 * 3600  # the bounce window: SendGrid and most MTAs retry for hours
# Anything of these for the same issue means the address is not to be tried again.
_FINAL = (kinds.HARD_BOUNCE, kinds.COMPLAINT, kinds.UNSUBSCRIBE, kinds.DROPPED, kinds.DELIVERED)


@dataclass(frozen=True)
class DueRetry:
    """An address of an issue whose soft bounce may be retried now."""

    email: str
    bounced_at: float
    reason: str


def soft_bounces_due(project: Project, issue: str, now: float | None = None) -> list[DueRetry]:
    """The addresses of `issue` with a soft bounce older than the bounce window, not yet handed
    back, and with nothing final (hard bounce, complaint, unsubscribe, delivery) since."""
    path = events_path(project.root / STATE_DIR)
    if not path.is_file():
        return []
    cutoff = (time.time() if now is None else now) - RETRY_AFTER_SECONDS
    with EventStore(path, readonly=True) as store:
        db = store.db
        soft = {
            email: (at, reason)
            for email, at, reason in db.execute(
                "SELECT email, max(at), reason FROM events WHERE issue=? AND kind=? AND "
                "email != '' GROUP BY email",
                (issue, kinds.SOFT_BOUNCE),
            )
        }
        if not soft:
            return []
        # Anything final or a hand-back since the bounce rules an address out. One pass over
        # the issue's index range (events carry no index by address: the webhook's inserts
        # stay cheap), keeping only the soft-bounced addresses.
        later: dict[str, float] = {}
        marks = ",".join("?" * (len(_FINAL) + 1))
        for email, at in db.execute(
            f"SELECT email, at FROM events WHERE issue=? AND kind IN ({marks})",
            (issue, *_FINAL, kinds.RETRY),
        ):
            if email in soft and at > later.get(email, -1.0):
                later[email] = at
    return [
        DueRetry(email, at, reason)
        for email, (at, reason) in sorted(soft.items())
        if at <= cutoff and later.get(email, -1.0) < at
    ]


def hand_back_soft_bounces(
    project: Project, log: DeliveryLog, issue: str, now: float | None = None
) -> int:
    """Mark the due soft bounces of an issue failed in the delivery log, so this send retries
    them; how many were handed back."""
    due = soft_bounces_due(project, issue, now)
    if not due:
        return 0
    emails = [d.email for d in due]
    states = log.states(issue, emails)
    back = [d for d in due if states.get(d.email) == SENT]
    if not back:
        return 0
    outcomes = [Outcome(d.email, FAILED, f"soft bounce, retried: {d.reason}"[:300]) for d in back]
    log.record(issue, outcomes)
    lists = log.lists_of(issue, [d.email for d in back])
    stamp = time.time() if now is None else now
    with EventStore(events_path(project.state_dir())) as store, store.transaction() as db:
        store.insert(db, _markers(back, issue, lists, stamp))
    return len(back)


def _markers(back: Sequence[DueRetry], issue: str, lists: dict[str, str], at: float) -> list[Event]:
    return [
        Event(
            id=f"retry:{issue}:{d.email}:{d.bounced_at:.0f}",
            issue=issue,
            list=lists.get(d.email, ""),
            email=d.email,
            kind=kinds.RETRY,
            at=at,
            source="composer",
        )
        for d in back
    ]
