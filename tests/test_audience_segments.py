"""Segments: all conditions hold, a list means any, interests contains; mistakes point at lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.audience import check_lists, select
from composer.errors import ComposeError, InvalidInput
from composer.project import Project, load_project
from tests.conftest import copy_project

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"

READERS = """\
email,name,country,organization,interests,sector
a@example.org,A,Serbia,Ministry of Interior,I;III,government
b@example.org,B,Serbia,Ministry of Justice,II,government
c@example.org,C,serbia ,Youth Network,III,civil-society
d@example.org,D,Albania,Ministry of Interior,IV,government
e@example.org,E,Croatia,Police,I,police
f@example.org,F,Albania,Harm Reduction Forum,III;IV,civil-society
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = copy_project(FIXTURE, tmp_path)
    monkeypatch.chdir(root)
    (root / "subscribers" / "messy.csv").unlink()
    (root / "subscribers" / "readers.csv").write_text(READERS, encoding="utf-8")
    return load_project(root)


def segments(project: Project, text: str) -> None:
    (project.subscribers_dir / "segments.yaml").write_text(textwrap.dedent(text), encoding="utf-8")


def chosen(project: Project, segment: str) -> list[str]:
    selection = select(project, "readers", segment)
    return [r.email[0] for r in selection.recipients or []]


def test_every_condition_must_hold(project: Project) -> None:
    segments(
        project,
        "serbia-ministries:\n  country: Serbia\n"
        "  organization: [Ministry of Interior, Ministry of Justice]\n",
    )
    assert chosen(project, "serbia-ministries") == ["a", "b"]


def test_a_list_of_values_means_any_of_them(project: Project) -> None:
    segments(project, "two:\n  country: [Albania, Croatia]\n")
    assert chosen(project, "two") == ["d", "e", "f"]


def test_values_match_ignoring_case_and_surrounding_spaces(project: Project) -> None:
    segments(project, "serbia:\n  Country: SERBIA\n")
    assert chosen(project, "serbia") == ["a", "b", "c"]


def test_interests_match_when_they_contain_the_value(project: Project) -> None:
    segments(project, "drugs:\n  interests: III\nresearch-or-crime:\n  interests: [II, IV]\n")
    assert chosen(project, "drugs") == ["a", "c", "f"]
    assert chosen(project, "research-or-crime") == ["b", "d", "f"]


def test_an_extra_column_can_be_filtered_on(project: Project) -> None:
    segments(project, "civil:\n  sector: civil-society\n  interests: III\n")
    assert chosen(project, "civil") == ["c", "f"]


def test_the_count_of_a_segment_adds_up(project: Project) -> None:
    segments(project, "albania:\n  country: Albania\n")
    selection = select(project, "readers", "albania")
    assert (selection.count, selection.outside_segment, selection.rows) == (2, 4, 6)


def test_an_unknown_segment_exits_1_with_a_suggestion(project: Project) -> None:
    segments(
        project, "western-balkans:\n  country: [Albania, Serbia]\neu-members:\n  country: Croatia\n"
    )
    with pytest.raises(ComposeError) as unknown:
        select(project, "readers", "western-balkan")
    assert unknown.value.exit_code == 1
    assert "unknown segment 'western-balkan'" in str(unknown.value)
    assert "did you mean 'western-balkans'?" in str(unknown.value)


def test_a_segment_without_a_segments_file_is_unknown(project: Project) -> None:
    (project.subscribers_dir / "segments.yaml").unlink()
    with pytest.raises(ComposeError, match="defines no segments"):
        select(project, "readers", "anything")


def test_an_unknown_column_points_at_the_segment_line(project: Project) -> None:
    segments(project, "# comment\nserbia:\n  contry: Serbia\n")
    with pytest.raises(InvalidInput) as bad:
        select(project, "readers", "serbia")
    (problem,) = bad.value.problems
    assert (problem.file, problem.line, problem.col) == ("subscribers/segments.yaml", 3, 3)
    assert "'contry'" in problem.message
    assert "did you mean 'country'?" in problem.message


def test_an_interest_that_is_not_a_pillar_is_an_error(project: Project) -> None:
    segments(project, "drugs:\n  interests: [III, VI]\n")
    with pytest.raises(InvalidInput) as bad:
        select(project, "readers", "drugs")
    (problem,) = bad.value.problems
    assert (problem.line, problem.col) == (2, 20)
    assert "'VI' is not a pillar" in problem.message


def test_a_value_yaml_reads_as_a_boolean_must_be_quoted(project: Project) -> None:
    segments(project, "norwegian:\n  language: no\n")
    with pytest.raises(InvalidInput) as bad:
        select(project, "readers", "norwegian")
    (problem,) = bad.value.problems
    assert problem.line == 2
    assert "write the text in quotes" in problem.message


def test_an_empty_segment_is_an_error(project: Project) -> None:
    segments(project, "everyone: {}\n")
    with pytest.raises(InvalidInput, match="needs conditions"):
        select(project, "readers", "everyone")


def test_check_reports_a_column_no_list_has(project: Project) -> None:
    segments(project, "fine:\n  sector: police\nbroken:\n  region: Balkans\n")
    report = check_lists(project)
    assert [(p.line, p.col) for p in report.shared] == [(4, 3)]
    assert "'region', which no list has" in report.shared[0].message
    assert report.has_errors


def test_check_reports_segments_yaml_syntax_errors(project: Project) -> None:
    segments(project, "serbia:\n  country: [Serbia\n")
    report = check_lists(project)
    assert report.has_errors
    assert report.shared[0].file == "subscribers/segments.yaml"
