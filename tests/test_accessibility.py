"""Accessibility: axe-core in Chromium on every page readers see, and the static build checks.

axe runs on both seeds' email.html and web.html in light and dark mode, on the preview page and
on the pages of `compose serve`; no serious or critical violation may remain. The build's own
checks (composer/render/a11y.py) are unit-tested below on small pages.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page, expect

from composer.build import BuiltIssue, build_issue, write_build
from composer.project import Project, load_project
from composer.render.a11y import check_accessibility, heading_jumps, is_file_name, scan_page
from composer.web.app import create_app
from composer.web.preview import Preview, open_preview
from tests import axe
from tests.axe import AXE, INSTALL, describe, serious_violations
from tests.browser import offline_page
from tests.conftest import copy_project
from tests.test_serve import FIXTURE as SERVE_FIXTURE
from tests.test_serve import ServerThread, unsubscribe_url

REPO = Path(__file__).resolve().parent.parent
SEEDS = ["vol-36", "2022-05"]
SCHEMES: list[Literal["light", "dark"]] = ["light", "dark"]
WAIT_MS = 10_000


@cache
def built(seed: str) -> BuiltIssue:
    """A seed issue built as `compose build` builds it, once per test process."""
    return build_issue(load_project(REPO), REPO / "issues" / f"{seed}.yaml")


def assert_no_serious_violations(page: Page, what: str) -> None:
    violations = serious_violations(page)
    assert not violations, f"axe finds in {what}:\n{describe(violations)}"


# -- axe in the browser -------------------------------------------------------------------


def test_axe_is_installed_and_finds_what_it_should(browser: Browser) -> None:
    assert AXE.is_file(), f"axe-core is missing: run `{INSTALL}`"
    with offline_page(browser) as page:
        page.set_content('<html lang="en"><title>t</title><img src="data:,"><a href="/x"></a>')
        found = {v["id"]: v["impact"] for v in serious_violations(page)}
    assert found == {"image-alt": "critical", "link-name": "serious"}


def test_a_missing_axe_fails_and_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(axe, "AXE", tmp_path / "axe.min.js")
    axe.axe_source.cache_clear()
    try:
        with pytest.raises(
            pytest.fail.Exception, match=r"npm install --prefix tests/\.npm axe-core@4"
        ):
            axe.axe_source()
    finally:
        axe.axe_source.cache_clear()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("part", ["email.html", "web.html"])
@pytest.mark.parametrize("seed", SEEDS)
def test_seed_pages_have_no_serious_violation(
    browser: Browser, seed: str, part: str, scheme: Literal["light", "dark"]
) -> None:
    issue = built(seed)
    html = issue.email_html if part == "email.html" else issue.web_html
    with offline_page(browser) as page:
        page.emulate_media(color_scheme=scheme)
        page.set_content(html, wait_until="domcontentloaded")
        assert_no_serious_violations(page, f"{seed}/{part} ({scheme})")


@pytest.fixture
def preview(tmp_path: Path) -> Iterator[Preview]:
    """The preview of a copy of the May 2022 issue, served on 127.0.0.1."""
    root = tmp_path / "project"
    (root / "issues").mkdir(parents=True)
    shutil.copy(REPO / "newsletter.yaml", root)
    shutil.copy(REPO / "issues" / "2022-05.yaml", root / "issues")
    with open_preview(root, root / "issues" / "2022-05.yaml") as running:
        yield running.start()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_preview_page_has_no_serious_violation(
    browser: Browser, preview: Preview, scheme: Literal["light", "dark"]
) -> None:
    with offline_page(browser) as page:
        page.emulate_media(color_scheme=scheme)
        page.goto(preview.url)
        version = str(preview.session.current.version)
        expect(page.locator("#email-frame")).to_have_attribute(
            "data-version", version, timeout=WAIT_MS
        )
        expect(page.locator("#checks li").first).to_be_visible(timeout=WAIT_MS)
        assert_no_serious_violations(page, f"the preview page ({scheme})")


@pytest.fixture
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerThread, Project]]:
    """`compose serve` over real HTTP, its archive holding both seeds as really built."""
    monkeypatch.delenv("COMPOSE_SECRET", raising=False)
    project = load_project(copy_project(SERVE_FIXTURE, tmp_path))
    for seed in SEEDS:
        write_build(built(seed), project.root / "build", b"")
    with ServerThread(create_app(project, project.root / "build")) as server:
        yield server, project


@pytest.mark.parametrize("scheme", SCHEMES)
def test_serve_pages_have_no_serious_violation(
    browser: Browser, served: tuple[ServerThread, Project], scheme: Literal["light", "dark"]
) -> None:
    server, project = served
    pages = {
        "archive index": f"{server.base}/",
        "issue page": f"{server.base}/vol-36/",
        "error page": f"{server.base}/vol-99/",
        "unsubscribe confirm page": unsubscribe_url(server, project, f"{scheme}@example.org"),
    }
    with offline_page(browser) as page:
        page.emulate_media(color_scheme=scheme)
        for what, url in pages.items():
            page.goto(url)
            assert_no_serious_violations(page, f"the {what} ({scheme})")
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
        assert_no_serious_violations(page, f"the unsubscribe done page ({scheme})")


# -- the static checks of a build (composer/render/a11y.py) ------------------------------


def levels(html: str) -> dict[str, str]:
    return {code: level for code, level, _ in check_accessibility(html)}


def test_headings_must_not_skip_a_level() -> None:
    page = "<h1>News</h1><h2>Section</h2><h4>Deep</h4><h2>Next</h2><h3>Article</h3>"
    assert heading_jumps(scan_page(page).headings) == ['h2 \u2192 h4 "Deep"']
    (message,) = [m for code, _, m in check_accessibility(page) if code == "heading-order"]
    assert "h2 \u2192 h4" in message
    assert levels("<h1>a</h1><h2>b</h2><h3>c</h3><h2>d</h2>") == {"accessibility": "ok"}


@pytest.mark.parametrize(
    "link",
    [
        '<a href="https://e.org/a">click here</a>',
        '<a href="https://e.org/a">Here</a>',
        '<a href="https://e.org/a">Read more<span aria-hidden="true"> \u2192</span></a>',
        '<a href="https://e.org/a">more...</a>',
        '<a href="https://e.org/a"><img src="x.png" alt=""></a>',
    ],
)
def test_link_text_that_says_nothing_warns(link: str) -> None:
    assert levels(f"<p>See the report: {link}</p>") == {"link-text": "warning"}


@pytest.mark.parametrize(
    "link",
    [
        '<a href="https://e.org/a" aria-label="Read more: Border control training">Read more</a>',
        '<a href="https://e.org/a">Read more<span class="sr-only"> about border control</span></a>',
        '<a href="https://e.org/a">The 2022 trafficking report</a>',
        '<a href="https://e.org/a"><img src="logo.png" alt="UNODC home page"></a>',
    ],
)
def test_link_text_in_context_passes(link: str) -> None:
    assert levels(f"<p>{link}</p>") == {"accessibility": "ok"}


def test_a_read_more_after_its_titled_link_and_a_bare_url_are_notes() -> None:
    teaser = (
        '<h3><a href="https://e.org/a">Border control</a></h3>'
        '<p>Text <a href="https://e.org/a">Read more</a></p>'
    )
    found = check_accessibility(teaser + '<p><a href="https://e.org/">https://e.org/</a></p>')
    assert [(code, level) for code, level, _ in found] == [("link-text", "info")] * 2
    assert '"Read more"' in found[0][2] and "https://e.org/" in found[1][2]


@pytest.mark.parametrize("alt", ["IMG_1234.jpg", "photo.png", "DSC00042", "training-2022"])
def test_alt_text_that_is_a_file_name_warns(alt: str) -> None:
    html = f'<img src="https://e.org/img/training-2022.jpeg" alt="{alt}">'
    assert levels(html) == {"alt-text": "warning"}


def test_alt_text_that_describes_passes() -> None:
    assert not is_file_name("Border police officers at a risk-analysis training")
    assert not is_file_name("")  # decorative: empty alt is right
    html = '<img src="https://e.org/a.jpg" alt="Officers at a training"><img src="b.png" alt="">'
    assert levels(html) == {"accessibility": "ok"}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_seeds_pass_the_static_checks(seed: str) -> None:
    issue = built(seed)
    for part, html in (("email.html", issue.email_html), ("web.html", issue.web_html)):
        warnings = [m for _, level, m in check_accessibility(html, part) if level == "warning"]
        assert warnings == [], part
    codes = {check.code for check in issue.checks}
    assert codes & {"accessibility", "heading-order", "link-text", "alt-text"}, "not in run_checks"
