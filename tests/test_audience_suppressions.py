"""suppressions.csv: never mailed, matched ignoring case, and safe under many writers at once."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from composer.audience import select
from composer.audience.suppressions import (
    add_suppressions,
    load_suppressed,
    suppression_rows,
    suppressions_path,
)
from composer.errors import InvalidInput
from composer.project import Project, load_project
from tests.conftest import copy_project

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = copy_project(FIXTURE, tmp_path)
    monkeypatch.chdir(root)
    return load_project(root)


def file_rows(project: Project) -> list[list[str]]:
    with suppressions_path(project).open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_load_gives_lowercase_addresses(project: Project) -> None:
    assert load_suppressed(project) == {"suppressed.person@example.com"}


def test_rows_come_back_as_written(project: Project) -> None:
    assert list(suppression_rows(project)) == [
        ("suppressed.person@example.com", "bounced (mailbox does not exist)", "2024-01-02")
    ]


def test_a_suppressed_reader_is_never_selected_whatever_the_case(project: Project) -> None:
    add_suppressions(project, [("ANA.Petrovic@Example.org", "complained", "2024-05-01")])
    selection = select(project, "messy", skip_invalid=True)
    keys = [r.key for r in selection.recipients or []]
    assert "ana.petrovic@example.org" not in keys
    assert "suppressed.person@example.com" not in keys
    assert selection.suppressed == 2


def test_a_reader_who_unsubscribes_after_the_check_is_not_sent_to(project: Project) -> None:
    selection = select(project, "messy", skip_invalid=True)
    add_suppressions(project, [("VLORA.krasniqi@example.org", "unsubscribed (link)", "")])
    keys = [r.key for r in selection.recipients or []]
    assert "vlora.krasniqi@example.org" not in keys
    assert len(keys) == selection.count - 1


def test_adding_is_idempotent_and_case_insensitive(project: Project) -> None:
    entries = [("New@Example.org", "unsubscribed (link)", "2024-05-01")]
    assert add_suppressions(project, entries) == 1
    assert add_suppressions(project, entries) == 0
    assert add_suppressions(project, [("new@example.org", "again", "2024-05-02")]) == 0
    assert file_rows(project)[-1] == ["New@Example.org", "unsubscribed (link)", "2024-05-01"]
    assert len(file_rows(project)) == 3


def test_duplicates_within_one_call_are_added_once(project: Project) -> None:
    added = add_suppressions(
        project, [("x@example.org", "a", "2024-01-01"), ("X@example.org", "b", "")]
    )
    assert added == 1
    assert [row[0] for row in file_rows(project)].count("x@example.org") == 1


def test_a_missing_file_is_created_with_its_header(project: Project) -> None:
    suppressions_path(project).unlink()
    assert load_suppressed(project) == set()
    add_suppressions(project, [("a@example.org", "bounced", "")])
    header, row = file_rows(project)
    assert header == ["email", "reason", "date"]
    assert row[0] == "a@example.org"
    assert len(row[2]) == 10  # an empty date becomes today's, YYYY-MM-DD


def test_a_reason_with_commas_and_quotes_is_quoted(project: Project) -> None:
    add_suppressions(project, [("q@example.org", 'said "stop", twice', "2024-01-01")])
    assert file_rows(project)[-1] == ["q@example.org", 'said "stop", twice', "2024-01-01"]


def test_a_reason_with_a_line_break_stays_one_row(project: Project) -> None:
    add_suppressions(project, [("r@example.org", "first\rsecond", "2024-01-01")])
    add_suppressions(project, [("s@example.org", "x", "2024-01-01")])
    assert load_suppressed(project) == {
        "suppressed.person@example.com",
        "r@example.org",
        "s@example.org",
    }
    assert list(suppression_rows(project))[1] == ("r@example.org", "first\rsecond", "2024-01-01")


def test_crlf_files_stay_crlf(project: Project) -> None:
    path = suppressions_path(project)
    path.write_bytes(b"email,reason,date\r\nold@example.org,bounced,2024-01-01")  # no final newline
    add_suppressions(project, [("new@example.org", "bounced", "2024-01-02")])
    assert path.read_bytes() == (
        b"email,reason,date\r\nold@example.org,bounced,2024-01-01\r\n"
        b"new@example.org,bounced,2024-01-02\r\n"
    )


def test_an_unreadable_suppression_file_refuses_rather_than_guesses(project: Project) -> None:
    suppressions_path(project).write_text('email,reason\n"broken,x\n', encoding="utf-8")
    with pytest.raises(InvalidInput):
        load_suppressed(project)


def test_fifty_threads_lose_nothing_and_double_nothing(project: Project) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def unsubscribe(n: int) -> None:
        try:
            own = (f"reader{n}@example.org", "unsubscribed (link)", "2024-06-01")
            shared = (f"SHARED{n % 5}@example.org", "bounced", "2024-06-01")
            results.append(add_suppressions(project, [own, shared]))
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=unsubscribe, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    rows = file_rows(project)
    assert rows[0] == ["email", "reason", "date"]
    keys = [row[0].lower() for row in rows[1:]]
    assert all(len(row) == 3 for row in rows)
    assert len(keys) == len(set(keys)) == 1 + 50 + 5
    assert sum(results) == 55


WRITER = """\
import sys
from pathlib import Path
from composer.audience.suppressions import add_suppressions
from composer.project import load_project

project = load_project(Path(sys.argv[1]))
worker = int(sys.argv[2])
added = 0
for n in range(25):
    added += add_suppressions(project, [
        (f"w{worker}-{n}@example.org", "bounced", "2024-06-01"),
        (f"common{n}@example.org", "complained", "2024-06-01"),
    ])
print(added)
"""


def test_several_processes_lose_nothing_and_double_nothing(project: Project) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(project.root), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for w in range(4)
    ]
    added = 0
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        added += int(out)
    rows = file_rows(project)
    keys = [row[0].lower() for row in rows[1:]]
    assert all(len(row) == 3 for row in rows)
    assert len(keys) == len(set(keys)) == 1 + 4 * 25 + 25
    assert added == 4 * 25 + 25
    leftovers = [p.name for p in project.subscribers_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
