"""POST /webhooks/sendgrid over real HTTP: real ECDSA keys, a real send through the v3 double."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from doubles.delivery_project import make_project, send
from doubles.sendgrid_api import SendGridDouble
from doubles.sendgrid_events import WebhookSigner, body_of, event_for

from composer.events.sendgrid_events import PUBLIC_KEY_ENV
from composer.project import load_project
from composer.web.app import create_app
from tests.test_serve import ServerThread

KEY = "SG.webhook-test-key"
READERS = [(f"reader{i}@example.org", f"Reader {i}") for i in range(6)]


@dataclass
class Sent:
    root: Path
    double: SendGridDouble
    signer: WebhookSigner
    base: str

    def event(self, email: str, **fields: object) -> dict:
        payload, personal = self.double.personalization(email)
        return event_for(payload, personal, **fields)

    def post(self, events: list[dict], **kwargs: object) -> httpx.Response:
        body = body_of(events)
        return self.post_body(body, self.signer.headers(body, **kwargs))  # type: ignore[arg-type]

    def post_body(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.base}/webhooks/sendgrid", content=body, headers=headers)

    def suppressions(self) -> dict[str, str]:
        path = self.root / "subscribers" / "suppressions.csv"
        if not path.exists():
            return {}
        with path.open(encoding="utf-8") as rows:
            return {row["email"]: row["reason"] for row in csv.DictReader(rows)}

    def stored(self) -> int:
        with sqlite3.connect(self.root / ".compose" / "events.sqlite") as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sent]:
    root = make_project(tmp_path_factory.mktemp("webhook"), READERS, transport="sendgrid")
    signer = WebhookSigner()
    with SendGridDouble(api_key=KEY) as double:
        result = send(root, SENDGRID_API_KEY=KEY, COMPOSE_SENDGRID_HOST=double.url)
        assert result.code == 0, result.stderr
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PUBLIC_KEY_ENV, signer.public_key)
        app = create_app(load_project(root), root / "build")
    with ServerThread(app) as server:
        yield Sent(root, double, signer, server.base)


def test_every_message_carries_its_issue_list_and_delivery_id(sent: Sent) -> None:
    payload, personal = sent.double.personalization("reader0@example.org")
    assert payload["custom_args"] == {"issue": "x", "list": "main"}
    delivery = personal["custom_args"]["delivery"]
    assert len(delivery) == 16 and "reader0" not in delivery


def test_signed_events_suppress_at_once_and_count_the_rest(sent: Sent) -> None:
    events = [
        sent.event("reader0@example.org", event="delivered", sg_event_id="a-del-0"),
        sent.event("reader0@example.org", event="bounce", type="bounce", sg_event_id="a-b-0",
                   status="5.1.1", reason="550 5.1.1 The email account does not exist"),
        sent.event("reader1@example.org", event="spamreport", sg_event_id="a-s-1"),
        sent.event("reader2@example.org", event="group_unsubscribe", sg_event_id="a-u-2"),
        sent.event("reader3@example.org", event="bounce", type="blocked", sg_event_id="a-sb-3",
                   reason="421 try again later"),
        sent.event("reader4@example.org", event="deferred", sg_event_id="a-d-4"),
        sent.event("reader5@example.org", event="dropped", reason="Invalid", sg_event_id="a-x-5"),
    ]  # fmt: skip
    response = sent.post(events)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] == 7
    suppressed = sent.suppressions()
    assert suppressed["reader0@example.org"].startswith("hard bounce (sendgrid: 5.1.1 550")
    assert suppressed["reader1@example.org"] == "complained (sendgrid spam report)"
    assert suppressed["reader2@example.org"] == "unsubscribed (sendgrid)"
    assert suppressed["reader5@example.org"].startswith("invalid address (sendgrid dropped")
    assert "reader3@example.org" not in suppressed  # a soft bounce is counted, not suppressed
    assert "reader4@example.org" not in suppressed

    # SendGrid retries a batch it thinks failed: each event is applied once.
    before = sent.stored()
    replay = sent.post(events)
    assert replay.json()["applied"] == 0 and replay.json()["duplicates"] == 7
    assert sent.stored() == before


def test_a_missing_forged_or_stale_signature_is_403_and_applies_nothing(sent: Sent) -> None:
    events = [sent.event("reader4@example.org", event="spamreport", sg_event_id="f-1")]
    body = body_of(events)
    other = body_of([sent.event("reader4@example.org", event="delivered", sg_event_id="f-2")])
    before = sent.stored()
    cases = {
        "none": {"Content-Type": "application/json"},
        "other body": sent.signer.headers(other),
        "stale": sent.signer.headers(body, at=time.time() - 11 * 60),
        "another key": WebhookSigner().headers(body),
        "garbage": {**sent.signer.headers(body), "X-Twilio-Email-Event-Webhook-Signature": "!!"},
    }
    for name, headers in cases.items():
        response = sent.post_body(body, headers)
        assert response.status_code == 403, name
    assert sent.stored() == before
    assert "reader4@example.org" not in sent.suppressions()


def test_unknown_types_unsent_issues_and_forged_ids_are_counted_not_kept(sent: Sent) -> None:
    events = [
        sent.event("reader4@example.org", event="group_resubscribe_v9", sg_event_id="u-1"),
        sent.event("reader4@example.org", event="spamreport", issue="vol-99", sg_event_id="u-2"),
        sent.event("reader4@example.org", event="spamreport", delivery="A" * 16, sg_event_id="u-3"),
        {"event": "spamreport", "email": "reader4@example.org", "sg_event_id": "u-4"},
    ]
    response = sent.post(events)
    assert response.status_code == 200
    assert response.json()["applied"] == 0
    assert response.json()["not_kept"] == {"unknown_type": 1, "unmatched": 3}
    assert "reader4@example.org" not in sent.suppressions()


def test_a_batch_that_is_not_a_list_of_events_is_400(sent: Sent) -> None:
    for body in (b"{", b'{"event": "open"}', b"[1, 2]"):
        response = sent.post_body(body, sent.signer.headers(body))
        assert response.status_code == 400


def test_ten_thousand_events_in_one_batch_and_a_body_over_1_mb(sent: Sent) -> None:
    events = [
        {
            "email": f"reader{i % 6}@example.org",
            "event": "open",
            "issue": "x",
            "sg_event_id": f"{i}",
        }
        for i in range(10_000)
    ]
    body = body_of(events)
    assert len(body) < 1024 * 1024
    response = sent.post_body(body, sent.signer.headers(body))
    assert response.status_code == 200
    assert response.json()["applied"] == 10_000
    big = body_of(events * 2)
    assert len(big) > 1024 * 1024
    assert sent.post_body(big, sent.signer.headers(big)).status_code == 413
