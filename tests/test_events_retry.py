"""A re-run of `send` retries soft bounces once their window has passed; never hard bounces,
complaints or soft bounces still inside the window. Real SMTP send (aiosmtpd), real stores."""

from __future__ import annotations

import time
from pathlib import Path

from doubles.delivery_project import make_project, run, send
from doubles.smtp_servers import smtp_server

from composer.events.apply import apply_events
from composer.events.retry import RETRY_AFTER_SECONDS, soft_bounces_due
from composer.events.store import Event, EventStore
from composer.project import load_project

READERS = [(f"reader{i}@example.org", f"Reader {i}") for i in range(4)]


def smtp(server) -> dict[str, str]:
    return {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}


def test_due_soft_bounces_are_sent_again_once(tmp_path: Path) -> None:
    root = make_project(tmp_path, READERS, transport="smtp")
    with smtp_server() as server:
        assert send(root, **smtp(server)).code == 0
        project = load_project(root)
        old = time.time() - RETRY_AFTER_SECONDS - 60
        events = [
            Event("t-1", "x", "reader0@example.org", "soft_bounce", old, "4.2.2 mailbox full",
                  source="mailbox", list="main"),
            Event("t-2", "x", "reader1@example.org", "soft_bounce", time.time() - 60,
                  "4.2.2 mailbox full", source="mailbox", list="main"),
            Event("t-3", "x", "reader2@example.org", "bounce", old, "5.1.1 unknown",
                  source="mailbox", list="main"),
            Event("t-4", "x", "reader3@example.org", "soft_bounce", old, "4.4.1 timeout",
                  source="mailbox", list="main"),
            Event("t-5", "x", "reader3@example.org", "spamreport", old + 10, source="sendgrid",
                  list="main"),
        ]  # fmt: skip
        with EventStore.for_state_dir(project.state_dir()) as store:
            apply_events(project, store, events)
        assert [d.email for d in soft_bounces_due(project, "x")] == ["reader0@example.org"]

        again = send(root, **smtp(server))
        assert again.code == 0, again.stderr
        assert server.handler.recipients()[4:] == ["reader0@example.org"]
        third = send(root, **smtp(server))
        assert third.code == 0 and len(server.handler.recipients()) == 5
    assert soft_bounces_due(project, "x") == []
    report = run(root, "report", str(root / "issues" / "x.yaml"))
    assert "soft bounces handed to the next send for a retry: 1" in report.stdout


def test_soft_bounces_on_three_issues_in_a_row_suppress_and_a_delivery_resets(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, READERS)
    project = load_project(root)
    now = time.time()

    def soft(n: int, email: str, issue: str) -> Event:
        return Event(f"s-{n}", issue, email, "soft_bounce", now + n, "4.2.2 full", list="main")

    with EventStore.for_state_dir(project.state_dir()) as store:
        first = apply_events(project, store, [soft(1, "reader0@example.org", "vol-1"),
                                              soft(2, "reader1@example.org", "vol-1")])  # fmt: skip
        second = apply_events(project, store, [
            soft(3, "reader0@example.org", "vol-2"),
            soft(4, "reader0@example.org", "vol-2"),  # the same issue again: still two
            Event("d-1", "vol-2", "reader1@example.org", "delivered", now + 5, list="main"),
        ])  # fmt: skip
        third = apply_events(project, store, [soft(6, "reader0@example.org", "vol-3"),
                                              soft(7, "reader1@example.org", "vol-3")])  # fmt: skip
    assert (first.suppressed, second.suppressed, third.suppressed) == (0, 0, 1)
    rows = (root / "subscribers" / "suppressions.csv").read_text(encoding="utf-8")
    assert "reader0@example.org,soft bounces on 3 issues in a row (sendgrid)" in rows
    assert "reader1@example.org" not in rows  # delivered in between: the run started again
