"""The built email in headless Chromium: no sideways scrolling on phones, hostile text stays inert."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from composer.build import build_issue
from composer.project import load_project
from tests.browser import offline_page
from tests.conftest import REPO

HOSTILE = """\
volume: 1
date: 2024-03-01
subject: "<script>alert('subject')</script>"
preheader: "<img src=x onerror=alert('pre')> a preheader long enough to pass the checks"
intro: "<script>alert('intro')</script> and <img src=x onerror=alert('img')>"
sections:
  - title: "<b onmouseover=alert(1)>Section</b>"
    pillar: I
    articles:
      - title: "Title </h3><script>alert('title')</script>"
        dateline: "\\" onerror=\\"alert('dateline')"
        body: |
          <script>alert('body')</script>

          A very long word: Supercalifragilisticexpialidocious_Supercalifragilisticexpialidocious_Supercalifragilistic
          and a long URL https://example.org/a/very/long/path/that/keeps/going/and/going/without/any/break/at/all/index.html
        image: {src: "https://example.org/x.png", alt: "\\" onerror=\\"alert('alt')"}
        funding: "<svg onload=alert('funding')>"
"""


@contextmanager
def open_email(browser: Browser, html: str, width: int) -> Iterator[tuple[Page, list[str]]]:
    """The email in an offline page `width` px wide, with every alert() it shows recorded."""
    with offline_page(browser, {"width": width, "height": 800}) as page:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.set_content(html, wait_until="load")
        yield page, dialogs


def overflow(page) -> int:
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


@pytest.mark.parametrize("slug", ["vol-36", "2022-05"])
@pytest.mark.parametrize("width", [375, 600])
def test_seed_email_fits_the_screen(browser, slug: str, width: int) -> None:
    built = build_issue(load_project(REPO), REPO / "issues" / f"{slug}.yaml")
    with open_email(browser, built.email_html, width) as (page, _):
        assert overflow(page) == 0
        body_size = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.article p:not(.dateline)')).fontSize)"
        )
        assert body_size >= 16


def test_hostile_yaml_content_stays_inert_text(browser, small_project: Path) -> None:
    issue = small_project / "issues" / "hostile.yaml"
    issue.write_text(HOSTILE, encoding="utf-8")
    built = build_issue(load_project(small_project), issue)
    for html in (built.email_html, built.web_html):
        with open_email(browser, html, 375) as (page, dialogs):
            page.wait_for_timeout(200)  # give any injected handler its chance to fire
            assert dialogs == []
            assert page.locator("script").count() == 0
            assert page.locator("[onerror], [onload], [onmouseover]").count() == 0
            text = page.inner_text("body")
            assert "<script>alert('body')</script>" in text
            assert "Title </h3><script>alert('title')</script>" in text
            assert overflow(page) == 0  # long words and URLs wrap
