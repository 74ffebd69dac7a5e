"""Click tracking through `compose serve`: links rewritten once per issue, /c/<token> over real
HTTP (302 to the sealed URL, tampered token 404, `javascript:` never a target), scanners apart."""

from __future__ import annotations

import email
import html
import json
import re
import sqlite3
from collections.abc import Iterator
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from doubles.delivery_project import make_project, send
from doubles.sendgrid_api import SendGridDouble

from composer.build import build_issue
from composer.delivery.tokens import load_secret
from composer.events.clicks import PURPOSE
from composer.events.ids import expected_id
from composer.project import Project, load_project
from composer.web.app import create_app
from composer.web.signed import make_signed
from tests.conftest import run_compose
from tests.test_serve import ServerThread

TRACKING = """website: https://www.example.org/
public_url: https://news.example.org/
tracking:
  clicks: true
  utm: {source: newsletter, medium: email}
"""
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = make_project(tmp_path, 2, extra_config=TRACKING)
    return load_project(root)


@pytest.fixture
def server(project: Project) -> Iterator[str]:
    with ServerThread(create_app(project, project.root / "build")) as running:
        yield running.base


def test_links_of_the_html_part_go_through_c_and_the_text_keeps_them(project: Project) -> None:
    built = build_issue(project, project.root / "issues" / "x.yaml")
    hrefs = [html.unescape(h) for h in re.findall(r'<a\b[^>]*href="([^"]+)"', built.email_html)]
    tracked = [h for h in hrefs if h.startswith("https://news.example.org/c/")]
    assert tracked, hrefs
    assert "https://example.org/intro" not in built.email_html
    assert "https://example.org/intro" in built.email_txt  # readable URLs in the text part
    assert not [h for h in hrefs if "compose.invalid" not in h and h not in tracked
                and h.startswith("http")]  # fmt: skip
    again = build_issue(project, project.root / "issues" / "x.yaml")
    assert again.email_html == built.email_html  # once per issue, the same for every reader


def test_a_click_redirects_to_the_sealed_url_with_utm_on_our_website(
    project: Project, server: str
) -> None:
    built = build_issue(project, project.root / "issues" / "x.yaml")
    hrefs = [html.unescape(h) for h in re.findall(r'<a\b[^>]*href="([^"]+)"', built.email_html)]
    targets = {}
    for href in {h for h in hrefs if h.startswith("https://news.example.org/c/")}:
        path = urlsplit(href).path
        response = httpx.get(f"{server}{path}", headers={"User-Agent": BROWSER})
        assert response.status_code == 302
        targets[response.headers["location"]] = path
    ours = [u for u in targets if urlsplit(u).hostname in ("example.org", "www.example.org")]
    others = [url for url in targets if url not in ours]
    assert "https://example.org/intro?utm_campaign=x&utm_source=newsletter&utm_medium=email" in ours
    assert others and all("utm_" not in url for url in others)  # the archive is not `website`
    for url in ours:
        query = parse_qs(urlsplit(url).query)
        assert query["utm_source"] == ["newsletter"] and query["utm_campaign"] == ["x"]
    with sqlite3.connect(project.root / ".compose" / "events.sqlite") as db:
        counted = dict(db.execute("SELECT url, total FROM link_clicks WHERE issue='x'"))
    assert counted == dict.fromkeys(targets, 1)


def test_tampered_foreign_and_javascript_tokens_are_404(project: Project, server: str) -> None:
    secret = load_secret(project)
    good = make_signed(secret, PURPOSE, {"i": "x", "u": "https://example.org/a"}, now=0)
    tampered = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    evil = [
        make_signed(secret, PURPOSE, {"i": "x", "u": url}, now=0)
        for url in (
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "data:text/html,hi",
            "//evil.example.com/",
        )
    ]
    other_purpose = make_signed(secret, "confirm", {"i": "x", "u": "https://example.org/a"})
    other_secret = make_signed(b"another secret", PURPOSE, {"i": "x", "u": "https://example.org/"})
    assert httpx.get(f"{server}/c/{good}").status_code == 302
    for token in (tampered, *evil, other_purpose, other_secret, "x", "A" * 3000):
        response = httpx.get(f"{server}/c/{token}")
        assert response.status_code == 404, token
        assert "location" not in response.headers


def test_scanners_are_counted_apart(project: Project, server: str) -> None:
    secret = load_secret(project)
    token = make_signed(secret, PURPOSE, {"i": "x", "u": "https://example.org/a"}, now=0)
    httpx.get(f"{server}/c/{token}", headers={"User-Agent": BROWSER})
    httpx.get(f"{server}/c/{token}", headers={"User-Agent": "Mozilla/5.0 (compatible; Barracuda)"})
    httpx.head(f"{server}/c/{token}", headers={"User-Agent": BROWSER})
    with sqlite3.connect(project.root / ".compose" / "events.sqlite") as db:
        row = db.execute("SELECT total, scanner FROM link_clicks WHERE issue='x'").fetchone()
    assert row == (1, 2)


