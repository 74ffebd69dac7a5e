"""`send --list A --list B`: the union, one copy an address; the delivery log keyed by address."""

from __future__ import annotations

import email
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from doubles.delivery_project import ISSUE, make_project, run
from doubles.sendgrid_api import SendGridDouble
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.delivery.log import DeliveryLog
from composer.delivery.plan import plan_send
from composer.delivery.runner import run_send
from composer.delivery.tokens import read_token
from composer.events.ids import expected_id
from composer.project import load_project

MAIN = [f"reader{n}@example.org" for n in range(4)]  # reader0..3
PARTNERS = ["reader2@example.org", "Reader3@EXAMPLE.org", "reader4@example.org", "r5@example.com"]


def add_list(project: Path, name: str, addresses: list[str]) -> None:
    rows = "".join(f"{a},Reader,Serbia\n" for a in addresses)
    (project / "subscribers" / f"{name}.csv").write_text("email,name,country\n" + rows)


def two_lists(tmp_path: Path) -> Path:
    project = make_project(tmp_path, [(a, "Reader") for a in MAIN])
    add_list(project, "partners", PARTNERS)
    return project


def send_to(project: Path, *lists: str) -> tuple[int, str, str]:
    args = [a for name in lists for a in ("--list", name)]
    result = run(project, "send", str(project / ISSUE), *args, "--yes")
    return result.code, result.stdout, result.stderr


def outbox(project: Path) -> dict[str, email.message.Message]:
    folder = project / "outbox" / "x"
    return {p.stem: email.message_from_bytes(p.read_bytes()) for p in folder.glob("*.eml")}


def test_two_lists_reach_their_union_once_each_through_its_first_list(tmp_path: Path) -> None:
    project = two_lists(tmp_path)
    code, out, err = send_to(project, "main", "partners")
    assert code == 0, err
    assert "lists:      main, partners" in out
    assert "recipients: 6 (0 already sent" in out
    assert "sent: 6" in out
    messages = outbox(project)
    assert sorted(messages) == sorted([*MAIN, "reader4@example.org", "r5@example.com"])
    # Each reader's List-Id (and unsubscribe link) is that of the list that reached them.
    assert messages["reader3@example.org"]["List-Id"].endswith("<main.example.org>")
    assert messages["reader4@example.org"]["List-Id"].endswith("<partners.example.org>")
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        rows = Counter(db.execute("SELECT list FROM deliveries WHERE state='sent'").fetchall())
    assert rows == {("main",): 4, ("partners",): 2}
    status = run(project, "status", str(project / ISSUE)).stdout
    assert "main: sent 4, failed 0, pending 0" in status
    assert "partners: sent 2, failed 0, pending 0" in status
    assert "2 more of its readers were reached through another list" in status


def test_a_later_send_to_an_overlapping_list_reaches_only_its_new_readers(tmp_path: Path) -> None:
    project = two_lists(tmp_path)
    assert send_to(project, "main")[0] == 0
    shutil.rmtree(project / "outbox")
    code, out, err = send_to(project, "partners")
    assert code == 0, err
    assert "recipients: 4 (2 already sent" in out
    assert "sent: 2" in out and "skipped (already sent): 2" in out
    assert sorted(outbox(project)) == ["r5@example.com", "reader4@example.org"]
    again = send_to(project, "partners", "main")  # everyone has it: nothing goes out
    assert again[0] == 0 and "sent: 0" in again[1]


def test_a_list_named_twice_is_one_list(tmp_path: Path) -> None:
    project = two_lists(tmp_path)
    code, out, err = send_to(project, "main", "main.csv")
    assert code == 0, err
    assert "list:       main\n" in out and "sent: 4" in out


_V2_DELIVERIES = """
CREATE TABLE deliveries (
    issue TEXT NOT NULL, list TEXT NOT NULL, email TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN
        ('pending', 'sending', 'sent', 'failed', 'refused', 'unknown')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, provider_id TEXT, transport TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, sent_at REAL,
    bounce INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (issue, list, email)
) WITHOUT ROWID;
CREATE TABLE sends (
    issue TEXT NOT NULL, list TEXT NOT NULL, subject TEXT NOT NULL, mode TEXT NOT NULL,
    content_sha TEXT NOT NULL, transport TEXT NOT NULL, segment TEXT, started_at REAL NOT NULL,
    updated_at REAL NOT NULL, source TEXT, fingerprint TEXT, PRIMARY KEY (issue, list)
);
PRAGMA user_version=2;
"""


