"""suppressions.csv under a burst of unsubscribes: appended to, never rewritten, read once.

An addition is one locked append whatever the file's size, and "already suppressed?" is
answered from an index that follows the file: our own appends, another process's appends
(read from where it stopped) and a rewrite that removed lines.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from composer.atomic import write_atomically
from composer.audience import suppressions as suppressions_module
from composer.audience.suppressions import (
    add_suppressions,
    is_suppressed,
    load_suppressed,
    suppression_rows,
    suppressions_path,
)
from composer.project import Project, load_project
from tests.conftest import copy_project

FIXTURE = Path(__file__).parent / "fixtures" / "audience" / "project"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = copy_project(FIXTURE, tmp_path)
    monkeypatch.chdir(root)
    return load_project(root)


def fill(project: Project, existing: int) -> bytes:
    """Replace suppressions.csv by `existing` rows; return its bytes."""
    path = suppressions_path(project)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "reason", "date"])
        writer.writerows(
            (f"gone.{n}@example.org", "bounced", "2024-01-01") for n in range(existing)
        )
    return path.read_bytes()


def assert_whole(project: Project, wanted: list[str], existing: int) -> None:
    """Every line of the file is one whole row, and each of `wanted` is there exactly once."""
    data = suppressions_path(project).read_bytes()
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == "email,reason,date"
    assert all(len(row) == 3 for row in csv.reader(lines))  # no torn or glued line
    emails = [line.split(",", 1)[0].lower() for line in lines[1:]]
    assert len(emails) == existing + len(wanted)
    counts = {e: 0 for e in wanted}
    for email in emails:
        if email in counts:
            counts[email] += 1
    assert set(counts.values()) == {1}


def test_an_addition_appends_and_never_rewrites(project: Project) -> None:
    path = suppressions_path(project)
    before = path.read_bytes()
    inode = path.stat().st_ino
    assert add_suppressions(project, [("new@example.org", "unsubscribed (link)", "2024-06-01")])
    assert path.stat().st_ino == inode  # the same file, not a replacement
    assert path.read_bytes() == before + b"new@example.org,unsubscribed (link),2024-06-01\n"


def test_knowing_who_is_suppressed_reads_the_file_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(project, 2_000)
    assert is_suppressed(project, "GONE.7@example.org")
    reads: list[str] = []

    def no_full_read(*args: object, **kwargs: object) -> object:
        reads.append("read")
        raise AssertionError("suppressions.csv was read whole again")

    monkeypatch.setattr(suppressions_module, "open_table", no_full_read)
    for n in range(20):
        assert add_suppressions(project, [(f"new{n}@example.org", "bounced", "2024-06-01")]) == 1
    assert add_suppressions(project, [("gone.9@example.org", "again", "")]) == 0
    assert is_suppressed(project, "New3@Example.org")
    assert len(load_suppressed(project)) == 2_000 + 20
    assert reads == []


@pytest.mark.parametrize("existing", [200, 200_000])
def test_many_threads_append_each_address_exactly_once(project: Project, existing: int) -> None:
    fill(project, existing)
    errors: list[BaseException] = []
    added: list[int] = []

    def unsubscribe(n: int) -> None:
        try:
            own = (f"reader{n}@example.org", "unsubscribed (link)", "2024-06-01")
            shared = (f"SHARED{n % 7}@example.org", "bounced", "2024-06-01")
            old = (f"gone.{n}@example.org", "bounced", "2024-06-01")  # already there
            added.append(add_suppressions(project, [own, shared, old]))
        except BaseException as exc:  # a thread's exception is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=unsubscribe, args=(n,)) for n in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(added) == 60 + 7
    wanted = [f"reader{n}@example.org" for n in range(60)] + [
        f"shared{n}@example.org" for n in range(7)
    ]
    assert_whole(project, wanted, existing)


WRITER = """\
import sys
from pathlib import Path
from composer.audience.suppressions import add_suppressions, load_suppressed
from composer.project import load_project