def test_without_tracking_clicks_there_is_no_redirect(tmp_path: Path) -> None:
    project = load_project(make_project(tmp_path, 1))
    secret = load_secret(project)
    token = make_signed(secret, PURPOSE, {"i": "x", "u": "https://example.org/a"}, now=0)
    built = build_issue(project, project.root / "issues" / "x.yaml")
    assert "/c/" not in built.email_html and "https://example.org/intro" in built.email_html
    with ServerThread(create_app(project, project.root / "build")) as running:
        assert httpx.get(f"{running.base}/c/{token}").status_code == 404


def test_per_recipient_links_carry_each_readers_delivery_id_and_count_readers(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, 2, extra_config=TRACKING + "  per_recipient: true\n")
    project = load_project(root)
    assert send(root).code == 0
    secret = load_secret(project)
    links: dict[str, set[str]] = {}
    for n in range(2):
        email_address = f"reader{n:04d}@example.org"
        message = email.message_from_bytes(
            (root / "outbox" / "x" / f"{email_address}.eml").read_bytes(), policy=default_policy
        )
        body = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        hrefs = {html.unescape(h) for h in re.findall(r'href="(https://news[^"]+/c/[^"]+)"', body)}
        ids = {parse_qs(urlsplit(h).query)["r"][0] for h in hrefs}
        assert ids == {expected_id(secret, "x", "main", email_address)}  # theirs, on every link
        assert "/c/" not in text and "zqREADER" not in body + text
        links[email_address] = hrefs
    first = min(links["reader0000@example.org"])
    path = urlsplit(first).path
    other = next(h for h in links["reader0001@example.org"] if urlsplit(h).path == path)
    with ServerThread(create_app(project, root / "build")) as running:
        for href in (first, first, other, f"https://news.example.org{path}?r=not-an-id"):
            parts = urlsplit(href)
            response = httpx.get(
                f"{running.base}{parts.path}?{parts.query}", headers={"User-Agent": BROWSER}
            )
            assert response.status_code == 302
    report = run_compose("--project", root, "report", root / "issues" / "x.yaml", "--json")
    assert report.code == 0, report.stderr
    figures = {link["url"]: link for link in json.loads(report.stdout)["links"]}
    clicked = next(link for link in figures.values() if link["total"] == 4)
    assert clicked["unique"] == 2  # two readers; the bogus id is nobody's
    # The reader's clicks are theirs: exported with them, erased with them.
    exported = run_compose("--project", root, "subscribers", "export", "reader0001@example.org")
    assert len(json.loads(exported.stdout)["clicks"]) == 1
    assert (
        run_compose("--project", root, "subscribers", "forget", "reader0000@example.org").code == 0
    )
    with sqlite3.connect(root / ".compose" / "events.sqlite") as db:
        kept = db.execute("SELECT delivery FROM reader_clicks").fetchall()
    assert kept == [(expected_id(secret, "x", "main", "reader0001@example.org"),)]


def test_per_recipient_links_through_sendgrid_are_filled_per_reader(tmp_path: Path) -> None:
    key = "SG.secret-test-key-do-not-print"
    config = TRACKING + "  per_recipient: true\n"
    root = make_project(tmp_path, 2, transport="sendgrid", extra_config=config)
    with SendGridDouble(api_key=key) as double:
        result = send(root, SENDGRID_API_KEY=key, COMPOSE_SENDGRID_HOST=double.url)
        assert result.code == 0, result.stderr
    secret = load_secret(load_project(root))
    for n in range(2):
        address = f"reader{n:04d}@example.org"
        _, body = double.rendered(address)
        ids = {parse_qs(urlsplit(html.unescape(h)).query)["r"][0]
               for h in re.findall(r'href="(https://news[^"]+/c/[^"]+)"', body)}  # fmt: skip
        assert ids == {expected_id(secret, "x", "main", address)}


def test_opens_asked_of_an_smtp_or_outbox_send_are_said_to_count_none(tmp_path: Path) -> None:
    root = make_project(tmp_path, 1, extra_config=TRACKING + "  opens: true\n")
    result = send(root)
    assert result.code == 0
    assert "tracking.opens counts opens only for SendGrid sends" in result.stderr
    body = (root / "outbox" / "x" / "reader0000@example.org.eml").read_bytes()
    assert b"<img" not in body  # no pixel of ours
