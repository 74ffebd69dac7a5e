"""Lists as Excel saves them: `;` or tab, a BOM, CRLF, Windows-1250/1252, `E-mail` headers.

The files are written byte for byte as Excel writes them (a Central European locale saves
"CSV (delimited)" with `;`, CRLF and Windows-1250; "CSV UTF-8" adds a BOM) and read through
`compose` itself, in this process.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.audience import records, select
from composer.issue.rules import email_problem
from composer.project import load_project
from tests.conftest import Result, run_compose

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"
BOM = b"\xef\xbb\xbf"
WARN_1250 = (
    'subscribers/ce.csv: warning: not UTF-8; read as Windows-1250 (save as "CSV UTF-8" to '
    "silence this)"
)

# A Western Balkans list as Excel saves it: a quoted `;` inside interests, a name whose cell
# holds a line break (so the row spans lines 4-5), and a bad address on line 7.
CENTRAL = (
    "E-mail;Full name;Country;Interests\r\n"
    "ana.kovacevic@example.org;Ana Kovačević;Croatia;I\r\n"
    '"dorde@example.org";"Đorđe Šćepanović";Serbia;"I;III"\r\n'
    'zeljka@example.org;"Željka\r\nČačić";Bosnia and Herzegovina;II\r\n'
    "milan@example.org;Milan Ćirić, MSc;Montenegro;\r\n"
    "not-an-address;Nobody;Serbia;\r\n"
)
# A Western list saved as tab-separated Windows-1252 text, Outlook's header spellings.
WESTERN = (
    "Email Address\tDisplay Name\tCountry\r\n"
    "helene@example.org\tHélène Dupré\tFrance\r\n"
    "jose@example.org\tJosé Niño; Jr\tSpain\r\n"
)


def project_with(tmp_path: Path, lists: dict[str, bytes]) -> Path:
    root = tmp_path / "project"
    (root / "subscribers").mkdir(parents=True)
    shutil.copy(FIXTURE / "newsletter.yaml", root / "newsletter.yaml")
    for name, data in lists.items():
        (root / "subscribers" / f"{name}.csv").write_bytes(data)
    return root


def compose(root: Path, *args: str | Path) -> Result:
    result = run_compose(*args, cwd=root)  # paths are shown relative to where compose runs
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(params=["cp1250", "utf-8-sig"])
def central(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A project whose list ce.csv is CENTRAL as "CSV (delimited)" and as "CSV UTF-8"."""
    codec: str = request.param
    return project_with(tmp_path, {"ce": CENTRAL.encode(codec)}), codec


def test_count_reads_a_central_european_excel_list(central: tuple[Path, str]) -> None:
    root, codec = central
    result = compose(root, "subscribers", "count", "--list", "ce")
    assert result.code == 0
    assert result.stdout.splitlines() == ["5 rows: 4 to send; left out: 1 invalid", "4"]
    errors = result.stderr.splitlines()
    assert errors[-1].startswith("subscribers/ce.csv:7: warning: invalid email address")
    assert (WARN_1250 in errors) == (codec == "cp1250")
    assert len(errors) == 1 + (codec == "cp1250")


def test_list_gives_names_and_attributes_as_written(central: tuple[Path, str]) -> None:
    root, _ = central
    result = compose(root, "subscribers", "list", "--list", "ce", "--format", "csv")
    assert result.code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [
        ["email", "name", "country", "interests"],
        ["ana.kovacevic@example.org", "Ana Kovačević", "Croatia", "I"],
        ["dorde@example.org", "Đorđe Šćepanović", "Serbia", "I;III"],
        ["zeljka@example.org", "Željka Čačić", "Bosnia and Herzegovina", "II"],
        ["milan@example.org", "Milan Ćirić, MSc", "Montenegro", ""],
    ]


def test_check_names_the_physical_line_and_the_encoding(central: tuple[Path, str]) -> None:
    root, codec = central
    result = compose(root, "subscribers", "check")
    assert result.code == 1
    assert "subscribers/ce.csv: 5 rows: 4 to send; left out: 1 invalid" in result.stdout
    errors = result.stderr.splitlines()
    assert errors[0] == WARN_1250 if codec == "cp1250" else WARN_1250 not in errors
    assert any(e.startswith("subscribers/ce.csv:7: invalid email address") for e in errors)


