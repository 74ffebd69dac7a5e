"""A messy subscriber list: every bad row at its physical line, the rest selected exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.audience import Recipient, list_names, select
from composer.errors import ComposeError, InvalidInput
from composer.project import Project, load_project
from tests.conftest import copy_project

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A writable copy of the audience fixture project, with the working folder inside it."""
    root = copy_project(FIXTURE, tmp_path)
    monkeypatch.chdir(root)
    return load_project(root)


def write_list(project: Project, name: str, text: str | bytes) -> Path:
    path = project.subscribers_dir / f"{name}.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def lines_of(problems: list) -> list[tuple[int | None, str]]:
    return [(p.line, p.severity) for p in problems]


def test_the_messy_fixture_is_counted_row_by_row(project: Project) -> None:
    selection = select(project, "messy", skip_invalid=True)
    assert selection.rows == 16  # line 15 is blank, line 17 only commas; 10-11 is one record
    assert selection.invalid == 5
    assert selection.duplicates == 1
    assert selection.unsubscribed == 1
    assert selection.suppressed == 1
    assert selection.count == 8
    assert lines_of(selection.problems) == [
        (5, "error"),
        (6, "error"),
        (7, "error"),
        (8, "error"),
        (12, "warning"),
        (19, "error"),
    ]


def test_each_problem_says_what_is_wrong(project: Project) -> None:
    by_line = {p.line: str(p) for p in select(project, "messy", skip_invalid=True).problems}
    assert by_line[5].startswith("subscribers/messy.csv:5: invalid email address 'not-an-address'")
    assert by_line[6] == "subscribers/messy.csv:6: empty email address"
    assert "interests 'V' is not a pillar (pillars: I;II;III;IV" in by_line[7]
    assert "unknown status 'paused'" in by_line[8]
    assert by_line[12] == (
        "subscribers/messy.csv:12: warning: duplicate of line 2 (ana.petrovic@example.org); "
        "the first row wins"
    )
    assert "row has 8 fields but the header has 7" in by_line[19]


def test_recipients_are_the_first_valid_rows_in_file_order(project: Project) -> None:
    selection = select(project, "messy", skip_invalid=True)
    readers = list(selection.recipients or [])
    assert [r.line for r in readers] == [2, 3, 4, 9, 10, 16, 18, 20]
    assert len(readers) == selection.count == len(selection.recipients or [])
    first = readers[0]
    assert first.name == "Ana Petrović"  # the first row wins over line 12's "Ana P. (again)"


def test_a_recipient_keeps_the_address_as_written_and_a_lowercase_key(project: Project) -> None:
    readers = {r.line: r for r in select(project, "messy", skip_invalid=True).recipients or []}
    jelena = readers[4]
    assert jelena == Recipient(
        "Jelena.Nikolic@Example.ORG", "jelena.nikolic@example.org", "Jelena Nikolić", line=4
    )
    assert jelena.attributes == {
        "country": "Serbia",
        "organization": "Public Prosecutor's Office",
        "interests": "II",
        "status": "",
        "role": "prosecution",  # an extra column, kept as an attribute
    }


def test_quoted_commas_quotes_and_newlines_survive(project: Project) -> None:
    readers = {r.line: r for r in select(project, "messy", skip_invalid=True).recipients or []}
    assert readers[3].name == "Horvat, Marko"
    assert readers[3].attributes["organization"] == "Police Directorate, Zagreb"
    assert readers[9].name == 'Amra "the analyst" Hadžić'
    assert readers[10].name == "Stefan Radulović"  # a name is one line: it goes into To:
    assert readers[20].attributes == {
        "country": "Croatia",
        "organization": "",
        "interests": "",
        "status": "",
        "role": "",
    }


def test_recipients_can_be_iterated_again(project: Project) -> None:
    selection = select(project, "messy", skip_invalid=True)
    assert list(selection.recipients or []) == list(selection.recipients or [])


def test_a_list_with_errors_is_refused_before_anyone_is_selected(project: Project) -> None:
    with pytest.raises(InvalidInput) as refused:
        select(project, "messy")
    assert refused.value.exit_code == 1
    lines = [p.line for p in refused.value.problems if p.severity == "error" and p.line]
    assert lines == [5, 6, 7, 8, 19]
    assert "--skip-invalid" in str(refused.value.problems[-1])


def test_a_clean_list_needs_no_skip_invalid(project: Project) -> None:
    write_list(project, "clean", "email,name\nA@example.org,A\nb@example.org,B\n")
    selection = select(project, "clean")
    assert selection.count == 2
    assert [r.key for r in selection.recipients or []] == ["a@example.org", "b@example.org"]


def test_an_unknown_list_exits_1_naming_the_lists(project: Project) -> None:
    with pytest.raises(ComposeError) as unknown:
        select(project, "mesy")
    assert unknown.value.exit_code == 1
    message = str(unknown.value)
    assert "unknown list 'mesy'" in message
    assert "messy" in message
    assert "did you mean 'messy'?" in message


