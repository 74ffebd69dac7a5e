"""The render cache: a build after a build reads MJML and inlined HTML back; any change misses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from composer.build import RENDER_CACHE, build_issue
from composer.project import STATE_DIR, load_project
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
