"""YAML mistakes are said as what to change, one line per mistake, at the place to change it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_compose

HEAD = 'volume: 1\ndate: 2024-03-01\nsubject: "News"\n'
SECTION = (
    "sections:\n"
    "  - title: Firearms\n"
    "    articles:\n"
    "      - title: A training\n"
    '        dateline: "1 March 2024"\n'
    "        body: Text.\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEAD + SECTION.replace("title: A training", "title: Firearms: investigators meet"),
            "7:16: the value of 'title' contains ': ', which YAML reads as a new key; put the "
            'value in quotes: title: "Firearms: investigators meet"',
            id="colon-in-a-title",
        ),
        pytest.param(
            HEAD + SECTION.replace('        dateline: "1', '       dateline: "1'),
            "8:8: this line is not lined up with the lines around it; indent it exactly as far "
            "as the key it belongs beside (YAML indents with spaces)",
            id="misplaced-line",
        ),
        pytest.param(
            HEAD + SECTION.replace("        body: Text.", "          body: Text."),
            "9:11: this line is not lined up with the lines around it; indent it exactly as far "
            "as the key it belongs beside (YAML indents with spaces)",
            id="indented-too-far",
        ),
        pytest.param(
            HEAD
            + SECTION.replace("        body: Text.", "        body: Text.\n          links: x"),
            "10:16: this line is indented further than the key above it, so it cannot start a "
            "key there; line it up with the key it belongs beside",
            id="key-indented-too-far",
        ),
        pytest.param(
            HEAD.replace('"News"', '"News'),
            "3:10: the quote opened at line 3, column 10 is never closed; add the closing quote",
            id="unclosed-quote",
        ),
        pytest.param(
            HEAD.replace('"News"', "@UNODC news") + SECTION,
            "3:10: a value cannot start with @; put it in quotes",
            id="at-sign",
        ),
        pytest.param(
            HEAD.replace('"News"', '"He said "hi" there"') + SECTION,
            '3:20: text continues after the closing quote; to put a " inside a quoted value '
            'write \\" or put the value in single quotes',
            id="quotes-in-quotes",
        ),
        pytest.param(
            HEAD + SECTION.replace("    articles:", "    pillar: 3\n    articles:"),
            "6:13: unknown pillar '3' (pillars: I, II, III, IV)",
            id="pillar-number",
        ),
    ],
)
def test_each_mistake_is_one_line_that_says_what_to_do(
    small_project: Path, text: str, expected: str
) -> None:
    (small_project / "issues" / "x.yaml").write_text(text, encoding="utf-8")
    result = run_compose("validate", "issues/x.yaml", cwd=small_project)
    assert result.code == 1
    assert result.stderr.splitlines() == [f"issues/x.yaml:{expected}"]
