"""The fast CSV reader gives what csv.reader gives, with the physical start line of each row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.atomic import AtomicFile, write_atomically, write_bytes_atomically
from composer.audience import encodings, records
from composer.audience.records import open_table
from composer.errors import InvalidInput

CELL = st.text(alphabet='ab ,"\n\r\x00é', max_size=6)
ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


def reference_rows(text: str, width: int) -> list[tuple[int, list[str]]]:
    """What Table.rows() promises, computed the slow and obvious way with csv.reader."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    next(reader)
    end = reader.line_num
    rows: list[tuple[int, list[str]]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error:
            rows.append((end + 1, []))
            end = reader.line_num
            continue
        start, end = end + 1, reader.line_num
        if len(row) == width:
            rows.append((start, row))
        elif not any(cell.strip() for cell in row):
            continue
        elif len(row) < width:
            rows.append((start, row + [""] * (width - len(row))))
        else:
            rows.append((start, []))


def table_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    with open_table(path, "t.csv") as table:
        return table.columns, list(table.rows())


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny blocks and reads, so that short inputs cross every boundary the reader has."""
    monkeypatch.setattr(records, "BLOCK", 3)
    monkeypatch.setattr(records, "_CHUNK_CHARS", 7)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(CELL, min_size=1, max_size=4), max_size=12),
    ending=ENDINGS,
    quoted=st.booleans(),
)
def test_rows_and_lines_match_csv_reader(
    tmp_path: Path, rows: list[list[str]], ending: str, quoted: bool
) -> None:
    if quoted:  # well-formed CSV, as a spreadsheet writes it
        out = io.StringIO()
        csv.writer(out, lineterminator=ending).writerows([["email", "name", "x"], *rows])
        text = out.getvalue()
    else:  # whatever people type, stray quotes included
        text = ending.join(",".join(row) for row in [["email", "name", "x"], *rows]) + ending
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8", newline="")
    columns, got = table_rows(path)
    assert columns == ["email", "name", "x"]
    assert got == reference_rows(text, 3)


def test_a_bom_and_header_case_and_spaces_are_normalized(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeff Email ,NAME,Extra Column,\r\na@example.org,A,x,y\r\n".encode())
    with open_table(path, "t.csv") as table:
        assert table.columns == ["email", "name", "extra column", "column4"]
        assert table.bom and table.crlf
        assert list(table.rows()) == [(2, ["a@example.org", "A", "x", "y"])]


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [
        ("email;name;country\r\n", ";"),
        ("email\tname\n", "\t"),
        ("email,name\n", ","),
        ("email\n", ","),  # one column: nothing to sniff, and nothing needed
        ('"e-mail;address",name,country\n', ","),  # a quoted `;` is not a delimiter
        ('email;"last, first";country\n', ";"),
    ],
)
def test_the_delimiter_is_sniffed_from_the_header(line: str, delimiter: str) -> None:
    assert records.sniff_delimiter(line) == delimiter


def test_header_spellings_of_email_and_name(tmp_path: Path) -> None:
    assert records.header_columns([" E-mail Address ", "Full  Name", "Country"]) == [
        "email",
        "name",
        "country",
    ]
    assert records.header_columns(["Mail", "Display Name"]) == ["email", "name"]
    assert records.header_columns(["E_MAIL", "E-mail 2 Address"]) == ["email", "e-mail 2 address"]
    # A column named exactly so wins; the alias stays a column of its own.
    assert records.header_columns(["Email Address", "email"]) == ["email address", "email"]


@pytest.mark.parametrize(
    ("text", "codec", "expected"),
    [
        ("Kovačević Đorđe", "cp1250", "cp1250"),
        ("Čačak", "cp1250", "cp1250"),
        ("Šćepanović", "cp1250", "cp1250"),
        ("Hélène Crèvecœur", "cp1252", "cp1252"),
        ("José Niño", "cp1252", "cp1252"),
        ("Müller Straße", "cp1252", "cp1252"),  # the same bytes in both: either reads it right
        ("\x81", "latin-1", None),  # neither code page has byte 0x81
    ],
)
def test_which_windows_code_page(text: str, codec: str, expected: str | None) -> None:
    assert encodings.legacy_codec(text.encode(codec)) == expected


def test_a_switch_to_a_code_page_late_in_the_file(tmp_path: Path) -> None:
    rows = "".join(f"r{n}@example.org,R\r\n" for n in range(10))
    path = tmp_path / "t.csv"
    path.write_bytes(f"email,name\r\n{rows}z@example.org,Žarko Ćosić\r\n".encode("cp1250"))
    with open_table(path, "t.csv") as table:
        assert table.notes == []  # not known before the reading gets there
        got = list(table.rows())
        assert [str(n) for n in table.notes] == [
            't.csv: warning: not UTF-8; read as Windows-1250 (save as "CSV UTF-8" to silence this)'
        ]
    assert got[-1] == (12, ["z@example.org", "Žarko Ćosić"])


def test_utf16_as_excel_saves_unicode_text(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes("E-mail\tName\r\na@example.org\tĐorđe\r\n".encode("utf-16"))
    with open_table(path, "t.txt") as table:
        assert (table.columns, table.delimiter) == (["email", "name"], "\t")
        assert list(table.rows()) == [(2, ["a@example.org", "Đorđe"])]
        assert table.notes == []


def test_a_semicolon_list_keeps_commas_in_cells(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"\xef\xbb\xbfEmail;Name\r\na@example.org;Doe, Jane\r\nb@example.org;x;y\r\n")
    with open_table(path, "t.csv") as table:
        assert (table.delimiter, table.bom, table.crlf) == (";", True, True)
        assert table.header == ["Email", "Name"]
        assert list(table.rows()) == [(2, ["a@example.org", "Doe, Jane"]), (3, [])]
        assert [str(p) for p in table.problems] == [
            "t.csv:3: row has 3 fields but the header has 2; quote values that contain semicolons"
        ]


def test_a_repeated_column_is_an_error_on_line_1(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("email,name,Name\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as bad:
        open_table(path, "t.csv")
    assert [str(p) for p in bad.value.problems] == [
        "t.csv:1: column 'name' appears twice in the header"
    ]


def test_a_runaway_quote_in_a_big_file_is_caught(tmp_path: Path) -> None:
    body = "".join(f"r{n}@example.org,R\n" for n in range(20))
    path = tmp_path / "t.csv"
    path.write_text(f'email,name\na@example.org,"oops\n{body}', encoding="utf-8")
    _, rows = table_rows(path)
    assert rows == [(2, [])]


def test_an_atomic_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("old\n", encoding="utf-8")
    write_atomically(path, ["new\n", "lines\n"])
    assert path.read_text(encoding="utf-8") == "new\nlines\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv"]


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(RuntimeError), AtomicFile(path) as out:
        out.write("half of it")
        raise RuntimeError("crash while writing")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv"]


def test_a_discarded_atomic_write_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("old\n", encoding="utf-8")
    with AtomicFile(path) as out:
        out.write("new\n")
        out.discard()
    assert path.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.csv"]


def test_an_exclusive_atomic_write_never_replaces_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    assert write_bytes_atomically(path, b"first\n", mode=0o600, exclusive=True)
    assert not write_bytes_atomically(path, b"second\n", mode=0o600, exclusive=True)
    assert path.read_bytes() == b"first\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]
    assert write_bytes_atomically(path, b"third\n")  # not exclusive: replaces, keeps the mode
    assert path.read_bytes() == b"third\n" and path.stat().st_mode & 0o777 == 0o600


def test_a_rewrite_keeps_the_dialect_and_writes_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records, "_CHUNK_CHARS", 1 << 18)  # as opened for real
    path = tmp_path / "t.csv"
    path.write_bytes("E-mail;Name\r\na@example.org;Đorđe\r\n".encode("cp1250"))
    with open_table(path, "t.csv") as table:
        start, lines = records.list_writer(table)
    assert start + lines.line(["email", "name"]) + lines.line(["b@x.org", "Šćepanović; Jr"]) == (
        '\ufeffemail;name\r\nb@x.org;"Šćepanović; Jr"\r\n'
    )
    path.write_text("email,name\na@example.org,A\n", encoding="utf-8")
    with open_table(path, "t.csv") as table:
        start, lines = records.list_writer(table)
    assert start + lines.line(["b@x.org", "B"]) == "b@x.org,B\n"
