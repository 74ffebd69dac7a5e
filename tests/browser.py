"""Headless Debian Chromium through Playwright, offline: shared helpers for browser tests.

Never `playwright install`: the system's /usr/bin/chromium (or $CHROMIUM) is driven as is.
A test module makes its fixtures from these two context managers:

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Browser]:
        with chromium_browser() as launched:
            yield launched

    @pytest.fixture
    def page(browser: Browser) -> Iterator[Page]:
        with offline_page(browser) as opened:
            yield opened
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT: ViewportSize = {"width": 1000, "height": 700}
# Everything but a local server (and inline data) is refused: tests never touch the network.
_REMOTE = re.compile(r"^(?!(https?://(127\.0\.0\.1|localhost)[:/]|data:|about:|blob:)).*")


def launch(playwright: Playwright) -> Browser:
    """The system Chromium, headless, with the flags a container needs."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """A running headless Chromium; its absence fails the test (a skip would hide a missing install)."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set $CHROMIUM")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def offline_page(browser: Browser, viewport: ViewportSize = VIEWPORT) -> Iterator[Page]:
    """A page in a fresh context, with remote requests refused, that fails on script errors."""
    context = browser.new_context(viewport=viewport)
    context.route(_REMOTE, lambda route: route.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"script errors in the page: {errors}"
