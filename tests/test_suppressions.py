"""`compose suppressions add|list|sync`, sync against the local SendGrid v3 double."""

from __future__ import annotations

import csv
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from doubles.sendgrid_api import SendGridDouble

from tests.conftest import copy_project
from tests.conftest import run_in_process as compose

FIXTURE = Path(__file__).parent / "fixtures" / "serve" / "project"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SENDGRID_API_KEY", "COMPOSE_SENDGRID_HOST"):
        monkeypatch.delenv(name, raising=False)
    target = copy_project(FIXTURE, tmp_path)
    return target


def test_add_then_list(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compose(
        capsys, "--project", root, "suppressions", "add", "Pat@Example.org", "--reason", "asked"
    )
    assert code == 0
    assert "suppressed" in out
    code, out, _ = compose(capsys, "--project", root, "suppressions", "add", "pat@example.org")
    assert code == 0
    assert "already suppressed" in out
    code, out, _ = compose(capsys, "--project", root, "suppressions", "list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    email, reason, date = lines[0].split("\t")
    assert email.lower() == "pat@example.org"
    assert reason == "asked"
    assert len(date) == 10 and date[4] == "-"


def test_add_refuses_a_bad_address(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = compose(capsys, "--project", root, "suppressions", "add", "not-an-address")
    assert code == 2
    assert "EMAIL" in err
    assert not (root / "subscribers" / "suppressions.csv").exists()


def test_list_of_nothing_is_empty(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compose(capsys, "--project", root, "suppressions", "list")
    assert code == 0
    assert out == ""


KEY = "SG.test-key-that-must-never-show"
UNSUBSCRIBES = [{"email": f"gone{n}@example.org", "created": 1_700_000_000 + n} for n in range(5)]
BOUNCES = [
    {"email": "bounce@example.org", "created": 1_600_000_000, "status": "5.1.1",
     "reason": "550 5.1.1 The email account that you tried to reach does not exist"},
]  # fmt: skip
SPAM = [{"email": "angry@example.org", "created": 1_650_000_000, "ip": "10.1.1.1"}]
GROUP = ["group.leaver@example.org", "GONE0@example.org"]


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridDouble]:
    double = SendGridDouble(
        api_key=KEY,
        unsubscribes=UNSUBSCRIBES,
        bounces=BOUNCES,
        spam_reports=SPAM,
        group_suppressions={4242: GROUP},
        page_max=2,  # five unsubscribes take three pages
    )
    with double:
        monkeypatch.setenv("SENDGRID_API_KEY", KEY)
        monkeypatch.setenv("COMPOSE_SENDGRID_HOST", double.url)
        yield double


def rows(root: Path) -> dict[str, tuple[str, str]]:
    with (root / "subscribers" / "suppressions.csv").open(encoding="utf-8", newline="") as f:
        return {r["email"].lower(): (r["reason"], r["date"]) for r in csv.DictReader(f)}


def test_sync_pulls_every_source_with_reasons(
    root: Path, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 0, err
    got = rows(root)
    expected = {f"gone{n}@example.org" for n in range(5)} | {
        "bounce@example.org", "angry@example.org", "group.leaver@example.org"
    }  # fmt: skip
    assert set(got) == expected
    assert got["gone4@example.org"] == ("unsubscribed (SendGrid global)", "2023-11-14")
    assert got["bounce@example.org"][0].startswith("bounced (SendGrid 5.1.1: 550 5.1.1")
    assert got["bounce@example.org"][1] == "2020-09-13"
    assert got["angry@example.org"][0] == "complained (SendGrid spam report)"
    assert got["group.leaver@example.org"][0] == "unsubscribed (SendGrid group 4242)"
    assert "8 new address(es)" in out
    offsets = [r.query["offset"][0] for r in sendgrid.requests if r.path.endswith("/unsubscribes")]
    assert offsets[:3] == ["0", "2", "4"], "paged with limit/offset"
    assert all(r.status == 200 for r in sendgrid.requests)


def test_sync_is_idempotent(
    root: Path, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compose(capsys, "--project", root, "suppressions", "sync")[0] == 0
    before = (root / "subscribers" / "suppressions.csv").read_bytes()
    code, out, _ = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 0
    assert "0 new address(es)" in out
    assert (root / "subscribers" / "suppressions.csv").read_bytes() == before


def test_sync_keeps_local_suppressions(
    root: Path, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    compose(capsys, "--project", root, "suppressions", "add", "local@example.org", "--reason", "x")
    assert compose(capsys, "--project", root, "suppressions", "sync")[0] == 0
    assert rows(root)["local@example.org"][0] == "x"
    assert len(rows(root)) == 9


def test_sync_never_shows_the_key(
    root: Path,
    sendgrid: SendGridDouble,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not in output, not in the HTTP client's debug log (which dumps request headers)."""
    with caplog.at_level(logging.DEBUG):
        code, out, err = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 0
    assert "python_http_client" in caplog.text  # the debug log really ran
    assert KEY not in out + err + caplog.text
    assert all(r.headers.get("Authorization") == f"Bearer {KEY}" for r in sendgrid.requests)


def test_sync_with_a_wrong_key_writes_nothing(
    root: Path,
    sendgrid: SendGridDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = "SG.wrong-key-also-secret"
    monkeypatch.setenv("SENDGRID_API_KEY", wrong)
    code, out, err = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 1
    assert "HTTP 401" in err and "SENDGRID_API_KEY" in err
    assert wrong not in out + err
    assert len(err.strip().splitlines()) == 1
    assert not (root / "subscribers" / "suppressions.csv").exists()


def test_sync_without_a_key_is_a_usage_error(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 2
    assert "SENDGRID_API_KEY" in err


def test_sync_when_sendgrid_is_unreachable(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("COMPOSE_SENDGRID_HOST", f"http://127.0.0.1:{port}")
    code, _, err = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 1
    assert "cannot reach SendGrid" in err
    assert not (root / "subscribers" / "suppressions.csv").exists()


def test_sync_without_a_group_skips_group_unsubscribes(
    root: Path, sendgrid: SendGridDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    config = root / "newsletter.yaml"
    config.write_text(config.read_text().replace("  asm_group_id: 4242\n", ""))
    code, _, err = compose(capsys, "--project", root, "suppressions", "sync")
    assert code == 0
    assert "skipped group unsubscribes" in err
    assert not any("/asm/" in r.path for r in sendgrid.requests)
    assert "group.leaver@example.org" not in rows(root)
