"""Contacts show their role and, without an address, how to reach them; `{{` never reaches readers."""

from __future__ import annotations

from pathlib import Path

from composer.build import build_issue
from composer.project import load_project
from tests.conftest import run_compose


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_roles_are_shown_and_a_contact_without_address_is_reached_through_reply_to(
    small_project: Path,
) -> None:
    config = small_project / "newsletter.yaml"
    edit(
        config,
        "marko-horvat: {name: Marko Horvat}",
        "marko-horvat: {name: Marko Horvat, role: Programme Officer}",
    )
    edit(
        config,
        "max_email_kb: 90",
        "max_email_kb: 90\nreply_to: {name: Team, email: team@example.org}",
    )
    built = build_issue(load_project(small_project), small_project / "issues" / "small.yaml")
    for html in (built.email_html, built.web_html):
        assert 'Marko Horvat, Programme Officer (via <a href="mailto:team@example.org"' in html
    assert "Marko Horvat, Programme Officer (via\nteam@example.org)" in built.email_txt


def test_merge_fields_other_than_the_two_forms_are_refused_where_they_stand(
    small_project: Path,
) -> None:
    issue = small_project / "issues" / "small.yaml"
    edit(
        issue,
        "          A new port control unit",
        "          Dear {{ name }}, a new port control unit",
    )
    edit(issue, 'subject: "UNODC', 'subject: "{% if x %}UNODC')
    edit(issue, "  - title: Container control", "  - title: Container {{ name }}")
    result = run_compose("validate", "issues/small.yaml", cwd=small_project)
    assert result.code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2  # the body's {{ name }} is a merge field: allowed
    assert lines[0].startswith("issues/small.yaml:3:11: '{% if x %}' is not a merge field")
    assert lines[1].startswith("issues/small.yaml:9:22: 'title' cannot hold merge fields")
