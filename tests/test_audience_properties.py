"""Property tests: the fast list reader agrees with a slow, obvious model on any list.

The model reads with csv.reader, judges every address with email-validator and dedupes with
a set: what the audience code does in blocks, with memos, filters and fast paths, must give
exactly the same counts and the same readers in the same order.
"""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from composer.audience import import_list, records, select
from composer.audience.rowcheck import CellJudge
from composer.issue.rules import email_problem
from composer.project import Project, load_project

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"
PILLARS = ("I", "II", "III", "IV")
POOL = [
    "ana.petrovic@example.org",
    "Ana.Petrovic@Example.ORG",
    "marko+news@example.com",
    "o'brien@example.org",
    "x_y-z@sub.example.org",
    "žan@example.org",
    "milica@bücher.example",
]
BAD = [
    "",
    "not-an-address",
    "a@b",
    "x@@example.org",
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "a@example..org",
    "a@-example.org",
    "a@localhost",
    "a b@example.org",
    '"quoted"@example.org',
    "a@example.org\n",
]
EMAILS = st.one_of(
    st.sampled_from(POOL),
    st.sampled_from(BAD),
    st.builds(
        lambda e, pad: f"{pad}{e}{pad}", st.sampled_from(POOL), st.sampled_from(["", " ", "\t"])
    ),
    st.emails(),
    st.text(alphabet="ab.@-_+ é", max_size=14),
)
SEGMENTS = {
    None: {},
    "serbia": {"country": {"serbia"}},
    "drugs": {"interests": {"iii"}},
    "albania-enforcement": {"country": {"albania"}, "interests": {"i", "ii"}},
}
SEGMENTS_YAML = """\
serbia: {country: Serbia}
drugs: {interests: III}
albania-enforcement: {country: Albania, interests: [I, II]}
"""
ROW = st.fixed_dictionaries(
    {
        "email": EMAILS,
        "name": st.text(alphabet='ab ,"\n\rč', max_size=6),
        "country": st.sampled_from(["Serbia", " serbia", "Albania", ""]),
        "interests": st.sampled_from(["", "I", "III", "I;III", " II ; IV", "V", "I;;III"]),
        "status": st.sampled_from(["", "subscribed", "UNSUBSCRIBED", "paused"]),
    }
)


def csv_text(rows: list[dict[str, str]], ending: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, ["email", "name", "country", "interests", "status"], lineterminator=ending
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def model(
    text: str, suppressed: set[str], conditions: dict[str, set[str]]
) -> tuple[Counter, list[str]]:
    """The slow, obvious reading of a list."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader)]
    tally: Counter = Counter()
    seen: set[str] = set()
    chosen: list[str] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        tally["rows"] += 1
        cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))
        email = cells["email"].strip()
        interests = [part.strip() for part in cells["interests"].split(";")]
        status = cells["status"].strip().lower()
        if (
            not email
            or email_problem(email) is not None
            or any(part and part not in PILLARS for part in interests)
            or status not in ("", "subscribed", "unsubscribed")
        ):
            tally["invalid"] += 1
            continue
        key = unicodedata.normalize("NFC", email).lower()
        if key in seen:
            tally["duplicates"] += 1
            continue
        seen.add(key)
        inside = all(
            any(p.strip().casefold() in wanted for p in cells[column].split(";"))
            if column == "interests"
            else cells[column].strip().casefold() in wanted
            for column, wanted in conditions.items()
        )
        if not inside:
            tally["outside_segment"] += 1
        elif status == "unsubscribed":
            tally["unsubscribed"] += 1
        elif key in suppressed:
            tally["suppressed"] += 1
        else:
            chosen.append(key)
    return tally, chosen


def fresh_project(folder: Path, text: str, suppressed: list[str]) -> Project:
    root = folder / "project"
    root.mkdir()
    (root / "newsletter.yaml").write_bytes((FIXTURE / "newsletter.yaml").read_bytes())
    (root / "subscribers").mkdir()
    (root / "subscribers" / "readers.csv").write_text(text, encoding="utf-8", newline="")
    (root / "subscribers" / "segments.yaml").write_text(SEGMENTS_YAML, encoding="utf-8")
    lines = "".join(f"{email},bounced,2024-01-01\n" for email in suppressed)
    (root / "subscribers" / "suppressions.csv").write_text(
        f"email,reason,date\n{lines}", encoding="utf-8"
    )
    return load_project(root)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny blocks and reads, so that short lists cross every boundary the reader has."""
    monkeypatch.setattr(records, "BLOCK", 4)
    monkeypatch.setattr(records, "_CHUNK_CHARS", 64)


PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    rows=st.lists(ROW, max_size=30),
    ending=st.sampled_from(["\n", "\r\n"]),
    segment=st.sampled_from(sorted(SEGMENTS, key=str)),
    suppressed=st.lists(st.sampled_from(POOL), max_size=3),
)
def test_select_agrees_with_the_model(
    rows: list[dict[str, str]], ending: str, segment: str | None, suppressed: list[str]
) -> None:
    text = csv_text(rows, ending)
    with tempfile.TemporaryDirectory() as folder:
        project = fresh_project(Path(folder), text, suppressed)
        selection = select(project, "readers", segment, skip_invalid=True)
        readers = [r.key for r in selection.recipients or []]
    keys = {unicodedata.normalize("NFC", e.strip()).lower() for e in suppressed}
    expected, chosen = model(text, keys, SEGMENTS[segment])
    for name in ("rows", "invalid", "duplicates", "outside_segment", "unsubscribed", "suppressed"):
        assert getattr(selection, name) == expected[name], name
    assert readers == chosen
    assert selection.count == len(chosen)


