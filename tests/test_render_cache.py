"""The render cache: a build after a build reads MJML and inlined HTML back; any change misses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from composer.build import RENDER_CACHE, build_issue
from composer.project import STATE_DIR, load_project
from composer.render import cache as cache_module
from composer.render.cache import RenderCache
from tests.conftest import run_compose


def entries(root: Path) -> dict[str, float]:
    folder = root / STATE_DIR / RENDER_CACHE
    return {p.name: p.stat().st_mtime for p in folder.glob("*.html")}


def test_a_second_build_reads_back_what_the_first_rendered(small_project: Path) -> None:
    project = load_project(small_project)
    issue = small_project / "issues" / "small.yaml"
    first = build_issue(project, issue)
    made = entries(small_project)
    assert {name.split("-")[0] for name in made} == {"mjml", "inlined"}
    again = build_issue(project, issue)
    assert entries(small_project).keys() == made.keys()  # nothing new was rendered
    assert (again.email_html, again.web_html, again.email_txt) == (
        first.email_html,
        first.web_html,
        first.email_txt,
    )
    issue.write_text(issue.read_text().replace("Šibenik", "Split"))
    edited = build_issue(project, issue)
    assert "Split" in edited.email_html and "Šibenik" not in edited.email_html
    assert len(entries(small_project)) > len(made)  # an edit is a miss, never a stale page


def test_a_send_after_a_build_does_not_import_the_css_inliner(small_project: Path) -> None:
    issue = small_project / "issues" / "small.yaml"
    assert run_compose("build", issue, cwd=small_project).code == 0
    code = (
        "import sys; from pathlib import Path; from composer.build import build_issue; "
        "from composer.project import load_project; "
        f"build_issue(load_project(Path({str(small_project)!r})), Path({str(issue)!r})); "
        "print('premailer' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_an_unwritable_cache_is_no_cache(small_project: Path) -> None:
    (small_project / STATE_DIR).mkdir(exist_ok=True)
    (small_project / STATE_DIR / RENDER_CACHE).write_text("a file, not a folder")
    built = build_issue(load_project(small_project), small_project / "issues" / "small.yaml")
    assert "<html" in built.email_html


def test_the_oldest_entries_go_past_the_byte_budget_and_a_hundred_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A send with 48 variants writes two entries a variant: a count of 64 made it miss them all.
    cache = RenderCache(tmp_path)
    page = "x" * 1000
    for n in range(100):
        cache.get_or_make("inlined", (str(n),), lambda: page)
    assert len(list(tmp_path.glob("*.html"))) == 100
    made = {cache.get_or_make("inlined", (str(n),), lambda: "again") for n in range(100)}
    assert made == {page}  # every one read back
    monkeypatch.setattr(cache_module, "KEEP_BYTES", 10_500)
    for n in range(100, 103):
        cache.get_or_make("inlined", (str(n),), lambda: page)
    assert len(list(tmp_path.glob("*.html"))) == 10
    newest = cache.get_or_make("inlined", ("102",), lambda: "made again")
    assert newest == page  # the newest stayed
    assert cache.get_or_make("inlined", ("0",), lambda: "made again") == "made again"
