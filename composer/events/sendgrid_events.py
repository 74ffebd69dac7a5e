"""SendGrid's Event Webhook: check a POST's signature and turn its JSON batch into events.

The signature is ECDSA P-256 over timestamp + body, checked by the official `sendgrid`
package's helper with the public key SendGrid shows (base64 DER) in
$SENDGRID_WEBHOOK_PUBLIC_KEY. What SendGrid sends is never trusted further than that: each
event is matched to a message we sent by our own custom args (issue, list, delivery id).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from composer.audience.records import address_key
from composer.events import store as kinds
from composer.events.ids import id_matches
from composer.events.store import Event

PUBLIC_KEY_ENV = "SENDGRID_WEBHOOK_PUBLIC_KEY"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_AGE_SECONDS = 600  # the contract: a timestamp older than 10 minutes is refused
MAX_SKEW_SECONDS = 300  # one "from the future" by a clock step is not a forgery
MAX_REASON_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# SendGrid drops a message to an address on one of its own lists, or an invalid one: for us
# these are suppressions too. Other drop reasons (spam content, a bad header) are ours to fix.
_SUPPRESSING_DROPS = {
    "invalid": "invalid address",
    "bounced address": "bounced",
    "spam reporting address": "complained",
    "unsubscribed address": "unsubscribed",
}


# Events whose reason is worth keeping (why it bounced, was dropped or deferred).
_WITH_REASON = frozenset({kinds.HARD_BOUNCE, kinds.SOFT_BOUNCE, kinds.DROPPED, kinds.DEFERRED})


class SignatureRejected(ValueError):
    """The request is not provably from SendGrid, or too old: 403, nothing applied."""


class BadBatch(ValueError):
    """The body is not a JSON array of objects: 400, nothing applied."""


def load_verifier(public_key: str | None = None) -> Any:
    """The official helper loaded with the key (argument, else $SENDGRID_WEBHOOK_PUBLIC_KEY);
    None when no key is configured (then every request is refused)."""
    from sendgrid.helpers.eventwebhook import EventWebhook

    key = public_key if public_key is not None else os.environ.get(PUBLIC_KEY_ENV, "")
    key = "".join(key.split())
    if not key:
        return None
    try:
        return EventWebhook(key)
    except ValueError:
        return None


def verify(
    verifier: Any, body: bytes, signature: str | None, stamp: str | None, now: float | None = None
) -> None:
    """Raise SignatureRejected unless `body` is signed by SendGrid's key, recently."""
    if verifier is None:
        raise SignatureRejected(f"no webhook key: set {PUBLIC_KEY_ENV}")
    if not signature or not stamp:
        raise SignatureRejected("missing signature or timestamp")
    try:
        sent = int(stamp)
    except ValueError:
        raise SignatureRejected("timestamp is not a number") from None
    current = time.time() if now is None else now
    if current - sent > MAX_AGE_SECONDS or sent - current > MAX_SKEW_SECONDS:
        raise SignatureRejected("stale timestamp")
    try:
        good = verifier.verify_signature(body.decode("utf-8"), signature, stamp)
    except (UnicodeDecodeError, binascii.Error, ValueError):
        good = False
    if not good:
        raise SignatureRejected("bad signature")


def parse_batch(body: bytes) -> list[dict[str, Any]]:
    """The events of a webhook body; BadBatch unless it is a JSON array of objects."""
    try:
        items = json.loads(body)
    except ValueError:
        raise BadBatch("the body is not JSON") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadBatch("the body is not a JSON array of event objects")
    return items


@dataclass
class Sorted:
    """A batch sorted: events to apply, and per issue what was received and not kept."""

    events: list[Event] = field(default_factory=list)
    # (issue, why) -> count; why is unmatched | unknown_type | ignored
    tallies: dict[tuple[str, str], int] = field(default_factory=dict)

    def count(self, issue: str, why: str) -> None:
        self.tallies[issue, why] = self.tallies.get((issue, why), 0) + 1


def sort_events(
    items: list[dict[str, Any]], secret: bytes, sent_issues: Collection[str], per_recipient: bool
) -> Sorted:
    """Match each webhook event to a delivery of ours, in our words; count the rest."""
    result = Sorted()
    for item in items:
        issue = _text(item.get("issue"))
        if not issue or issue not in sent_issues:
            result.count(issue, "unmatched")
            continue
        kind = _kind(item)
        if kind is None:
            result.count(issue, "unknown_type")
            continue
        email = address_key(_text(item.get("email")))
        list_name = _text(item.get("list"))
        claimed = item.get("delivery")
        if not email or (
            isinstance(claimed, str) and not id_matches(secret, issue, list_name, email, claimed)
        ):
            result.count(issue, "unmatched")  # another sender's event, or one made up
            continue
        if kind == kinds.PROCESSED:
            result.count(issue, "ignored")
            continue
        if kind in (kinds.CLICK, kinds.OPEN) and not per_recipient:
            email = ""  # aggregate only: who clicked is not kept
        result.events.append(
            Event(
                _event_id(item),
                issue,
                email,
                kind,
                _timestamp(item),
                _reason(item, kind) if kind in _WITH_REASON else "",
                _text(item.get("url"))[:2000] if kind == kinds.CLICK else "",
                "sendgrid",
                list_name,
            )
        )
    return result


def suppression_reason(event: Event) -> str | None:
    """The suppressions.csv reason an event calls for at once, or None."""
    detail = f": {event.reason}" if event.reason else ""
    if event.kind == kinds.HARD_BOUNCE:
        return f"hard bounce ({event.source}{detail})"
    if event.kind == kinds.COMPLAINT:
        return f"complained ({event.source} spam report)"
    if event.kind == kinds.UNSUBSCRIBE:
        return f"unsubscribed ({event.source})"
    if event.kind == kinds.DROPPED:
        why = _SUPPRESSING_DROPS.get(event.reason.strip().lower())
        if why is not None:
            return f"{why} ({event.source} dropped{detail})"
    return None


def _kind(item: dict[str, Any]) -> str | None:
    name = item.get("event")
    if name == "bounce":
        # SendGrid: type "bounce" is a permanent failure, "blocked" a temporary one.
        return kinds.SOFT_BOUNCE if item.get("type") == "blocked" else kinds.HARD_BOUNCE
    if name == "group_unsubscribe":
        return kinds.UNSUBSCRIBE
    if name in ("delivered", "deferred", "dropped", "spamreport", "unsubscribe", "click", "open",
                "processed"):  # fmt: skip
        return str(name)
    return None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _event_id(item: dict[str, Any]) -> str:
    given = _text(item.get("sg_event_id"))
    if given:
        return "sg:" + given[:200]
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return "sg#" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _timestamp(item: dict[str, Any]) -> float:
    value = item.get("timestamp")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return time.time()


def _reason(item: dict[str, Any], kind: str) -> str:
    parts = [_text(item.get(key)) for key in ("status", "reason", "response")]
    if kind == kinds.DROPPED:  # the reason alone: it says whether to suppress
        parts = [_text(item.get("reason"))]
    text = _CONTROL.sub(" ", " ".join(p for p in parts if p)).strip()
    return text[:MAX_REASON_CHARS]
