"""Variants in Chromium: every variant of the seeds fits a phone; the preview's "view as" works.

docs/preview-view-as.png is regenerated with:
    COMPOSE_UPDATE_SCREENSHOT=1 python -m pytest tests/test_variants_browser.py
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from composer.build import build_issue
from composer.project import load_project
from composer.web.preview import Preview, open_preview
from composer.web.preview.viewas import build_variants
from tests.axe import describe, serious_violations
from tests.browser import offline_page
from tests.conftest import REPO
from tests.test_email_browser import open_email, overflow

WAIT_MS = 30_000
READER = "ana.petrovic@interior.example.org"  # sr, pillars I and II in subscribers/partners.csv


@pytest.mark.parametrize("slug", ["vol-36", "2022-05"])
def test_every_variant_of_the_seeds_fits_a_phone(browser: Browser, slug: str) -> None:
    project = load_project(REPO)
    path = REPO / "issues" / f"{slug}.yaml"
    found = build_variants(project, path, build_issue(project, path), "auto")
    if slug == "vol-36":
        assert len(found.builds) == 16  # en and sr-Latn x the subsets of pillars I, II, III
    for key, built in found.builds.items():
        for html in (built.filled()[1], built.web_html):
            for dark in (False, True):
                with open_email(browser, html, 375) as (page, _):
                    page.emulate_media(color_scheme="dark" if dark else "light")
                    assert overflow(page) == 0, (key.label, dark)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("newsletter.yaml", "issues", "subscribers"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    return root


@pytest.fixture
def preview(project: Path) -> Iterator[Preview]:
    with open_preview(project, project / "issues" / "vol-36.yaml") as running:
        yield running.start()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with offline_page(browser, {"width": 1280, "height": 900}) as opened:
        yield opened


def test_view_as_a_variant_and_as_a_reader(page: Page, preview: Preview) -> None:
    page.goto(preview.url)
    expect(page.locator("#view-as option")).to_have_count(16, timeout=WAIT_MS)
    page.select_option("#view-as", label="sr-Latn, II")
    expect(page.locator("#subject")).to_have_text(
        "UNODC u Jugoistočnoj Evropi — Bilten br. 36", timeout=WAIT_MS
    )
    email = page.frame_locator("#email-frame")
    expect(email.locator("h2").first).to_have_text("U ovom broju", timeout=WAIT_MS)  # the edition's
    expect(email.locator(".toc li").first).to_contain_text("Anti-Corruption")
    expect(email.get_by_text("Dobar dan, koleginice i kolege,")).to_have_count(1)
    page.fill("#as-reader", READER)
    page.click("#as-show")
    expect(page.locator("#view-status")).to_have_text(
        f"showing {READER} (sr-Latn, I+II)", timeout=WAIT_MS
    )
    expect(email.get_by_text("Dobar dan, Ana Petrović,")).to_have_count(1, timeout=WAIT_MS)
    violations = serious_violations(page)  # with the "view as" row showing
    assert not violations, describe(violations)
    page.fill("#as-reader", "nobody@example.org")
    page.click("#as-show")
    expect(page.locator("#view-status")).to_contain_text(
        "nobody@example.org is not a reader of 'partners'", timeout=WAIT_MS
    )


def test_the_checks_run_on_every_variant(page: Page, preview: Preview) -> None:
    state = preview.session.current.state()
    assert len(state["variants"]) == 16  # type: ignore[arg-type]
    page.goto(preview.url)
    expect(page.locator("#checks li").first).to_be_attached(timeout=WAIT_MS)
    # The seeds have no variant-only warning; an over-long Serbian preheader would be named.
    issue = preview.session.issue_path
    text = issue.read_text(encoding="utf-8").replace(
        "i prevencija narkomanije, okt–dec 2020.",
        "i prevencija narkomanije, oktobar–decembar 2020, sa svim novostima iz regiona.",
    )
    issue.write_text(text, encoding="utf-8")
    expect(page.locator("#checks li[data-code=preheader-long]")).to_contain_text(
        "[sr-Latn, as written] preheader is", timeout=WAIT_MS
    )


@pytest.mark.skipif(
    not os.environ.get("COMPOSE_UPDATE_SCREENSHOT"),
    reason="regenerates docs/preview-view-as.png: COMPOSE_UPDATE_SCREENSHOT=1 pytest "
    "tests/test_variants_browser.py",
)
def test_update_docs_screenshot(page: Page, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)  # the page names the issue as the user typed it
    with open_preview(project, Path("issues") / "vol-36.yaml") as running:
        page.goto(running.start().url)
        expect(page.locator("#view-as option")).to_have_count(16, timeout=WAIT_MS)
        page.fill("#as-reader", READER)
        page.click("#as-show")
        expect(page.locator("#view-status")).to_contain_text("showing", timeout=WAIT_MS)
        page.frame_locator("#email-frame").get_by_text("Dobar dan, Ana Petrović,").wait_for()
        page.screenshot(path=str(REPO / "docs" / "preview-view-as.png"))
    assert (REPO / "docs" / "preview-view-as.png").stat().st_size < 250_000
