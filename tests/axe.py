"""axe-core in a Playwright page: the serious and critical accessibility violations it finds.

axe-core is an npm package, installed beside the tests (the folder is git-ignored):

    npm install --prefix tests/.npm axe-core@4

.ci/run does this before the tests. A missing axe.min.js fails the test that needs it, with that
command in the message: a skip would hide that accessibility went untested.

    with offline_page(browser) as page:
        page.set_content(html)
        assert not serious_violations(page), describe(serious_violations(page))
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE = Path(__file__).resolve().parent / ".npm" / "node_modules" / "axe-core" / "axe.min.js"
INSTALL = "npm install --prefix tests/.npm axe-core@4"
SERIOUS = ("serious", "critical")


@cache
def axe_source() -> str:
    """axe.min.js, or a failed test that says how to install it."""
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is not installed ({AXE} is missing): run `{INSTALL}` "
            "in the repository's root folder"
        )
    # Evaluated as a script, whatever the page's Content-Security-Policy (the serve pages
    # allow no script at all); `undefined` keeps Playwright from calling the result.
    return AXE.read_text(encoding="utf-8") + "\n;undefined"


def inject_axe(page: Page) -> None:
    """Load axe into the page and each of its frames, so what the frames show is checked too."""
    source = axe_source()
    for frame in page.frames:
        frame.evaluate(source)


def run_axe(page: Page, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every violation axe finds in the page as it stands, with its impact and nodes."""
    inject_axe(page)
    result = page.evaluate(
        "async (options) => (await axe.run(document, options)).violations",
        {"resultTypes": ["violations"], **(options or {})},
    )
    return list(result)


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """The violations with impact serious or critical."""
    return [v for v in run_axe(page) if v.get("impact") in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and node, for an assertion message."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {node['target']}: {node['html'][:160]} -- {summary[:200]}")
    return "\n".join(lines)
