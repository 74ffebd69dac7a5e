"""The preview page in real headless Chromium, served by the real preview server, edited live."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FrameLocator, Page, expect

from composer.web.preview import Preview, open_preview
from tests.browser import offline_page
from tests.conftest import override_theme_file

REPO = Path(__file__).resolve().parent.parent
ISSUE = "2022-05.yaml"
FIRST_TITLE = "Exploitation and Abuse: The Scale and Scope of Human Trafficking"
WAIT_MS = 5000  # the contract is "within a second or two"; fail loudly well after that
# How fast an edit shows is measured by benchmarks/preview.py, not asserted here.


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with offline_page(browser) as opened:
        yield opened


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's project (masthead, theme, one real issue), safe to edit."""
    root = tmp_path / "project"
    (root / "issues").mkdir(parents=True)
    shutil.copy(REPO / "newsletter.yaml", root)
    override_theme_file(root, "issue.mjml.j2")
    shutil.copy(REPO / "issues" / ISSUE, root / "issues")
    return root


@pytest.fixture
def preview(project: Path) -> Iterator[Preview]:
    with open_preview(project, project / "issues" / ISSUE) as running:
        yield running.start()


def open_page(page: Page, preview: Preview) -> None:
    """Open the preview and wait until the email frame shows the current build."""
    page.goto(preview.url)
    version = str(preview.session.current.version)
    expect(page.locator("#email-frame")).to_have_attribute("data-version", version, timeout=WAIT_MS)
    page.evaluate("window.__sameDocument = true")  # gone if the page were reloaded


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old` (which must be there) by `new`."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def email_frame(page: Page) -> FrameLocator:
    return page.frame_locator("#email-frame")


def test_page_shows_the_issue_as_the_inbox_would(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    expect(page.locator("#subject")).to_have_text("UNODC in South Eastern Europe — News, May 2022")
    expect(page.locator("#from-name")).to_have_text("UNODC South Eastern Europe")
    expect(page.locator("#preheader")).to_contain_text("Human trafficking report")
    expect(email_frame(page).locator("h3").first).to_contain_text(FIRST_TITLE)
    checks = page.locator("#checks li")
    expect(checks.first).to_be_visible()
    assert {"size", "subject", "preheader", "links", "footer"} <= set(
        checks.evaluate_all("items => items.map(i => i.dataset.code)")
    )
    expect(page.locator("#problems")).to_be_hidden()


def test_an_edit_appears_without_reloading(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    issue = preview.session.issue_path
    edit(issue, FIRST_TITLE, "Edited live: the trafficking report")
    expect(email_frame(page).locator("h3").first).to_contain_text(
        "Edited live: the trafficking report", timeout=WAIT_MS
    )
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"

    # A rebuild keeps the reader where they were in the email.
    frame = page.frame(url=lambda url: "/email.html" in url)
    assert frame is not None
    frame.evaluate("window.scrollTo(0, 1500)")
    edit(issue, 'subject: "UNODC', 'subject: "Edited: UNODC')
    expect(page.locator("#subject")).to_contain_text("Edited: UNODC", timeout=WAIT_MS)
    version = str(preview.session.current.version)
    expect(page.locator("#email-frame")).to_have_attribute("data-version", version, timeout=WAIT_MS)
    frame = page.frame(url=lambda url: "/email.html" in url)
    assert frame is not None and frame.evaluate("window.scrollY") == 1500


def test_newsletter_and_theme_edits_rebuild(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    root = preview.session.root
    edit(root / "newsletter.yaml", "{name: UNODC South Eastern Europe,", "{name: The Desk,")
    expect(page.locator("#from-name")).to_have_text("The Desk", timeout=WAIT_MS)
    edit(root / "templates" / "issue.mjml.j2", "View this issue in your browser", "Open on the web")
    expect(email_frame(page).get_by_text("Open on the web")).to_be_visible(timeout=WAIT_MS)


def test_a_broken_file_shows_its_error_then_recovers(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    issue = preview.session.issue_path
    text = issue.read_text(encoding="utf-8")
    line = text[: text.index("pillar: II")].count("\n") + 1
    edit(issue, "pillar: II", "pillar: IX")
    problems = page.locator("#problems")
    expect(problems).to_be_visible(timeout=WAIT_MS)
    expect(problems).to_contain_text(f"2022-05.yaml:{line}:")
    expect(problems).to_contain_text("unknown pillar 'IX'")
    expect(page.locator("#panel-email")).to_be_hidden()

    edit(issue, "pillar: IX", "pillar: II")
    expect(problems).to_be_hidden(timeout=WAIT_MS)
    expect(email_frame(page).locator("h3").first).to_contain_text(FIRST_TITLE)
    assert page.evaluate("window.__sameDocument") is True


def test_phone_view_has_no_horizontal_overflow(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    page.click("[data-device=phone]")
    frame = page.frame(url=lambda url: "/email.html" in url)
    assert frame is not None
    page.wait_for_function(
        "document.querySelector('#email-frame').contentWindow.innerWidth === 375"
    )
    overflow = frame.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0, f"the email scrolls sideways by {overflow}px on a 375px phone"
    sticking_out = frame.evaluate(
        """[...document.body.querySelectorAll('*')]
             .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > innerWidth + 1)
             .map(e => e.tagName + '.' + e.className).slice(0, 5)"""
    )
    assert sticking_out == []


def test_dark_mode_applies_the_emails_dark_rules(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    page_background = "getComputedStyle(document.querySelector('.bg-page')).backgroundColor"
    frame = page.frame(url=lambda url: "/email.html" in url)
    assert frame is not None
    light = frame.evaluate(page_background)
    page.click("#dark")
    page.wait_for_function(
        "(light) => {"
        " const d = document.querySelector('#email-frame').contentDocument;"
        " const e = d && d.querySelector('.bg-page');"
        " return e && getComputedStyle(e).backgroundColor !== light; }",
        arg=light,
        timeout=WAIT_MS,
    )
    page.click("#dark")  # and back
    page.wait_for_function(
        "(light) => {"
        " const d = document.querySelector('#email-frame').contentDocument;"
        " const e = d && d.querySelector('.bg-page');"
        " return e && getComputedStyle(e).backgroundColor === light; }",
        arg=light,
        timeout=WAIT_MS,
    )


def test_plain_text_and_web_tabs(page: Page, preview: Preview) -> None:
    open_page(page, preview)
    page.click("[data-tab=text]")
    text = page.locator("#text")
    expect(text).to_contain_text(FIRST_TITLE, timeout=WAIT_MS)
    expect(text).to_contain_text("Unsubscribe:")
    page.click("[data-tab=web]")
    web = page.frame_locator("#web-frame")
    expect(web.locator("h3").first).to_contain_text(FIRST_TITLE, timeout=WAIT_MS)
    expect(web.get_by_text("Unsubscribe")).to_have_count(0)  # the web version has no personal link


@pytest.mark.skipif(
    not os.environ.get("COMPOSE_UPDATE_SCREENSHOT"),
    reason="regenerates docs/preview.png: COMPOSE_UPDATE_SCREENSHOT=1 pytest tests/test_preview_page.py",
)
def test_update_docs_screenshot(page: Page, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)  # the page names the issue as the user typed it
    with open_preview(project, Path("issues") / ISSUE) as preview:
        open_page(page, preview.start())
        page.screenshot(path=str(REPO / "docs" / "preview.png"))
    assert (REPO / "docs" / "preview.png").stat().st_size < 200_000
