"""Each class of mistake in an issue file is reported at its exact FILE:LINE:COL."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.issue.load import issue_problems, load_newsletter
from tests.conftest import run_compose

GOOD_HEAD = """\
volume: 1
date: 2024-03-01
subject: A subject
"""

GOOD_SECTIONS = """\
sections:
  - title: Section
    pillar: I
    articles:
      - title: Title
        dateline: here
        body: Some text.
"""


def problems_of(
    project: Path, text: str, name: str = "x.yaml", raw: bytes | None = None
) -> list[str]:
    path = project / "issues" / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    newsletter = load_newsletter(project / "newsletter.yaml")
    return [str(p).replace(str(path), name) for p in issue_problems(path, newsletter)]


def test_a_valid_file_has_no_problems(small_project: Path) -> None:
    assert problems_of(small_project, GOOD_HEAD + GOOD_SECTIONS) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            GOOD_HEAD + "sections:\n  - title: x\n    articles: [\n",
            "x.yaml:7:1: the file ends inside a [ ] list or { } mapping; add the closing ] or }",
            id="syntax",
        ),
        pytest.param(
            GOOD_HEAD + "sections:\n\t- title: x\n",
            "x.yaml:5:1: tab character in indentation; YAML indents with spaces",
            id="tab",
        ),
        pytest.param(
            GOOD_HEAD.replace("subject", "subjet") + GOOD_SECTIONS,
            "x.yaml:3:1: unknown key 'subjet' (did you mean 'subject'?)",
            id="unknown-key",
        ),
        pytest.param(
            GOOD_HEAD.replace("2024-03-01", "2026-13-45") + GOOD_SECTIONS,
            "x.yaml:2:7: impossible date '2026-13-45'; write a real date as YYYY-MM-DD",
            id="impossible-date",
        ),
        pytest.param(
            GOOD_HEAD.replace("volume: 1", "volume: [1]") + GOOD_SECTIONS,
            "x.yaml:1:9: volume: expected a whole number or text",
            id="wrong-type",
        ),
        pytest.param(
            GOOD_HEAD + GOOD_SECTIONS.replace("        dateline: here\n", ""),
            "x.yaml:8:9: missing required key 'dateline' in sections[0].articles[0]",
            id="missing-field",
        ),
        pytest.param(
            GOOD_HEAD + GOOD_SECTIONS.replace("pillar: I", "pillar: V"),
            "x.yaml:6:13: unknown pillar 'V' (pillars: I, II, III, IV)",
            id="unknown-pillar",
        ),
        pytest.param(
            GOOD_HEAD
            + GOOD_SECTIONS.replace(
                "    pillar: I\n", "    pillar: I\n    contacts: [ana-petrovich]\n"
            ),
            "x.yaml:7:16: unknown contact 'ana-petrovich' (did you mean 'ana-petrovic'?)",
            id="unknown-contact",
        ),
        pytest.param(
            GOOD_HEAD
            + GOOD_SECTIONS.replace("Some text.", "|\n          Read [this](docs/a.html)."),
            "x.yaml:11:23: relative link 'docs/a.html'; use an absolute https:// URL",
            id="relative-link",
        ),
        pytest.param(
            GOOD_HEAD + GOOD_SECTIONS.replace("Some text.", "|\n          Read [this](#)."),
            "x.yaml:11:23: link '#' points inside the page; use an absolute https:// URL",
            id="hash-link",
        ),
        pytest.param(
            GOOD_HEAD + GOOD_SECTIONS.replace("Some text.", "'[x](javascript:alert(1))'"),
            "x.yaml:10:20: link scheme 'javascript:' is not allowed here (use http, https, mailto)",
            id="javascript-link",
        ),
        pytest.param(
            GOOD_HEAD + GOOD_SECTIONS + "        image: {src: 'https://example.org/a.png'}\n",
            "x.yaml:11:16: missing required key 'alt' in sections[0].articles[0].image",
            id="image-without-alt",
        ),
        pytest.param(
            GOOD_HEAD.replace("A subject", '"A subject\\nBcc: everyone@example.org"')
            + GOOD_SECTIONS,
            "x.yaml:3:10: subject: must be one line without control characters",
            id="subject-line-break",
        ),
        pytest.param(
            GOOD_HEAD.replace("A subject", '"A \\x07 bell"') + GOOD_SECTIONS,
            "x.yaml:3:10: subject: must be one line without control characters",
            id="subject-control-char",
        ),
        pytest.param(
            GOOD_HEAD + "sections: []\n",
            "x.yaml:4:11: sections: needs at least one item",
            id="empty-sections",
        ),
        pytest.param(
            GOOD_HEAD
            + GOOD_SECTIONS
            + "        links: [{text: Old, url: 'ftp://example.org/x'}]\n",
            "x.yaml:11:34: link scheme 'ftp:' is not allowed here (use http, https, mailto)",
            id="link-scheme",
        ),
    ],
)
def test_each_problem_points_at_its_place(small_project: Path, text: str, expected: str) -> None:
    assert expected in problems_of(small_project, text)


def test_all_problems_of_a_file_come_together(small_project: Path) -> None:
    text = GOOD_HEAD.replace("subject", "subjet") + GOOD_SECTIONS.replace(
        "pillar: I", "pillar: IX"
    ).replace("Some text.", "'[a](#)'")
    found = problems_of(small_project, text)
    assert found == [
        "x.yaml:1:1: missing required key 'subject'",
        "x.yaml:3:1: unknown key 'subjet' (did you mean 'subject'?)",
        "x.yaml:6:13: unknown pillar 'IX' (pillars: I, II, III, IV)",
        "x.yaml:10:20: link '#' points inside the page; use an absolute https:// URL",
    ]


def test_empty_and_non_utf8_files(small_project: Path) -> None:
    assert problems_of(small_project, "# only a comment\n") == ["x.yaml:1:1: file is empty"]
    latin1 = (GOOD_HEAD.replace("A subject", "Caf\xe9") + GOOD_SECTIONS).encode("latin-1")
    assert problems_of(small_project, "", raw=latin1) == [
        "x.yaml:3:13: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    ]


def test_duplicate_keys_are_reported(small_project: Path) -> None:
    found = problems_of(small_project, GOOD_HEAD + "subject: again\n" + GOOD_SECTIONS)
    assert "x.yaml:4:1: duplicate key 'subject' (first at line 3)" in found


def test_cli_validate_prints_every_problem_and_exits_1_without_traceback(
    small_project: Path,
) -> None:
    bad = small_project / "issues" / "bad.yaml"
    bad.write_text(
        GOOD_HEAD.replace("2024-03-01", "2024-02-30") + "sections: []\n", encoding="utf-8"
    )
    result = run_compose("validate", "issues/bad.yaml", cwd=small_project)
    assert result.code == 1
    assert result.stderr.splitlines() == [
        "issues/bad.yaml:2:7: impossible date '2024-02-30'; write a real date as YYYY-MM-DD",
        "issues/bad.yaml:4:11: sections: needs at least one item",
    ]
    assert "Traceback" not in result.stderr


def test_cli_validate_reports_newsletter_yaml_problems(small_project: Path) -> None:
    config = small_project / "newsletter.yaml"
    config.write_text(
        config.read_text().replace("max_email_kb: 90", "max_email_kb: 90\nmax_emial_kb: 1")
    )
    result = run_compose("validate", "issues/small.yaml", cwd=small_project)
    assert result.code == 1
    assert (
        result.stderr.strip()
        == "newsletter.yaml:10:1: unknown key 'max_emial_kb' (did you mean 'max_email_kb'?)"
    )


def test_cli_finds_the_project_upward_or_by_option(small_project: Path, tmp_path: Path) -> None:
    assert run_compose("validate", "small.yaml", cwd=small_project / "issues").code == 0
    elsewhere = run_compose(
        "--project",
        small_project,
        "validate",
        small_project / "issues" / "small.yaml",
        cwd=tmp_path,
    )
    assert elsewhere.code == 0, elsewhere.stderr
    lost = run_compose("validate", "x.yaml", cwd=tmp_path)
    assert lost.code == 2 and "no newsletter.yaml" in lost.stderr


def test_schema_describes_issue_files(small_project: Path) -> None:
    import json

    result = run_compose("schema", cwd=small_project)
    schema = json.loads(result.stdout)
    assert result.code == 0
    assert set(schema["required"]) == {"volume", "date", "subject", "sections"}
    assert schema["additionalProperties"] is False
    article = schema["$defs"]["Article"]
    assert {"title", "dateline", "body"} <= set(article["required"])


def test_the_project_is_found_upward_from_the_issue_file(
    small_project: Path, tmp_path: Path
) -> None:
    """`cd /tmp && compose build ~/news/issues/vol-37.yaml` works: no newsletter.yaml in /tmp."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    issue = small_project / "issues" / "small.yaml"
    for args in (
        ("validate", issue),
        ("build", issue, "--out", elsewhere / "out"),
        ("check", issue),
    ):
        result = run_compose(*args, cwd=elsewhere)
        assert result.code == 0, (args, result.stderr)
    assert (elsewhere / "out" / "small" / "email.html").is_file()
    stray = elsewhere / "stray.yaml"
    stray.write_text("volume: 1\n", encoding="utf-8")
    lost = run_compose("build", stray, cwd=elsewhere)
    assert lost.code == 2 and "no newsletter.yaml" in lost.stderr and "nor above" in lost.stderr
