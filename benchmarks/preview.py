"""Time how long `compose preview` takes from saving the issue file to the open page showing it.

    python benchmarks/preview.py [--runs 9]

Serves a copy of issues/2022-05.yaml with the real preview server on 127.0.0.1, opens the page
in headless Chromium (the system's /usr/bin/chromium, or $CHROMIUM, driven by Playwright, offline)
and edits the first article's title once per run; prints each time and the median. The time
covers the watcher noticing the save, the rebuild, the event to the page and the email frame
reloading.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from composer.web.preview import Preview, open_preview

REPO = Path(__file__).resolve().parent.parent
ISSUE = "2022-05.yaml"
FIRST_TITLE = "Exploitation and Abuse: The Scale and Scope of Human Trafficking"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [  # as tests/browser.py launches it
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Everything but the local preview (and inline data) is refused: nothing leaves the machine.
REMOTE = re.compile(r"^(?!(http://127\.0\.0\.1[:/]|data:|about:|blob:)).*")
TIMEOUT_MS = 10_000
# The first h3 of the email frame, once the frame shows the text we wait for.
SHOWS = """(text) => {
  const frame = document.querySelector('#email-frame');
  const doc = frame && frame.contentDocument;
  const h3 = doc && doc.querySelector('h3');
  return !!h3 && h3.textContent.includes(text);
}"""


def copy_project(target: Path) -> Path:
    """The repository's masthead and one real issue, in a folder safe to edit."""
    (target / "issues").mkdir(parents=True)
    shutil.copy(REPO / "newsletter.yaml", target)
    shutil.copy(REPO / "issues" / ISSUE, target / "issues")
    return target / "issues" / ISSUE


def save_to_shown(page: Page, issue: Path, old: str, new: str) -> float:
    """Seconds from writing `new` in place of `old` to the email frame showing it."""
    text = issue.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {issue}"
    start = time.perf_counter()
    issue.write_text(text.replace(old, new, 1), encoding="utf-8")
    page.wait_for_function(SHOWS, arg=new, polling="raf", timeout=TIMEOUT_MS)
    return time.perf_counter() - start


def measure(preview: Preview, issue: Path, runs: int) -> list[float]:
    """One warm-up edit, then `runs` timed ones, each title different from the one before."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 700})
            context.route(REMOTE, lambda route: route.abort())
            page = context.new_page()
            page.goto(preview.url)
            page.wait_for_function(SHOWS, arg=FIRST_TITLE, timeout=TIMEOUT_MS)
            title = FIRST_TITLE
            times = []
            for run in range(runs + 1):
                new = f"Edited title number {run}"
                seconds = save_to_shown(page, issue, title, new)
                title = new
                if run:  # the first one warms up the browser and the templates
                    times.append(seconds)
                    print(f"run {run}: {seconds:.3f} s", flush=True)
            return times
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set $CHROMIUM")
    with tempfile.TemporaryDirectory() as tmp:
        issue = copy_project(Path(tmp) / "project")
        with open_preview(issue.parent.parent, issue) as preview:
            times = measure(preview.start(), issue, args.runs)
    print(f"save -> page updated: median {statistics.median(times):.3f} s over {len(times)} runs")


if __name__ == "__main__":
    main()
