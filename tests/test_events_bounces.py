"""`compose bounces import`: real mbox and Maildir files of real-world report shapes, after a
real SMTP send (aiosmtpd), matched by the Message-ID each report quotes."""

from __future__ import annotations

import csv
import email
import json
import mailbox
import sqlite3
from pathlib import Path

import pytest
from doubles.delivery_project import make_project, run, send
from doubles.smtp_servers import smtp_server

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
READERS = [(f"reader{i}@example.org", f"Reader {i}") for i in range(6)]
SHAPES = {  # fixture -> the reader it bounces
    "postfix.eml": "reader0@example.org",
    "exchange.eml": "reader1@example.org",
    "gmail.eml": "reader2@example.org",
    "qmail.eml": "reader3@example.org",
    "gmail-delay.eml": "reader4@example.org",
}


@pytest.fixture(scope="module")
def smtp_sent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """A project that sent issue x over SMTP, and the headers each reader's copy had."""
    root = make_project(tmp_path_factory.mktemp("bounces"), READERS, transport="smtp")
    with smtp_server() as server:
        result = send(root, COMPOSE_SMTP_HOST="127.0.0.1", COMPOSE_SMTP_PORT=str(server.port))
        assert result.code == 0, result.stderr
        heads = {m.rcpt_tos[0]: m.data.split(b"\r\n\r\n", 1)[0] for m in server.handler.messages}
    return root, heads


def report(shape: str, recipient: str, heads: dict[str, bytes]) -> bytes:
    original = heads[recipient].replace(b"\r\n", b"\n")
    text = (FIXTURES / shape).read_bytes()
    return text.replace(b"@@ORIGINAL@@", original).replace(b"@@RECIPIENT@@", recipient.encode())


def fresh(tmp_path: Path, root: Path) -> Path:
    """A copy of the sent project, so each test starts from the same send."""
    import shutil

    target = tmp_path / "p"
    shutil.copytree(root, target)
    return target


def suppressed(root: Path) -> dict[str, str]:
    path = root / "subscribers" / "suppressions.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as rows:
        return {row["email"]: row["reason"] for row in csv.DictReader(rows)}


def kinds(root: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(root / ".compose" / "events.sqlite") as db:
        rows = db.execute("SELECT email, kind, issue, list FROM events").fetchall()
    return {email: (kind, f"{issue}/{name}") for email, kind, issue, name in rows}


def test_an_mbox_of_every_shape_suppresses_hard_bounces_once(
    smtp_sent: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root = fresh(tmp_path, smtp_sent[0])
    box_path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(box_path)
    for shape, recipient in SHAPES.items():
        box.add(email.message_from_bytes(report(shape, recipient, smtp_sent[1])))
    box.add(email.message_from_bytes((FIXTURES / "reply.eml").read_bytes()))
    box.close()

    first = run(root, "bounces", "import", str(box_path))
    assert first.code == 0, first.stderr
    assert "6 message(s) read: 5 bounce(s) applied" in first.stdout
    assert "1 not a bounce report" in first.stdout
    assert "4 address(es) newly suppressed" in first.stdout
    reasons = suppressed(root)
    assert reasons["reader0@example.org"].startswith("hard bounce (mailbox: 5.1.1 smtp; 550")
    assert "5.1.10" in reasons["reader1@example.org"]
    assert set(reasons) == {f"reader{i}@example.org" for i in range(4)}
    found = kinds(root)
    assert found["reader4@example.org"] == ("soft_bounce", "x/main")
    assert found["reader3@example.org"] == ("bounce", "x/main")  # qmail: no DSN, still matched

    shown = run(root, "report", str(root / "issues" / "x.yaml"), "--json")
    summary = json.loads(shown.stdout)["summary"]
    assert (summary["bounced (hard)"], summary["bounced (soft)"]) == (4, 1)

    again = run(root, "bounces", "import", str(box_path))
    assert "0 bounce(s) applied, 5 already imported" in again.stdout
    assert "0 address(es) newly suppressed" in again.stdout
    assert suppressed(root) == reasons


def test_a_maildir_and_a_report_for_someone_we_never_mailed(
    smtp_sent: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    root = fresh(tmp_path, smtp_sent[0])
    folder = tmp_path / "Maildir"
    box = mailbox.Maildir(folder)
    box.add(report("postfix.eml", "reader5@example.org", smtp_sent[1]))
    stranger = report("qmail.eml", "reader5@example.org", smtp_sent[1]).replace(
        b"reader5@example.org", b"stranger@example.com"
    )
    box.add(stranger)
    box.close()
    result = run(root, "bounces", "import", str(folder))
    assert result.code == 0, result.stderr
    assert "1 bounce(s) applied" in result.stdout and "1 not ours" in result.stdout
    assert set(suppressed(root)) == {"reader5@example.org"}


def test_a_path_that_is_no_mailbox_is_one_line_and_exit_2(tmp_path: Path) -> None:
    root = make_project(tmp_path, 1)
    (tmp_path / "notes.txt").write_text("hello\n", encoding="utf-8")
    for target in (tmp_path / "missing", tmp_path / "notes.txt", tmp_path):
        result = run(root, "bounces", "import", str(target))
        assert result.code == 2, result.stdout
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