def test_import_reads_an_excel_file_and_writes_utf8_in_its_dialect(
    central: tuple[Path, str],
) -> None:
    root, codec = central
    source = root / "subscribers" / "ce.csv"
    moved = root / "from-excel.csv"
    source.rename(moved)
    result = compose(root, "subscribers", "import", moved, "--list", "partners")
    assert result.code == 0, result.stderr
    assert result.stdout.strip().endswith("4 added, 0 updated, 0 unchanged, 1 rejected")
    assert "from-excel.csv:7: invalid email address 'not-an-address'" in result.stderr
    # Said as `send` and `check` say it, not silently converted.
    assert (WARN_1250 in result.stderr.replace("from-excel.csv", "subscribers/ce.csv")) == (
        codec == "cp1250"
    )
    # UTF-8 with a BOM (so Excel reads it as UTF-8), its `;` and CRLF: Excel opens it as before.
    written = (root / "subscribers" / "partners.csv").read_bytes()
    assert written.startswith(b"\xef\xbb\xbfemail;name;country;interests\r\n")
    selection = select(load_project(root), "partners")
    names = [r.name for r in selection.recipients or []]
    assert names == ["Ana Kovačević", "Đorđe Šćepanović", "Željka Čačić", "Milan Ćirić, MSc"]
    again = compose(root, "subscribers", "import", moved, "--list", "partners")
    assert again.stdout.strip().endswith("0 added, 0 updated, 4 unchanged, 1 rejected")


def test_a_western_tab_separated_windows_1252_list(tmp_path: Path) -> None:
    root = project_with(tmp_path, {"west": WESTERN.encode("cp1252")})
    result = compose(root, "subscribers", "list", "--list", "west", "--format", "csv")
    assert result.code == 0
    assert list(csv.reader(io.StringIO(result.stdout)))[1:] == [
        ["helene@example.org", "Hélène Dupré", "France"],
        ["jose@example.org", "José Niño; Jr", "Spain"],
    ]
    assert result.stderr.splitlines() == [
        (
            'subscribers/west.csv: warning: not UTF-8; read as Windows-1252 (save as "CSV UTF-8" '
            "to silence this)"
        )
    ]


def test_mac_line_ends_and_a_one_column_list(tmp_path: Path) -> None:
    root = project_with(tmp_path, {"cr": b"Mail\ra@example.org\rb@example.org\r\rbad\r"})
    result = compose(root, "subscribers", "count", "--list", "cr")
    assert result.stdout.splitlines()[-1] == "2"
    assert result.stderr.startswith("subscribers/cr.csv:5: warning: invalid email address 'bad'")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "Vorname;Nachname;Adresse\r\nAna;K;ana@example.org\r\n".encode("cp1250"),
            (
                "subscribers/bad.csv:1: no e-mail column: name one column 'email' "
                "(found: Vorname, Nachname, Adresse)"
            ),
        ),
        (
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
            (
                "subscribers/bad.csv:1: this is an Excel workbook (.xlsx) or another zip file, not "
                'CSV text; in Excel, save it with File > Save As > "CSV UTF-8 (Comma delimited)"'
            ),
        ),
        (
            b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\n",
            (
                "subscribers/bad.csv:1: this is a binary file, not CSV text; in Excel, save it with "
                'File > Save As > "CSV UTF-8 (Comma delimited)"'
            ),
        ),
        (  # 0x81 is a byte neither Windows code page has
            b"email;name\r\na@example.org;A\r\nb@example.org;B\x81\r\n",
            (
                "subscribers/bad.csv:3: not UTF-8 text (byte 0x81); in Excel, save it with "
                'File > Save As > "CSV UTF-8 (Comma delimited)"'
            ),
        ),
        (  # UTF-8 on line 2, then Windows-1250: half of it would be read wrong
            "email;name\r\na@example.org;Čačić\r\n".encode()
            + "b@example.org;Čačić\r\n".encode("cp1250"),
            (
                "subscribers/bad.csv:3: not UTF-8 text (byte 0xc8); in Excel, save it with "
                'File > Save As > "CSV UTF-8 (Comma delimited)"'
            ),
        ),
    ],
    ids=["no-email-column", "xlsx", "binary", "no-code-page", "mixed"],
)
def test_a_file_that_cannot_be_read_is_one_line(tmp_path: Path, data: bytes, expected: str) -> None:
    root = project_with(tmp_path, {"bad": data})
    for command in (["count", "--list", "bad"], ["list", "--list", "bad"], ["check", "bad"]):
        result = compose(root, "subscribers", *command)
        assert result.code == 1
        assert result.stderr.splitlines()[0] == expected
        if command[0] != "check":
            assert result.stderr.splitlines() == [expected]
    imported = compose(
        root, "subscribers", "import", root / "subscribers" / "bad.csv", "--list", "x"
    )
    assert imported.code == 1
    assert imported.stderr.splitlines() == [expected]
    assert not (root / "subscribers" / "x.csv").exists()


