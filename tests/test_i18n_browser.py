"""The reader's pages and the email in Serbian (Latin) and Albanian, in a real Chromium: translated
text, the right `lang`, no sideways scrolling at 375 px, axe-clean and WCAG AA contrast, in light
and dark.

Screenshots for docs/languages.md (docs/languages-*.png) are regenerated only on request:

    COMPOSE_UPDATE_SCREENSHOT=1 python -m pytest -p no:cacheprovider tests/test_i18n_browser.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from composer.build import build_issue
from composer.delivery.tokens import make_token
from composer.project import load_project
from tests.axe import describe, serious_violations
from tests.browser import offline_page, text_contrasts
from tests.conftest import REPO
from tests.test_signup import CONSENT, SECRET, ReaderServer, confirm_link, outbox_message

DOCS = REPO / "docs"
UPDATE = bool(os.environ.get("COMPOSE_UPDATE_SCREENSHOT"))
PHONE: ViewportSize = {"width": 375, "height": 740}
DESKTOP: ViewportSize = {"width": 1100, "height": 800}
NAME = "Signup Test Bulletin"

# The h1 of each page, and its buttons, as a reader of each language sees them.
WORDS = {
    "sr-Latn": {
        "subscribe": f"Prijava na {NAME}",
        "email": "Adresa e-pošte",
        "subscribe-button": "Prijavi se",
        "bad-address": "Unesite važeću adresu e-pošte.",
        "sent": "Proverite svoju e-poštu",
        "confirm": "Da li potvrđujete prijavu?",
        "confirm-button": "Potvrdi",
        "confirmed": "Prijavljeni ste",
        "preferences": "Vaša podešavanja",
        "save": "Sačuvaj",
        "saved": "Sačuvano.",
        "unsubscribe": f"Da li želite da se odjavite sa liste {NAME}?",
        "unsubscribe-button": "Odjavite se",
        "unsubscribed": "Odjavljeni ste",
        "resubscribe-button": "Prijavite se ponovo",
        "resubscribed": "Ponovo ste prijavljeni",
        "invalid": "Ovaj link za odjavu nije važeći",
        "archive": "Još nije objavljen nijedan broj.",
    },
    "sq": {
        "subscribe": f"Abonohuni në {NAME}",
        "email": "Adresa e email-it",
        "subscribe-button": "Abonohu",
        "bad-address": "Ju lutemi shkruani një adresë email-i të vlefshme.",
        "sent": "Kontrolloni kutinë tuaj postare",
        "confirm": "E konfirmoni abonimin?",
        "confirm-button": "Konfirmo",
        "confirmed": "Jeni abonuar",
        "preferences": "Preferencat tuaja",
        "save": "Ruaj",
        "saved": "U ruajt.",
        "unsubscribe": f"Dëshironi të çregjistroheni nga {NAME}?",
        "unsubscribe-button": "Çregjistrohuni",
        "unsubscribed": "Jeni çregjistruar",
        "resubscribe-button": "Abonohuni sërish",
        "resubscribed": "Jeni abonuar sërish",
        "invalid": "Kjo lidhje çregjistrimi nuk është e vlefshme",
        "archive": "Ende nuk është publikuar asnjë numër.",
    },
}
LANGUAGES = list(WORDS)


def check(page: Page, language: str, what: str, shot: str | None = None) -> None:
    """`lang`, axe, contrast and width of the page as it stands, light and dark, at 375 px and
    on a desktop; with COMPOSE_UPDATE_SCREENSHOT, docs/languages-<shot>-<language>.png."""
    assert page.get_attribute("html", "lang") == language, what
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for viewport in (PHONE, DESKTOP):
            where = f"{what} in {language} ({scheme}, {viewport['width']} px)"
            page.set_viewport_size(viewport)
            found = serious_violations(page)
            assert not found, f"{where}:\n{describe(found)}"
            low = [
                c for c in text_contrasts(page) if float(str(c["ratio"])) < float(str(c["needed"]))
            ]
            assert not low, f"{where}: low contrast {low}"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{where} scrolls sideways"
            if UPDATE and shot and scheme == "light" and viewport is PHONE:
                path = DOCS / f"languages-{shot}-{language}.png"
                page.screenshot(path=str(path), full_page=True)
                assert path.stat().st_size < 200_000
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(DESKTOP)


def h1(page: Page, text: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_reader_pages_in_chromium(browser: Browser, tmp_path: Path, language: str) -> None:
    words = WORDS[language]
    address = "ana@example.org"
    with ReaderServer(tmp_path / "project") as served, offline_page(browser) as page:
        base = served.base
        page.set_extra_http_headers({"Accept-Language": f"{language},en;q=0.5"})
        page.goto(f"{base}/subscribe")
        h1(page, words["subscribe"])
        check(page, language, "the sign-up form", "subscribe")
        # A mistake the browser lets through (type=email accepts this), said in the language.
        page.get_by_label(words["email"]).fill("ana@localhost")
        page.get_by_label(CONSENT).check()
        page.get_by_role("button", name=words["subscribe-button"]).click()
        expect(page.get_by_role("alert")).to_have_text(words["bad-address"])
        check(page, language, "the sign-up form with an error")
        page.get_by_label(words["email"]).fill(address)
        page.get_by_label(CONSENT).check()
        page.get_by_role("button", name=words["subscribe-button"]).click()
        h1(page, words["sent"])
        check(page, language, "the check-your-inbox page")

        page.goto(confirm_link(outbox_message(served.project, address)))
        h1(page, words["confirm"])
        check(page, language, "the confirmation page")
        page.get_by_role("button", name=words["confirm-button"]).click()
        h1(page, words["confirmed"])
        check(page, language, "the subscribed page")

        token = make_token(SECRET, "newsletter", address)
        page.goto(f"{base}/preferences/{token}")
        h1(page, words["preferences"])
        check(page, language, "the preferences page", "preferences")
        page.get_by_role("button", name=words["save"]).click()
        expect(page.get_by_role("status")).to_contain_text(words["saved"])
        check(page, language, "the saved preferences page")

        page.goto(f"{base}/unsubscribe/{token}")
        h1(page, words["unsubscribe"])
        check(page, language, "the unsubscribe page")
        page.get_by_role("button", name=words["unsubscribe-button"]).click()
        h1(page, words["unsubscribed"])
        check(page, language, "the unsubscribed page")
        page.get_by_role("button", name=words["resubscribe-button"]).click()
        h1(page, words["resubscribed"])
        check(page, language, "the resubscribed page")

        page.goto(f"{base}/unsubscribe/not-a-token")
        h1(page, words["invalid"])
        check(page, language, "an error page")
        page.goto(f"{base}/")
        expect(page.locator("main")).to_contain_text(words["archive"])
        check(page, language, "the archive")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_email_and_web_version_in_chromium(
    browser: Browser, language: str, editions: Path
) -> None:
    built = build_issue(
        load_project(editions), editions / "issues" / "vol-36.yaml", language=language
    )
    heading = {"sr-Latn": "U ovom broju", "sq": "Në këtë numër"}[language]
    for part, html in (("email.html", built.email_html), ("web.html", built.web_html)):
        with offline_page(browser, PHONE) as page:
            page.set_content(html, wait_until="load")
            expect(page.get_by_role("heading", name=heading)).to_be_visible()
            assert page.get_attribute("html", "lang") == language
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                width = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert width == 0, f"{part} in {language} ({scheme}) scrolls sideways"
                found = serious_violations(page)
                assert not found, f"{part} in {language} ({scheme}):\n{describe(found)}"