def test_suppressions_csv_is_not_a_list(project: Project) -> None:
    assert list_names(project) == ["messy"]


def test_a_list_changed_after_the_check_is_not_sent_from(project: Project) -> None:
    path = write_list(project, "clean", "email\na@example.org\n")
    selection = select(project, "clean")
    path.write_text("email\na@example.org\nb@example.org\n", encoding="utf-8")
    with pytest.raises(ComposeError, match="changed since it was checked"):
        list(selection.recipients or [])


def test_the_physical_line_counts_every_line_ending_kind(project: Project) -> None:
    write_list(project, "cr", b'email,name\rbad\rok@example.org,"two\rlines"\rbad2\r')
    selection = select(project, "cr", skip_invalid=True)
    assert [(p.line, p.severity) for p in selection.problems] == [(2, "error"), (5, "error")]
    assert [r.line for r in selection.recipients or []] == [3]


def test_an_unterminated_quote_is_reported_where_it_opens(project: Project) -> None:
    write_list(project, "quote", 'email,name\na@example.org,"Never closed\nb@example.org,B\n')
    selection = select(project, "quote", skip_invalid=True)
    assert [p.line for p in selection.problems] == [2]
    assert "never closed" in selection.problems[0].message
    assert selection.count == 0


def test_a_stray_quote_spoils_only_its_row(project: Project) -> None:
    write_list(project, "stray", 'email,name\na@example.org,"Jo" Doe\nb@example.org,B\n')
    selection = select(project, "stray", skip_invalid=True)
    assert [p.line for p in selection.problems] == [2]
    assert [r.key for r in selection.recipients or []] == ["b@example.org"]


def test_a_quote_inside_an_unquoted_field_is_just_a_character(project: Project) -> None:
    write_list(project, "inner", 'email,name\na@example.org,Jo "J" Doe\n')
    (reader,) = select(project, "inner").recipients or []
    assert reader.name == 'Jo "J" Doe'


def test_a_windows_1250_file_is_read_with_a_warning(project: Project) -> None:
    """Excel's Central European CSV: read as it is saved, and the officer is told how."""
    write_list(
        project, "latin", "email,name\na@example.org,Ana\nb@example.org,Bojan Đ\n".encode("cp1250")
    )
    selection = select(project, "latin", skip_invalid=True)
    assert [r.name for r in selection.recipients] == ["Ana", "Bojan Đ"]
    assert any("not UTF-8; read as Windows-1250" in p.message for p in selection.problems)


def test_a_header_named_e_mail_is_the_email_column(project: Project) -> None:
    write_list(project, "header", "E-mail,Name\na@example.org,A\n")
    selection = select(project, "header")
    assert [(r.email, r.name) for r in selection.recipients] == [("a@example.org", "A")]


def test_a_header_without_any_email_column_says_what_to_do(project: Project) -> None:
    write_list(project, "header", "Vorname,Adresse\nAna,a@example.org\n")
    with pytest.raises(InvalidInput) as bad:
        select(project, "header")
    (problem,) = bad.value.problems
    assert problem.line == 1
    assert "no e-mail column" in problem.message and "Vorname, Adresse" in problem.message


def test_an_empty_list_file_is_an_error(project: Project) -> None:
    write_list(project, "empty", "")
    with pytest.raises(InvalidInput, match="file is empty"):
        select(project, "empty")


def test_an_international_address_is_judged_by_email_validator(project: Project) -> None:
    write_list(
        project, "intl", "email\nmilica@bücher.example\nMILICA@BÜCHER.EXAMPLE\nžan@example.org\n"
    )
    selection = select(project, "intl", skip_invalid=True)
    assert selection.invalid == 0
    assert selection.duplicates == 1
    assert [r.key for r in selection.recipients or []] == [
        "milica@bücher.example",
        "žan@example.org",
    ]


def test_rows_that_repeat_across_many_blocks_are_found(project: Project) -> None:
    rows = [f"reader{n}@example.org" for n in range(1000)]
    rows += [f"Reader{n}@Example.org" for n in range(0, 1000, 7)]  # repeats far apart
    write_list(project, "many", "email\n" + "\n".join(rows) + "\n")
    selection = select(project, "many", skip_invalid=True)
    assert selection.count == 1000
    assert selection.duplicates == len(range(0, 1000, 7))
    first = next(p for p in selection.problems if p.line == 1002)
    assert first.message == "duplicate of line 2 (reader0@example.org); the first row wins"


def test_consent_records_are_never_a_list(project: Project) -> None:
    """`compose send --list consent` must not mail everyone who ever consented."""
    write_list(project, "consent", "email,list,action\na@example.org,main,subscribe\n")
    assert "consent" not in list_names(project)
    with pytest.raises(ComposeError, match="unknown list 'consent'"):
        select(project, "consent")