project = load_project(Path(sys.argv[1]))
worker = int(sys.argv[2])
added = 0
for n in range(30):
    added += add_suppressions(project, [
        (f"w{worker}-{n}@example.org", "bounced", "2024-06-01"),
        (f"common{n}@example.org", "complained", "2024-06-01"),
    ])
    assert f"w{worker}-{n}@example.org" in load_suppressed(project)
print(added)
"""


@pytest.mark.parametrize("existing", [200, 200_000])
def test_processes_and_threads_at_once_append_each_address_exactly_once(
    project: Project, existing: int
) -> None:
    fill(project, existing)
    assert not is_suppressed(project, "common0@example.org")  # this process's index is warm
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(project.root), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for w in range(3)
    ]
    errors: list[BaseException] = []
    ours: list[int] = []

    def unsubscribe(n: int) -> None:
        try:
            entries = [(f"t{n}@example.org", "unsubscribed (link)", "2024-06-01")]
            ours.append(add_suppressions(project, [*entries, (f"common{n}@example.org", "x", "")]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=unsubscribe, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    theirs = 0
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        theirs += int(out)
    assert not errors
    wanted = [f"w{w}-{n}@example.org" for w in range(3) for n in range(30)]
    wanted += [f"t{n}@example.org" for n in range(30)]
    wanted += [f"common{n}@example.org" for n in range(30)]
    assert sum(ours) + theirs == len(wanted)
    assert_whole(project, wanted, existing)
    # This process's index took in the other processes' lines without reading it all again.
    assert set(wanted) <= load_suppressed(project)
    assert [p.name for p in project.subscribers_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_another_writers_append_is_seen_and_a_rewrite_is_read_again(project: Project) -> None:
    fill(project, 1_000)
    path = suppressions_path(project)
    assert not is_suppressed(project, "late@example.org")
    with path.open("a", encoding="utf-8", newline="") as out:  # as another process would
        out.write("late@example.org,bounced,2024-06-01\n")
    assert is_suppressed(project, "late@example.org")
    # A removal rewrites the file whole (a new inode): what it no longer holds is not suppressed.
    rows = [row for row in suppression_rows(project) if row[0] != "gone.5@example.org"]
    lines = ["email,reason,date\n", *(",".join(row) + "\n" for row in rows)]
    write_atomically(path, lines)
    assert not is_suppressed(project, "gone.5@example.org")
    assert is_suppressed(project, "gone.6@example.org")
    # So is an edit in place that keeps the size (the bytes where the index stopped differ).
    data = path.read_bytes().replace(b"late@example.org", b"lat2@example.org")
    with path.open("r+b") as out:
        out.write(data)
    assert not is_suppressed(project, "late@example.org")
    assert is_suppressed(project, "lat2@example.org")


def test_a_last_line_without_its_end_counts_and_is_ended_before_an_append(
    project: Project,
) -> None:
    path = suppressions_path(project)
    path.write_bytes(b"\xef\xbb\xbfEmail,Reason,Date\nold@example.org,bounced,2024-01-01")
    assert is_suppressed(project, "OLD@example.org")
    add_suppressions(project, [("new@example.org", "bounced", "2024-01-02")])
    assert path.read_bytes() == (
        b"\xef\xbb\xbfEmail,Reason,Date\nold@example.org,bounced,2024-01-01\n"
        b"new@example.org,bounced,2024-01-02\n"
    )
    assert load_suppressed(project) == {"old@example.org", "new@example.org"}


def test_an_empty_file_gets_its_header(project: Project) -> None:
    path = suppressions_path(project)
    path.write_bytes(b"")
    assert load_suppressed(project) == set()
    add_suppressions(project, [("a@example.org", "bounced", "2024-01-01")])
    assert path.read_bytes() == b"email,reason,date\na@example.org,bounced,2024-01-01\n"
    assert os.path.getsize(path) > 0
