"""Exports for people never carry a formula a spreadsheet would run; our data files keep values.

OWASP "CSV Injection": a cell starting with =, +, -, @, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets. Exports prefix such a cell with `'`; the files
we read back ourselves (lists, suppressions.csv) store exactly what was given.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from composer.audience import import_list
from composer.audience.records import ExportLines, export_tsv_line, spreadsheet_safe
from composer.audience.suppressions import add_suppressions, suppression_rows
from composer.project import load_project
from tests.conftest import copy_project
from tests.conftest import run_in_process as compose

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"
HYPERLINK = '=HYPERLINK("http://x","y")'
SUM = "@SUM(1+1)"
HOSTILE = [HYPERLINK, SUM, "+1 555", "-2+3", "\t=1+1", "\r=1+1"]
IN_A_LIST = HOSTILE[:4]  # a list's cells are read trimmed: a leading tab or CR is gone


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = copy_project(FIXTURE, tmp_path)
    monkeypatch.chdir(target)
    return target


def hostile_list(root: Path, tmp_path: Path) -> Path:
    """List `people`, imported, with one reader per hostile value in name and organization."""
    source = tmp_path / "people.csv"
    with source.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "name", "organization"])
        for n, value in enumerate(IN_A_LIST):
            writer.writerow([f"reader{n}@example.org", value, value])
    import_list(load_project(root), source, "people")
    return root / "subscribers" / "people.csv"


def test_the_helper_prefixes_formulas_only() -> None:
    assert spreadsheet_safe(HYPERLINK) == "'" + HYPERLINK
    assert spreadsheet_safe(SUM) == "'@SUM(1+1)"
    assert [spreadsheet_safe(v)[0] for v in HOSTILE] == ["'"] * len(HOSTILE)
    for plain in ("Ana Petrović", "Horvat, Marko", "", "a=b", "x@example.org", " =1"):
        assert spreadsheet_safe(plain) == plain
    assert ExportLines().line(["=1", "ok"]) == "'=1,ok\n"
    assert export_tsv_line(["a\tb", "c\r\n=1", "=2"]) == "a b\tc  =1\t'=2"


def test_subscribers_list_as_csv_neutralises_formulas(
    capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path
) -> None:
    path = hostile_list(root, tmp_path)
    stored = path.read_bytes()
    code, out, _ = compose(capsys, "subscribers", "list", "--list", "people", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[0] == ["email", "name", "organization"]
    assert [row[1] for row in rows[1:]] == ["'" + HYPERLINK, "'@SUM(1+1)", "'+1 555", "'-2+3"]
    assert [row[2] for row in rows[1:]] == ["'" + value for value in IN_A_LIST]
    # The list itself keeps the values exactly, as they were imported.
    assert path.read_bytes() == stored
    assert HYPERLINK.replace('"', '""').encode() in stored
    assert b"'=" not in stored and b"'@" not in stored


def test_suppressions_list_neutralises_formulas_but_the_file_keeps_them(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    project = load_project(root)
    add_suppressions(project, [("formula@example.org", HYPERLINK, "2024-06-01")])
    add_suppressions(project, [("sum@example.org", SUM, "2024-06-01")])
    add_suppressions(project, [("split@example.org", "x\r\n=1+1", "2024-06-01")])
    code, out, _ = compose(capsys, "suppressions", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[1:] == [
        f"formula@example.org\t'{HYPERLINK}\t2024-06-01",
        "sum@example.org\t'@SUM(1+1)\t2024-06-01",
        "split@example.org\tx  =1+1\t2024-06-01",  # no row of its own starting with =
    ]
    reasons = [reason for _, reason, _ in suppression_rows(project)]
    assert reasons[1:] == [HYPERLINK, SUM, "x\r\n=1+1"]
