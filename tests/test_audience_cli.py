"""`compose subscribers check|count|list|import` through the real entry point and error boundary."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_compose
from tests.conftest import run_in_process as compose

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = copy_project(FIXTURE, tmp_path)
    monkeypatch.chdir(target)
    return target


def clean(root: Path) -> None:
    """Make messy.csv valid by dropping its bad rows (lines 5-8 and 19)."""
    path = root / "subscribers" / "messy.csv"
    lines = path.read_bytes().split(b"\r\n")
    keep = [line for n, line in enumerate(lines, 1) if n not in (5, 6, 7, 8, 19)]
    path.write_bytes(b"\r\n".join(keep))


def test_check_prints_each_bad_row_and_exits_1(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    code, out, err = compose(capsys, "subscribers", "check")
    assert code == 1
    assert "subscribers/messy.csv: 16 rows: 8 to send" in out
    lines = err.splitlines()
    assert lines[0].startswith("subscribers/messy.csv:5: invalid email address")
    assert "subscribers/messy.csv:12: warning: duplicate of line 2" in err
    assert lines[-1] == "5 errors in subscriber files"


def test_check_with_warnings_only_exits_0(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    clean(root)
    code, out, err = compose(capsys, "subscribers", "check", "messy")
    assert code == 0
    assert "warning: duplicate of line" in err
    assert "11 rows: 8 to send" in out


def test_count_ends_with_the_bare_number(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, err = compose(capsys, "subscribers", "count", "--list", "messy")
    assert code == 0
    assert out.splitlines()[-1] == "8"
    assert "subscribers/messy.csv:5: warning: invalid email address" in err
    assert "row left out" in err


def test_count_of_a_segment(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, _ = compose(
        capsys, "subscribers", "count", "--list", "messy", "--segment", "law-enforcement"
    )
    assert code == 0
    assert out.splitlines()[-1] == "6"


def test_count_of_an_unknown_list_or_segment_exits_1(
    capsys: pytest.CaptureFixture[str], root: Path
) -> None:
    code, out, err = compose(capsys, "subscribers", "count", "--list", "nope")
    assert (code, out) == (1, "")
    assert "unknown list 'nope'" in err
    code, out, err = compose(
        capsys, "subscribers", "count", "--list", "messy", "--segment", "serbi"
    )
    assert (code, out) == (1, "")
    assert "did you mean 'serbia'?" in err


def test_list_as_csv_when_piped(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, _ = compose(capsys, "subscribers", "list", "--list", "messy", "--segment", "serbia")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["email", "name", "country", "organization", "interests", "status", "role"]
    assert [row[0] for row in rows[1:]] == [
        "ana.petrovic@example.org",
        "Jelena.Nikolic@Example.ORG",
    ]


def test_list_as_a_table(capsys: pytest.CaptureFixture[str], root: Path) -> None:
    code, out, _ = compose(capsys, "subscribers", "list", "--list", "messy", "--format", "table")
    assert code == 0
    assert "vlora.krasniqi" in out
    assert "suppressed.person" not in out.lower()
    assert (
        out.splitlines()[-1]
        == "16 rows: 8 to send; left out: 5 invalid, 1 duplicate, 1 unsubscribed, 1 suppressed"
    )


def test_import_reports_added_updated_rejected(
    capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path
) -> None:
    clean(root)
    new = tmp_path / "new.csv"
    new.write_text(
        "email,name\nnew@example.org,New\nANA.PETROVIC@example.org,Ana Petrović-Jović\nbad,\n",
        encoding="utf-8",
    )
    code, out, err = compose(capsys, "subscribers", "import", new, "--list", "messy")
    assert code == 0
    assert out.strip().endswith("1 added, 1 updated, 0 unchanged, 1 rejected")
    assert "new.csv:4: invalid email address 'bad'" in err
    assert err.rstrip().endswith("(rejected)")


def test_import_refuses_a_list_it_could_not_rewrite_whole(
    capsys: pytest.CaptureFixture[str], root: Path, tmp_path: Path
) -> None:
    new = tmp_path / "new.csv"
    new.write_text("email\nnew@example.org\n", encoding="utf-8")
    before = (root / "subscribers" / "messy.csv").read_bytes()
    code, _, err = compose(capsys, "subscribers", "import", new, "--list", "messy")
    assert code == 1
    assert "messy.csv:19: row has 8 fields" in err
    assert (root / "subscribers" / "messy.csv").read_bytes() == before


def test_compose_as_a_process(root: Path) -> None:
    result = run_compose(
        "--project", root, "subscribers", "count", "--list", "messy", "--segment", "serbia"
    )
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "2"
    result = run_compose("--project", root, "subscribers", "check")
    assert result.code == 1
    assert "messy.csv:19: row has 8 fields" in result.stderr
    assert "Traceback" not in result.stderr