def test_a_v2_log_with_an_address_under_two_lists_is_merged_without_losing_a_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "delivery.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_V2_DELIVERIES)
        db.executemany(
            "INSERT INTO deliveries (issue, list, email, state, attempts, last_error, created_at, "
            "updated_at, bounce) VALUES (?, ?, ?, ?, 1, ?, 1, 1, ?)",
            [
                ("x", "main", "a@example.org", "sent", None, 0),  # got it (twice, back then)
                ("x", "partners", "a@example.org", "failed", "451 later", 0),
                ("x", "main", "b@example.org", "pending", None, 0),
                ("x", "partners", "b@example.org", "refused", "550 no such user", 1),
                ("y", "main", "a@example.org", "unknown", "dropped", 0),  # another issue
            ],
        )
    with DeliveryLog(path) as log:
        a, b = log.row("x", "a@example.org"), log.row("x", "b@example.org")
        assert a is not None and (a["state"], a["list"]) == ("sent", "main")
        assert b is not None and (b["state"], b["list"], b["bounce"]) == ("refused", "partners", 1)
        assert log.bounces("x") == [("b@example.org", "550 no such user")]
        assert log.states("y", ["a@example.org"]) == {"a@example.org": "unknown"}
    with sqlite3.connect(path) as db:
        kept = db.execute("SELECT list, email, state FROM superseded_deliveries ORDER BY email")
        assert kept.fetchall() == [
            ("partners", "a@example.org", "failed"),
            ("main", "b@example.org", "pending"),
        ]
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3


POOL = [f"p{n}@example.org" for n in range(8)]
LISTS = ("alpha", "beta", "gamma")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    members=st.tuples(*(st.sets(st.sampled_from(POOL), min_size=1) for _ in LISTS)),
    sends=st.lists(
        st.lists(st.sampled_from(LISTS), min_size=1, max_size=3), min_size=1, max_size=4
    ),
)
def test_any_sequence_of_sends_gives_each_address_one_copy(
    tmp_path_factory, members: tuple[set[str], ...], sends: list[list[str]]
) -> None:
    root = make_project(tmp_path_factory.mktemp("lists"), 0)
    for name, addresses in zip(LISTS, members, strict=True):
        add_list(root, name, sorted(addresses))
    project = load_project(root)
    delivered: Counter[str] = Counter()
    reached: set[str] = set()
    handed_over = 0  # messages given to the transport (two copies in one run are one file)
    for lists in sends:
        plan = plan_send(project, root / ISSUE, lists)
        handed_over += run_send(plan).sent
        reached |= {a for name in lists for a in members[LISTS.index(name)]}
        for message in (root / "outbox" / "x").glob("*.eml"):
            delivered[message.stem] += 1
            message.unlink()  # counted: a second copy would be written anew
    assert delivered == Counter(dict.fromkeys(reached, 1))
    assert handed_over == len(reached)


def test_sendgrid_gives_each_reader_the_list_id_and_link_of_their_list(tmp_path: Path) -> None:
    key = "SG.secret-test-key-do-not-print"
    project = two_lists(tmp_path)
    config = project / "newsletter.yaml"
    config.write_text(config.read_text().replace("kind: outbox", "kind: sendgrid"))
    with SendGridDouble(api_key=key) as double:
        result = run(
            project, "send", str(project / ISSUE), "--list", "main", "--list", "partners",
            "--yes", SENDGRID_API_KEY=key, COMPOSE_SENDGRID_HOST=double.url,
        )  # fmt: skip
        assert result.code == 0, result.stderr
    assert sorted(double.recipients()) == sorted([*MAIN, "reader4@example.org", "r5@example.com"])
    payload, first = double.personalization("reader3@example.org")
    assert payload["headers"]["List-Id"] == "Test Bulletin <main.example.org>"
    assert "List-Id" not in first["headers"]
    _, other = double.personalization("reader4@example.org")
    assert other["headers"]["List-Id"] == "Test Bulletin <partners.example.org>"
    secret = (project / ".compose" / "secret").read_bytes().strip()
    # Events come back with this reader's list and a delivery id the webhook can check.
    assert other["custom_args"] == {
        "list": "partners",
        "delivery": expected_id(secret, "x", "partners", "reader4@example.org"),
    }
    url = other["headers"]["List-Unsubscribe"].split(">")[0].lstrip("<")
    assert read_token(secret, url.rsplit("/", 1)[1]) == ("partners", "reader4@example.org")
