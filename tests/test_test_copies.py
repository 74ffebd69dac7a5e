"""A `send --test` copy goes to an outbox folder of its own, and its links change nothing.

Before, clicking "Unsubscribe" in a test copy suppressed the tester everywhere.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import httpx

from composer.audience.suppressions import suppression_rows
from composer.project import load_project
from composer.web.app import create_app
from tests.conftest import run_compose
from tests.test_serve import ServerThread

SECRET = "test-copies-secret"


def test_a_test_copys_links_change_nothing(small_project: Path, monkeypatch) -> None:
    monkeypatch.setenv("COMPOSE_SECRET", SECRET)
    root = small_project
    (root / "subscribers").mkdir()
    (root / "subscribers" / "main.csv").write_text("email\nreader@example.org\n", "utf-8")
    result = run_compose(
        "send", "issues/small.yaml", "--list", "main", "--test", "tester@example.org", "--yes",
        cwd=root,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    copy = root / "outbox" / "test" / "small" / "tester@example.org.eml"
    assert copy.is_file()
    assert not (root / "outbox" / "small").exists()  # the real send's folder stays empty

    message = email.message_from_bytes(copy.read_bytes(), policy=email.policy.default)
    link = str(message["List-Unsubscribe"]).split("<https://", 1)[1].split(">", 1)[0]
    token = link.rstrip("/").rsplit("/", 1)[1]
    project = load_project(root)
    with ServerThread(create_app(project, root / "build", secret=SECRET.encode())) as server:
        base = server.base + "/newsletter" if "/newsletter/" in link else server.base
        asked = httpx.get(f"{base}/unsubscribe/{token}")
        posted = httpx.post(
            f"{base}/unsubscribe/{token}",
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        preferences = httpx.get(f"{server.base}/preferences/{token}")
    for response in (asked, posted, preferences):
        assert response.status_code == 200
        assert "This link is from a test copy" in response.text
        assert "t***@example.org" in response.text
    assert list(suppression_rows(project)) == []
    assert not (root / "subscribers" / "consent.csv").exists()


def test_every_issue_links_each_reader_to_their_own_preferences(
    small_project: Path, monkeypatch
) -> None:
    monkeypatch.setenv("COMPOSE_SECRET", SECRET)
    root = small_project
    (root / "subscribers").mkdir()
    (root / "subscribers" / "main.csv").write_text("email\nreader@example.org\n", "utf-8")
    result = run_compose("send", "issues/small.yaml", "--list", "main", "--yes", cwd=root)
    assert result.code == 0, result.stderr
    raw = (root / "outbox" / "small" / "reader@example.org.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    html_part = message.get_body(("html",)).get_content()
    link = next(line for line in text.splitlines() if line.startswith("Preferences: "))
    url = link.removeprefix("Preferences: ")
    assert f'href="{url}"' in html_part and "preferences.compose.invalid" not in raw.decode()
    token = url.rsplit("/", 1)[1]
    project = load_project(root)
    with ServerThread(create_app(project, root / "build", secret=SECRET.encode())) as server:
        page = httpx.get(f"{server.base}/preferences/{token}")
    assert page.status_code == 200
    assert "r***@example.org" in page.text and "test copy" not in page.text
