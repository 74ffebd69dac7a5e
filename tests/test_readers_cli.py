"""`compose subscribers add|remove|forget|export` and `compose suppressions remove`."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from composer.audience.consent import COLUMNS
from composer.audience.suppressions import add_suppressions, load_suppressed
from composer.project import Project, load_project
from tests.conftest import run_compose
from tests.test_signup import write_project

SECRET = {"COMPOSE_SECRET": "readers-cli-secret"}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("COMPOSE_SECRET", SECRET["COMPOSE_SECRET"])
    made = write_project(tmp_path / "project", "https://news.example.org/")
    (made.subscribers_dir / "events.csv").write_text("email\n", encoding="utf-8")
    return made


def compose(project: Project, *args: str | Path) -> tuple[int, str, str]:
    result = run_compose("--project", project.root, *args, env=SECRET)
    return result.code, result.stdout, result.stderr


def rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def consent(project: Project) -> list[tuple[str, str, str, str]]:
    found = rows(project.subscribers_dir / "consent.csv")
    assert all(tuple(r) == COLUMNS for r in found)
    return [(r["email"], r["list"], r["action"], r["form"]) for r in found]


def test_add_update_and_remove_a_reader(project: Project) -> None:
    code, out, _ = compose(
        project, "subscribers", "add", "Ana@Example.org", "--list", "newsletter",
        "--field", "name=Ana P", "--field", "interests=I;II", "--field", "country=Serbia",
    )  # fmt: skip
    assert code == 0, out
    assert "Ana@example.org: added (newsletter)" in out
    newsletter = project.subscribers_dir / "newsletter.csv"
    assert rows(newsletter)[-1] == {
        "email": "Ana@example.org", "name": "Ana P", "interests": "I;II", "country": "Serbia",
    }  # fmt: skip
    code, out, _ = compose(project, "subscribers", "add", "ana@example.org", "--list", "newsletter")
    assert (code, out.strip()) == (0, "ana@example.org: unchanged (newsletter)")
    code, out, _ = compose(
        project, "subscribers", "add", "ana@example.org", "--list", "newsletter",
        "--field", "country=Albania",
    )  # fmt: skip
    assert "updated" in out
    assert rows(newsletter)[-1]["country"] == "Albania"
    code, out, _ = compose(
        project, "subscribers", "remove", "ANA@example.org", "--list", "newsletter"
    )
    assert code == 0 and "removed" in out
    assert [r["email"] for r in rows(newsletter)] == ["known@example.org"]
    code, out, _ = compose(
        project, "subscribers", "remove", "ana@example.org", "--list", "newsletter"
    )
    assert code == 0 and "is not on newsletter" in out
    assert consent(project) == [
        ("Ana@example.org", "newsletter", "subscribe", "cli"),
        ("ana@example.org", "newsletter", "subscribe", "cli"),
        ("ANA@example.org", "newsletter", "unsubscribe", "cli"),
    ]


def test_add_refuses_bad_input(project: Project) -> None:
    code, _, err = compose(project, "subscribers", "add", "not-an-address", "--list", "newsletter")
    assert code == 2 and "ADDR" in err
    code, _, err = compose(project, "subscribers", "add", "a@example.org", "--list", "newsleter")
    assert code == 1 and "did you mean 'newsletter'" in err
    code, _, err = compose(
        project, "subscribers", "add", "a@example.org", "--list", "newsletter",
        "--field", "interests=IX",
    )  # fmt: skip
    assert code == 2 and "not a pillar" in err
    code, _, err = compose(
        project, "subscribers", "add", "a@example.org", "--list", "newsletter", "--field", "email=x"
    )
    assert code == 2


def test_a_suppressed_address_is_refused_until_lifted(project: Project) -> None:
    add_suppressions(project, [("gone@example.org", "bounced", "2026-01-02")])
    code, out, err = compose(
        project, "subscribers", "add", "Gone@example.org", "--list", "newsletter"
    )
    assert code == 1
    assert "compose suppressions remove Gone@example.org" in err
    assert "gone@example.org" not in {
        r["email"] for r in rows(project.subscribers_dir / "newsletter.csv")
    }
    code, out, _ = compose(project, "suppressions", "remove", "GONE@example.org")
    assert code == 0
    assert "lifted the suppression of gone@example.org (bounced, 2026-01-02)" in out
    assert "gone@example.org" not in load_suppressed(project)
    assert consent(project) == [("gone@example.org", "", "resubscribe", "cli")]
    code, out, _ = compose(project, "suppressions", "remove", "gone@example.org")
    assert code == 0 and "is not suppressed" in out
    code, out, _ = compose(
        project, "subscribers", "add", "gone@example.org", "--list", "newsletter"
    )
    assert code == 0 and "added" in out


def delivery_log(project: Project, email: str) -> Path:
    """A delivery log with one row for `email` (the schema's address column: `email`)."""
    path = project.state_dir() / "delivery.sqlite"
    from composer.delivery.log import DeliveryLog

    with DeliveryLog(path) as log:
        log.enqueue("vol-1", "newsletter", [email, "other@example.org"], "outbox")
    return path


def test_export_shows_everything_held(project: Project) -> None:
    compose(project, "subscribers", "add", "held@example.org", "--list", "newsletter")
    compose(project, "subscribers", "add", "held@example.org", "--list", "events")
    add_suppressions(project, [("held@example.org", "complained", "2026-02-03")])
    delivery_log(project, "held@example.org")
    code, out, _ = compose(project, "subscribers", "export", "HELD@example.org")
    assert code == 0
    held = json.loads(out)
    assert held["email"] == "held@example.org"
    assert set(held["lists"]) == {"newsletter", "events"}
    assert [r["action"] for r in held["consent"]] == ["subscribe", "subscribe"]
    assert held["suppressions"] == [
        {"email": "held@example.org", "reason": "complained", "date": "2026-02-03"}
    ]
    ((where, deliveries),) = held["deliveries"].items()
    assert where == "delivery.sqlite:deliveries"
    assert [d["email"] for d in deliveries] == ["held@example.org"]


def test_forget_erases_everywhere_and_import_does_not_re_add(project: Project) -> None:
    compose(project, "subscribers", "add", "erase.me@example.org", "--list", "newsletter")
    compose(project, "subscribers", "add", "erase.me@example.org", "--list", "events")
    add_suppressions(project, [("Erase.Me@example.org", "unsubscribed", "2026-02-03")])
    log = delivery_log(project, "erase.me@example.org")
    outbox = project.root / "outbox" / "confirmations" / "erase.me@example.org.eml"
    outbox.parent.mkdir(parents=True)
    outbox.write_bytes(b"To: erase.me@example.org\r\n\r\nhello\r\n")
    code, out, _ = compose(project, "subscribers", "forget", "ERASE.ME@example.org")
    assert code == 0, out
    assert "list newsletter: 1 row(s)" in out
    assert "list events: 1 row(s)" in out
    assert "consent records: 2" in out
    assert "suppressions: 1" in out
    assert "log delivery.sqlite:deliveries: 1 row(s)" in out
    assert "outbox files: 1" in out
    everything = b"".join(
        p.read_bytes() for p in project.root.rglob("*") if p.is_file() and p.suffix != ".sqlite"
    )
    assert b"erase.me" not in everything.lower()
    with sqlite3.connect(log) as db:
        assert [e for (e,) in db.execute("SELECT email FROM deliveries")] == ["other@example.org"]
    assert not outbox.exists()
    # An old spreadsheet still has them: the import skips that row and says so.
    sheet = project.root / "old.csv"
    sheet.write_text("email,name\nErase.Me@example.org,Old\nfresh@example.org,Fresh\n")
    result = run_compose(
        "--project", project.root, "subscribers", "import", sheet, "--list", "newsletter",
        env=SECRET,
    )  # fmt: skip
    assert result.code == 0
    assert "old.csv:2: this address was erased at the reader's request" in result.stderr
    assert "1 added" in result.stdout and "1 rejected" in result.stdout
    emails = [r["email"] for r in rows(project.subscribers_dir / "newsletter.csv")]
    assert emails == ["known@example.org", "fresh@example.org"]
    code, out, _ = compose(project, "subscribers", "export", "erase.me@example.org")
    held = json.loads(out)
    assert held["lists"] == {} and held["consent"] == [] and held["suppressions"] == []
    assert held["deliveries"] == {}
    forgotten = (project.root / ".compose" / "forgotten").read_text()
    assert "erase.me" not in forgotten and len(forgotten.split()) == 1


def test_import_without_anyone_forgotten_needs_no_secret(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "https://news.example.org/")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("email\nnew@example.org\n")
    result = run_compose("--project", project.root, "subscribers", "import", sheet, "--list", "x")
    assert result.code == 0, result.stderr
    assert not (project.root / ".compose" / "secret").exists()
    assert load_project(project.root).newsletter.signup is not None


def test_add_and_remove_keep_the_lists_excel_dialect(project: Project) -> None:
    path = project.subscribers_dir / "partners.csv"
    path.write_bytes("\ufeffE-mail;Name\r\nmarko@example.org;Marko Horvat\r\n".encode())
    code, _, err = compose(
        project, "subscribers", "add", "ana@example.org", "--list", "partners",
        "--field", "name=Ana Petrović", "--field", "country=Serbia",
    )  # fmt: skip
    assert code == 0, err
    assert path.read_bytes().decode("utf-8") == (
        "\ufeffE-mail;Name;country\r\n"
        "marko@example.org;Marko Horvat;\r\n"
        "ana@example.org;Ana Petrović;Serbia\r\n"
    )
    compose(project, "subscribers", "remove", "marko@example.org", "--list", "partners")
    assert path.read_bytes().decode("utf-8") == (
        "\ufeffE-mail;Name;country\r\nana@example.org;Ana Petrović;Serbia\r\n"
    )
