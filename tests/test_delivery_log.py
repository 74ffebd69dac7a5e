"""The delivery log's states and the sliding-window rate cap."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from composer.delivery.log import FAILED, PENDING, SENT, DeliveryLog, Outcome, SendRecord
from composer.delivery.ratelimit import RateLimiter


def test_log_is_wal_and_tracks_each_state(tmp_path: Path) -> None:
    path = tmp_path / "delivery.sqlite"
    with DeliveryLog(path) as log:
        log.enqueue("x", "main", ["a@x.org", "b@x.org", "c@x.org"], "smtp")
        log.mark_sending("x", [("a@x.org", "main"), ("b@x.org", "main")])
        log.record(
            "x",
            [Outcome("a@x.org", SENT, provider_id="250 Q1"), Outcome("b@x.org", FAILED, "550 no")],
            then_sending=[("c@x.org", "main")],
        )
        assert log.counts("x", "main") == {
            "pending": 0,
            "sending": 1,
            "sent": 1,
            "failed": 1,
            "refused": 0,
            "unknown": 0,
        }
        assert list(log.failures("x", "main")) == [("b@x.org", "550 no", 1)]
        row = log.row("x", "a@x.org")
        assert row["provider_id"] == "250 Q1" and row["sent_at"] and row["attempts"] == 1
        # A re-enqueue never resets a row; a sent row is never marked sending again.
        log.enqueue("x", "main", ["a@x.org"], "smtp")
        log.mark_sending("x", [("a@x.org", "main")])
        assert log.states("x", ["a@x.org", "zz@x.org"]) == {"a@x.org": SENT}
        log.record("x", [Outcome("c@x.org", PENDING, "interrupted")])
        assert log.counts("x", "main")["pending"] == 1
        assert log.lists("x") == ["main"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_begin_send_remembers_the_first_run(tmp_path: Path) -> None:
    with DeliveryLog(tmp_path / "d.sqlite") as log:
        first = SendRecord("Subject", "full", "abc", "smtp", None)
        assert log.begin_send("x", "main", first) is None
        assert (
            log.begin_send("x", "main", SendRecord("S2", "digest", "def", "smtp", "seg")) == first
        )
        assert log.segment("x", "main") == "seg"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_second_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=3, clock=clock)
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5
    assert not limiter.try_acquire()
    clock.now += 0.5
    assert limiter.try_acquire(3) and not limiter.try_acquire()
    assert limiter.largest_batch == 3
    with pytest.raises(ValueError):
        limiter.acquire(4)


def test_per_hour_window_slides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=10, clock=clock)
    assert limiter.try_acquire(6)
    clock.now += 1800
    assert limiter.try_acquire(4) and not limiter.try_acquire()
    clock.now += 1800  # the first 6 leave the window
    assert limiter.try_acquire(6) and not limiter.try_acquire()


def test_fractional_rate_and_no_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=0.5, clock=clock)
    assert limiter.try_acquire() and not limiter.try_acquire()
    clock.now += 2
    assert limiter.try_acquire()
    free = RateLimiter()
    assert not free.active and free.largest_batch is None and free.acquire(10**6)


def test_acquire_waits_and_stops() -> None:
    limiter = RateLimiter(per_second=0.01)
    assert limiter.acquire()
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    assert limiter.acquire(1, stop) is False  # would wait 100 s; the stop ends it


_WORKERS = """
import os, sys, threading
from pathlib import Path
from composer.delivery.log import DeliveryLog, Outcome

log = DeliveryLog(Path(sys.argv[1]))
emails = [[f"w{w}-{n}@x.org" for n in range(2000)] for w in range(4)]
for mine in emails:
    log.enqueue("x", "main", mine, "smtp")
    log.mark_sending("x", [(mine[0], "main")])
print("ready", flush=True)

