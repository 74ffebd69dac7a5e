"""What a reader sees: every visible text of both seeds' email and web version reaches WCAG AA
against its effective background, in light and in dark mode, at phone and desktop widths.

Before, dark mode turned the masthead and every pillar band the page colour and left "View in
browser" and "Unsubscribe" at about 2.8:1, while the static check said "ok".
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from composer.build import build_issue
from composer.project import load_project
from tests.browser import offline_page, text_contrasts
from tests.conftest import REPO

SEEDS = ["vol-36", "2022-05"]


@pytest.fixture(scope="module")
def built() -> dict[str, object]:
    project = load_project(REPO)
    return {s: build_issue(project, REPO / "issues" / f"{s}.yaml") for s in SEEDS}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("part", ["email_html", "web_html"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("width", [375, 1000])
def test_every_visible_text_reaches_wcag_aa(
    browser: Browser, built: dict, seed: str, part: str, scheme: str, width: int
) -> None:
    with offline_page(browser, {"width": width, "height": 800}) as page:
        page.emulate_media(color_scheme=scheme)
        page.set_content(getattr(built[seed], part), wait_until="load")
        measured = text_contrasts(page)
    assert len(measured) > 50  # the whole issue was measured, not an empty page
    failing = [m for m in measured if m["ratio"] < m["needed"]]
    assert failing == [], failing[:5]


@pytest.mark.parametrize("seed", SEEDS)
def test_dark_mode_keeps_the_masthead_and_pillar_colours(
    browser: Browser, built: dict, seed: str
) -> None:
    colours = {}
    for scheme in ("light", "dark"):
        with offline_page(browser) as page:
            page.emulate_media(color_scheme=scheme)
            page.set_content(built[seed].email_html, wait_until="load")
            colours[scheme] = [
                m["background"]
                for m in text_contrasts(page)
                if m["tag"] == "h1" or "Pillar" in m["text"]
            ]
    assert colours["light"] and colours["dark"] == colours["light"]
