"""The reader's side in a real Chromium: sign up, confirm from the e-mail, change preferences,
unsubscribe, resubscribe. Each page is checked with axe and for WCAG AA text contrast in light
and dark, at 375 px and on a desktop.

Screenshots for docs/readers.md (docs/signup-*.png) are regenerated only on request:

    COMPOSE_UPDATE_SCREENSHOT=1 python -m pytest -p no:cacheprovider tests/test_signup_browser.py
"""

from __future__ import annotations

import email
import os
import re
from email import policy
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from composer.delivery.tokens import make_token
from tests.axe import describe, serious_violations
from tests.browser import offline_page, text_contrasts
from tests.conftest import REPO
from tests.doubles.smtp_servers import smtp_server
from tests.test_signup import (
    CONSENT,
    SECRET,
    ReaderServer,
    confirm_link,
    consent_rows,
    list_rows,
    outbox_message,
)

DOCS = REPO / "docs"
UPDATE = bool(os.environ.get("COMPOSE_UPDATE_SCREENSHOT"))
VIEWPORTS = {"mobile": {"width": 375, "height": 740}, "desktop": {"width": 1100, "height": 800}}


def check_page(page: Page, what: str, shot: str | None = None) -> None:
    """axe and WCAG AA contrast of the page as it stands, in light and dark, narrow and wide;
    with COMPOSE_UPDATE_SCREENSHOT, its picture as docs/signup-<shot>.png."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for size, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            found = serious_violations(page)
            assert not found, f"{what} ({scheme}, {size}):\n{describe(found)}"
            low = [
                c for c in text_contrasts(page) if float(str(c["ratio"])) < float(str(c["needed"]))
            ]
            assert not low, f"{what} ({scheme}, {size}): low contrast {low}"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{what} ({scheme}, {size}) scrolls sideways"
            if UPDATE and shot and (scheme, size) in (("light", "desktop"), ("dark", "mobile")):
                suffix = "" if scheme == "light" else "-dark-375"
                path = DOCS / f"signup-{shot}{suffix}.png"
                page.screenshot(path=str(path), full_page=True)
                assert path.stat().st_size < 200_000
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(VIEWPORTS["desktop"])


def heading(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


def fill_sign_up(page: Page, base: str, address: str) -> None:
    page.goto(f"{base}/subscribe")
    heading(page, "Subscribe to Signup Test Bulletin")
    check_page(page, "the sign-up form", "form")
    page.get_by_label("E-mail address").fill(address)
    page.get_by_label("Name (optional)").fill("Ana Petrović")
    page.get_by_label("events").check()
    page.get_by_label("Drug use prevention and treatment").check()
    page.get_by_label(CONSENT).check()
    page.get_by_role("button", name="Subscribe").click()
    heading(page, "Check your inbox")


def test_the_whole_journey_in_chromium(browser: Browser, tmp_path: Path) -> None:
    with ReaderServer(tmp_path / "project") as served, offline_page(browser) as page:
        project = served.project
        base = served.base
        # A missing consent: the browser itself asks first (required); without that, we do.
        page.goto(f"{base}/subscribe")
        page.get_by_label("E-mail address").fill("ana@example.org")
        page.evaluate("document.querySelector('input[name=consent]').required = false")
        page.get_by_role("button", name="Subscribe").click()
        expect(page.get_by_role("alert")).to_contain_text("Please tick the box")
        check_page(page, "the sign-up form with an error")

        fill_sign_up(page, base, "ana@example.org")
        check_page(page, "the check-your-inbox page", "sent")
        link = confirm_link(outbox_message(project, "ana@example.org"))

        page.goto(link)
        heading(page, "Confirm your subscription?")
        check_page(page, "the confirmation page", "confirm")
        assert list_rows(project, "events") == []  # opening the link changed nothing
        page.get_by_role("button", name="Confirm").click()
        heading(page, "You are subscribed")
        check_page(page, "the subscribed page", "confirmed")
        for name in ("newsletter", "events"):
            (row,) = [r for r in list_rows(project, name) if r["email"] == "ana@example.org"]
            assert (row["name"], row["interests"]) == ("Ana Petrović", "III")
        actions = [(r["list"], r["action"]) for r in consent_rows(project)]
        assert actions == [
            ("newsletter", "subscribe"),
            ("events", "subscribe"),
            ("newsletter", "confirm"),
            ("events", "confirm"),
        ]

        page.get_by_role("link", name="Change what you receive").click()
        heading(page, "Your preferences")
        check_page(page, "the preferences page", "preferences")
        page.get_by_label("events").uncheck()
        page.get_by_label("Organized crime and illicit financial flows").check()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_contain_text("newsletter: updated.")
        expect(page.get_by_role("status")).to_contain_text("events: unsubscribed.")
        check_page(page, "the saved preferences page", "preferences-saved")
        (row,) = [r for r in list_rows(project, "newsletter") if r["email"] == "ana@example.org"]
        assert row["interests"] == "II;III"

        token = make_token(SECRET, "newsletter", "ana@example.org")
        page.goto(f"{base}/unsubscribe/{token}")
        heading(page, "Unsubscribe from Signup Test Bulletin?")
        check_page(page, "the unsubscribe page", "unsubscribe")
        page.get_by_role("button", name="Unsubscribe").click()
        heading(page, "You are unsubscribed")
        check_page(page, "the unsubscribed page", "unsubscribed")
        page.get_by_role("button", name="Resubscribe").click()
        heading(page, "You are subscribed again")
        check_page(page, "the resubscribed page", "resubscribed")
        actions = [(r["list"], r["action"], r["form"]) for r in consent_rows(project)][4:]
        assert actions == [
            ("newsletter", "preferences", "preferences"),
            ("events", "unsubscribe", "preferences"),
            ("newsletter", "unsubscribe", "one-click"),
            ("newsletter", "resubscribe", "unsubscribe-undo"),
        ]


def test_the_confirmation_goes_through_smtp(browser: Browser, tmp_path: Path) -> None:
    with smtp_server() as mail:
        transport = f"  kind: smtp\n  host: 127.0.0.1\n  port: {mail.port}"
        with (
            ReaderServer(tmp_path / "project", transport=transport) as served,
            offline_page(browser) as page,
        ):
            fill_sign_up(page, served.base, "smtp.reader@example.org")
            (received,) = mail.handler.messages
            assert received.rcpt_tos == ["smtp.reader@example.org"]
            assert received.mail_from == "bulletin@example.org"
            message = email.message_from_bytes(received.data, policy=policy.default)
            assert isinstance(message, email.message.EmailMessage)
            assert message["Subject"] == "Confirm your subscription to Signup Test Bulletin"
            assert not (served.project.root / "outbox").exists()
            page.goto(confirm_link(message))
            page.get_by_role("button", name="Confirm").click()
            heading(page, "You are subscribed")
            emails = [r["email"] for r in list_rows(served.project, "events")]
            assert emails == ["smtp.reader@example.org"]


def test_the_embeddable_snippet_of_the_docs_works(browser: Browser, tmp_path: Path) -> None:
    """The copy-paste HTML of docs/readers.md, on a page of another site, posts to us."""
    snippet = re.search(
        r"<!-- sign-up snippet -->\n(.*?)<!-- end of snippet -->",
        (DOCS / "readers.md").read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert snippet, "docs/readers.md has no sign-up snippet"
    address = "partner.reader@example.org"
    with ReaderServer(tmp_path / "project") as served, offline_page(browser) as page:
        html = snippet.group(1).replace("https://newsletter.example.org/", f"{served.base}/")
        page.set_content(f"<!doctype html><html lang='en'><title>Partner site</title>{html}")
        page.get_by_label("E-mail address").fill(address)
        page.get_by_label(re.compile("I agree")).check()
        page.get_by_role("button", name="Subscribe").click()
        heading(page, "Check your inbox")
        records = consent_rows(served.project)
        assert [(r["email"], r["form"]) for r in records] == [(address, "embed")]