@PROPERTY
@given(rows=st.lists(ROW, max_size=30), suppressed=st.lists(st.sampled_from(POOL), max_size=4))
def test_count_never_exceeds_the_distinct_valid_addresses(
    rows: list[dict[str, str]], suppressed: list[str]
) -> None:
    text = csv_text(rows, "\n")
    valid = {
        e.strip().lower()
        for e in (r["email"] for r in rows)
        if e.strip() and email_problem(e.strip()) is None
    }
    with tempfile.TemporaryDirectory() as folder:
        selection = select(
            fresh_project(Path(folder), text, suppressed), "readers", skip_invalid=True
        )
    assert selection.count <= len(valid)


@PROPERTY
@given(
    rows=st.lists(ROW, max_size=30),
    suppressed=st.lists(st.sampled_from(POOL), min_size=1, max_size=4),
)
def test_a_suppressed_address_is_never_listed(
    rows: list[dict[str, str]], suppressed: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        project = fresh_project(Path(folder), csv_text(rows, "\n"), suppressed)
        listed = {r.key for r in select(project, "readers", skip_invalid=True).recipients or []}
    assert not listed & {unicodedata.normalize("NFC", s).lower() for s in suppressed}


@PROPERTY
@given(rows=st.lists(ROW, max_size=20), incoming=st.lists(ROW, max_size=20))
def test_import_is_idempotent(rows: list[dict[str, str]], incoming: list[dict[str, str]]) -> None:
    clean = [r for r in rows if r["email"].strip() and email_problem(r["email"].strip()) is None]
    with tempfile.TemporaryDirectory() as folder:
        project = fresh_project(Path(folder), csv_text(clean, "\n"), [])
        source = Path(folder) / "incoming.csv"
        source.write_text(csv_text(incoming, "\n"), encoding="utf-8", newline="")
        first = import_list(project, source, "readers")
        after_first = (project.subscribers_dir / "readers.csv").read_bytes()
        second = import_list(project, source, "readers")
        after_second = (project.subscribers_dir / "readers.csv").read_bytes()
    assert (second.added, second.updated) == (0, 0)
    assert after_second == after_first
    assert second.unchanged == first.added + first.updated + first.unchanged


@settings(max_examples=500, deadline=None)
@given(address=st.one_of(EMAILS, st.text(max_size=20)))
def test_the_fast_address_check_agrees_with_email_validator(address: str) -> None:
    address = address.strip()
    assume(address)
    judge = CellJudge(PILLARS)
    assert (judge.address_problem(address) is None) == (email_problem(address) is None)