def worker(w):
    mine = emails[w]
    for n in range(1999):
        log.record("x", [Outcome(mine[n], "sent")], then_sending=[(mine[n + 1], "main")])
        os.write(1, f"{w} {n}\\n".encode())  # only once record() returned; one write a line

threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_an_outcome_survives_a_kill_once_record_returns_and_one_mark_a_worker_is_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "delivery.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _WORKERS, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    returned: list[tuple[int, int]] = []
    for line in child.stdout:
        if line.startswith("ready"):
            continue
        w, n = map(int, line.split())
        returned.append((w, n))
        if len(returned) >= 1500:
            break
    child.kill()  # SIGKILL: no clean-up
    child.wait()
    with DeliveryLog(path) as log:
        states = log.states("x", [f"w{w}-{n}@x.org" for w in range(4) for n in range(2000)])
    assert all(states[f"w{w}-{n}@x.org"] == SENT for w, n in returned)
    for w in range(4):
        open_marks = [e for e, s in states.items() if e.startswith(f"w{w}-") and s == "sending"]
        assert len(open_marks) == 1  # the window: one message a worker


def test_records_from_many_workers_are_committed_together_before_each_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "delivery.sqlite"
    workers, each = 8, 200
    emails = [[f"w{w}-{n}@x.org" for n in range(each + 1)] for w in range(workers)]
    with DeliveryLog(path) as log:
        for mine in emails:
            log.enqueue("x", "main", mine, "smtp")
            log.mark_sending("x", [(mine[0], "main")])
        commits: list[int] = []
        real_commit = log._commit

        def counting_commit(*steps):
            commits.append(len(steps[0][1]))  # outcomes in this commit
            real_commit(*steps)

        monkeypatch.setattr(log, "_commit", counting_commit)
        errors: list[str] = []

        def worker(mine: list[str]) -> None:
            reader = sqlite3.connect(path)
            for n in range(each):
                log.record("x", [Outcome(mine[n], SENT)], then_sending=[(mine[n + 1], "main")])
                # Committed when record() returns: another connection sees both rows, and this
                # worker has exactly one message marked sending (the window of one connection).
                got = dict(
                    reader.execute(
                        "SELECT email, state FROM deliveries WHERE email IN (?, ?)",
                        (mine[n], mine[n + 1]),
                    ).fetchall()
                )
                if got != {mine[n]: SENT, mine[n + 1]: "sending"}:
                    errors.append(f"{mine[n]}: {got}")
            reader.close()

        threads = [threading.Thread(target=worker, args=(mine,)) for mine in emails]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors[:3]
        assert log.counts("x", "main")["sent"] == workers * each
        assert log.counts("x", "main")["sending"] == workers
        assert len(commits) <= workers * each  # never more than one commit a call
        assert sum(commits) == workers * each  # each call in exactly one commit


def test_a_group_is_one_transaction_and_its_failure_reaches_every_caller_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DeliveryLog(tmp_path / "delivery.sqlite") as log:
        log.enqueue("x", "main", ["a@x.org", "b@x.org"], "smtp")
        commits: list[int] = []

        def failing_commit(*steps):
            commits.append(sum(len(rows) for _, rows in steps))
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(log, "_commit", failing_commit)
        raised: list[BaseException] = []

        def call(email: str) -> None:
            try:
                log.record("x", [Outcome(email, SENT)])
            except BaseException as exc:
                raised.append(exc)

        threads = [threading.Thread(target=call, args=(e,)) for e in ("a@x.org", "b@x.org")]
        with log._lock:  # a commit in progress: both calls queue behind it
            for thread in threads:
                thread.start()
            while len(log._waiting) < 2:
                time.sleep(0.001)
        for thread in threads:
            thread.join()
        assert commits == [2]  # one transaction for both
        assert len(raised) == 2
        monkeypatch.undo()
        assert log.states("x", ["a@x.org", "b@x.org"]) == {
            "a@x.org": PENDING,
            "b@x.org": PENDING,
        }
