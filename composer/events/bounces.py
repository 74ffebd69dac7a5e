"""`compose bounces import MAILBOX`: bounce reports from an mbox file or a Maildir folder.

flufl.bounce (GNU Mailman's detectors) reads RFC 3464 DSNs and the non-standard reports of the
big providers and older MTAs. Each bounced recipient is matched to one of our deliveries by the
issue tag in our Message-ID, which the report quotes (message/rfc822, text/rfc822-headers, or
the copy a qmail report appends); a report that quotes no Message-ID of ours is matched to the
recipient's latest delivery. Then the same path as webhook events: stored once (the id is a
digest of the report and the recipient, so importing twice changes nothing), hard bounces
suppressed, soft ones counted.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mailbox
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from flufl.bounce import all_failures

from composer.audience.records import address_key
from composer.delivery.message import issue_tag
from composer.errors import ComposeError, UsageError
from composer.events import store as kinds
from composer.events.apply import Applied, apply_events
from composer.events.deliveries import latest_deliveries, sent_issues
from composer.events.store import Event, EventStore
from composer.project import Project, display_path

_OUR_ID = re.compile(r"\.(i[0-9a-f]{10})\.\d+@")
_QMAIL_COPY = "--- Below this line is a copy of the message."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
MAX_REASON_CHARS = 300


@dataclass
class Imported:
    """What an import did, for the CLI to print."""

    reports: int = 0  # messages read from the mailbox
    not_bounces: int = 0  # messages no detector recognised
    unmatched: int = 0  # bounced recipients we never sent to
    applied: Applied = field(default_factory=Applied)


def import_bounces(project: Project, path: Path) -> Imported:
    """Read every bounce report in the mailbox at `path` and apply what they say."""
    state = project.state_dir()
    tags = {issue_tag(issue): issue for issue in sent_issues(state)}
    result = Imported()
    found: list[tuple[str, str, Event]] = []  # (recipient, issue or "", event without issue)
    for raw in _messages(path):
        result.reports += 1
        report = email.message_from_bytes(raw)
        temporary, permanent = all_failures(report)
        if not temporary and not permanent:
            result.not_bounces += 1
            continue
        digest = hashlib.sha256(raw).hexdigest()[:24]
        issue = tags.get(_quoted_tag(report) or "", "")
        at = _date(report)
        statuses = _dsn_fields(report)
        for said, addresses in ((kinds.SOFT_BOUNCE, temporary), (kinds.HARD_BOUNCE, permanent)):
            for address in addresses:
                kind = said
                recipient = address_key(_decode(address))
                if statuses.get(recipient, "").startswith("4."):
                    kind = kinds.SOFT_BOUNCE  # given up on, but for a passing reason: retried
                event = Event(
                    id=f"mailbox:{digest}:{recipient}",
                    issue=issue,
                    email=recipient,
                    kind=kind,
                    at=at,
                    reason=statuses.get(recipient, ""),
                    source="mailbox",
                )
                found.append((recipient, issue, event))
    events = _match(state, found, result)
    with EventStore.for_state_dir(state) as store:
        result.applied = apply_events(project, store, events, {("", "unmatched"): result.unmatched})
    return result


def _match(state: Path, found: list[tuple[str, str, Event]], result: Imported) -> list[Event]:
    """Each event with the issue and list of the delivery it reports on; unmatched counted."""
    deliveries = latest_deliveries(state, sorted({recipient for recipient, _, _ in found}))
    events = []
    for recipient, issue, event in found:
        theirs = deliveries.get(recipient, [])
        if issue:
            hit = next((d for d in theirs if d[0] == issue), None)
        else:  # no Message-ID of ours quoted: the latest delivery before the report
            hit = next((d for d in theirs if d[2] <= event.at + 60), None)
        if hit is None:
            result.unmatched += 1
            continue
        events.append(
            Event(event.id, hit[0], event.email, event.kind, event.at, event.reason, "",
                  event.source, hit[1])
        )  # fmt: skip
    return events


def _messages(path: Path) -> Iterator[bytes]:
    """The raw bytes of each message of an mbox file or a Maildir folder."""
    shown = display_path(path)
    box: mailbox.Mailbox[mailbox.Message]
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new")):
            raise UsageError(f"{shown}: a folder, but not a Maildir (it has no cur/ and new/)")
        box = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        with path.open("rb") as head:
            start = head.read(5)
        if start and start != b"From ":
            raise UsageError(f"{shown}: not an mbox file (it does not start with 'From ')")
        box = mailbox.mbox(path, factory=None, create=False)
    else:
        raise UsageError(f"{shown}: no such mbox file or Maildir folder")
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    except OSError as exc:
        raise ComposeError(f"cannot read the mailbox: {exc.strerror or exc}", shown) from None
    finally:
        box.close()


def _decode(address: bytes | str) -> str:
    return address.decode("utf-8", "replace") if isinstance(address, bytes) else address


def _date(report: Message) -> float:
    try:
        return parsedate_to_datetime(str(report["Date"])).timestamp()
    except (TypeError, ValueError, IndexError):
        return time.time()


def _quoted_tag(report: Message) -> str | None:
    """The issue tag of the Message-ID of ours that the report quotes, if any."""
    for part in report.walk():
        kind = part.get_content_type()
        quoted: Message | None = None
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                quoted = inner[0]
        elif kind == "text/rfc822-headers":
            quoted = email.message_from_string(_text(part))
        elif kind == "text/plain" and _QMAIL_COPY in _text(part):
            quoted = email.message_from_string(_text(part).split(_QMAIL_COPY, 1)[1].lstrip())
        if quoted is not None:
            match = _OUR_ID.search(str(quoted.get("Message-ID", "")))
            if match:
                return match.group(1)
    return None


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return str(part.get_payload())


def _dsn_fields(report: Message) -> dict[str, str]:
    """Per recipient of an RFC 3464 report: its Status and Diagnostic-Code, on one line."""
    reasons: dict[str, str] = {}
    for part in report.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            if ";" not in recipient:
                continue
            key = address_key(recipient.split(";", 1)[1].strip().strip("<>"))
            words = [str(block.get(n) or "").strip() for n in ("Status", "Diagnostic-Code")]
            text = _CONTROL.sub(" ", " ".join(w for w in words if w)).strip()
            reasons[key] = text[:MAX_REASON_CHARS]
    return reasons