def test_a_header_with_email_and_an_alias_keeps_the_exact_one(tmp_path: Path) -> None:
    data = b"Name,E-mail Address,Email\r\nA,old@example.org,a@example.org\r\n"
    root = project_with(tmp_path, {"two": data})
    result = compose(root, "subscribers", "list", "--list", "two", "--format", "csv")
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["email", "name", "e-mail address"],
        ["a@example.org", "A", "old@example.org"],
    ]


# Property: the fast path (`select`, blocks of rows split without csv) agrees with the careful
# reading (csv.reader over the decoded text, each address judged by email-validator) on any
# list saved in any of Excel's dialects.

POOL = [
    "ana.petrovic@example.org",
    "Ana.Petrovic@Example.ORG",
    "žan@example.org",
    "milica@bücher.example",
    "x_y-z@sub.example.org",
    " padded@example.org ",
    "",
    "not-an-address",
    "a..b@example.org",
    "a b@example.org",
]
# Letters each code page reads unambiguously as itself (see encodings.legacy_codec).
LETTERS = {"utf-8": "čćđšžéàñ", "cp1250": "čćđšž", "cp1252": "éàñü"}
EMAIL_SPELLINGS = ["email", "E-mail", "Email Address", "e-mail address", " E-MAIL ", "Mail"]
NAME_SPELLINGS = ["name", "Name", "Full name", "Display Name"]


@st.composite
def excel_files(draw: st.DrawFn) -> tuple[bytes, str]:
    """(a list's bytes as Excel could save them, the text they hold)."""
    codec = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1250", "cp1252"]))
    letters = LETTERS[codec.removesuffix("-sig")]
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    ending = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    cell = st.text(alphabet=f'ab ,;"\t\r\n{letters}', max_size=6)
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(POOL),
                cell,
                st.sampled_from(["", "I", "I;III", "V"]),
                st.sampled_from(["", "subscribed", "Unsubscribed", "paused"]),
            ),
            max_size=25,
        )
    )
    header = [draw(st.sampled_from(EMAIL_SPELLINGS)), draw(st.sampled_from(NAME_SPELLINGS))]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=ending)
    writer.writerows([[*header, "Interests", "Status"], *map(list, rows)])
    text = out.getvalue()
    return text.encode(codec), text


def careful_reading(text: str) -> tuple[Counter[str], list[str]]:
    """Counts and the chosen readers, the slow and obvious way."""
    delimiter = records.sniff_delimiter(text.splitlines()[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    width = len(next(reader))
    tally: Counter[str] = Counter()
    seen: set[str] = set()
    chosen: list[str] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        tally["rows"] += 1
        row = row + [""] * (width - len(row))
        email, _, interests, status = row[:4]
        email, status = email.strip(), status.strip().lower()
        if (
            len(row) > width
            or not email
            or email_problem(email) is not None
            or any(p.strip() not in ("", "I", "II", "III", "IV") for p in interests.split(";"))
            or status not in ("", "subscribed", "unsubscribed")
        ):
            tally["invalid"] += 1
            continue
        key = unicodedata.normalize("NFC", email).lower()
        if key in seen:
            tally["duplicates"] += 1
        elif status == "unsubscribed":
            seen.add(key)
            tally["unsubscribed"] += 1
        else:
            seen.add(key)
            chosen.append(key)
    return tally, chosen


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny blocks and reads, so that short lists cross every boundary the reader has."""
    monkeypatch.setattr(records, "BLOCK", 4)
    monkeypatch.setattr(records, "_CHUNK_CHARS", 16)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(excel_files())
def test_the_fast_path_agrees_with_the_careful_reading(
    file: tuple[bytes, str],
) -> None:
    data, text = file
    with tempfile.TemporaryDirectory() as folder:
        root = project_with(Path(folder), {"excel": data})
        selection = select(load_project(root), "excel", skip_invalid=True)
        readers = [r.key for r in selection.recipients or []]
        assert selection.columns == ["email", "name", "interests", "status"]
    expected, chosen = careful_reading(text)
    for name in ("rows", "invalid", "duplicates", "unsubscribed"):
        assert getattr(selection, name) == expected[name], name
    assert readers == chosen
