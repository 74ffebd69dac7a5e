"""Headless Debian Chromium through Playwright, offline: shared helpers for browser tests.

Never `playwright install`: the system's /usr/bin/chromium (or $CHROMIUM) is driven as is.
tests/conftest.py starts one browser per test process (the `browser` fixture); a test opens a
fresh offline page in it:

    def test_something(browser: Browser) -> None:
        with offline_page(browser, {"width": 375, "height": 800}) as page:
            ...
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


# Every element with text of its own, its colour against the first opaque background behind it
# (walking up the tree), and the WCAG 2 ratio it needs: 3 for large text, else 4.5.
CONTRAST_SCRIPT = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r, g, b, a: a === undefined ? 1 : a};
  };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg && bg.a > 0.5) return bg;
    }
    return parse(getComputedStyle(document.body).backgroundColor) || {r: 255, g: 255, b: 255, a: 1};
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own.length) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.display === 'none' || style.visibility === 'hidden' || box.width === 0
        || box.height === 0 || parseFloat(style.fontSize) <= 1 || el.closest('[aria-hidden="true"]')) continue;
    const fg = parse(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    found.push({text: own.map((n) => n.textContent.trim()).join(' ').slice(0, 60),
                tag: el.tagName.toLowerCase(), color: style.color,
                background: `rgb(${bg.r}, ${bg.g}, ${bg.b})`, ratio: Math.round(ratio * 100) / 100,
                needed});
  }
  return found;
}
"""


def text_contrasts(page: Page) -> list[dict[str, object]]:
    """The WCAG contrast of every visible text element of the page, as a reader sees it."""
    return list(page.evaluate(CONTRAST_SCRIPT))
