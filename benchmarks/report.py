"""Benchmark: `compose report` on a delivery log of 1,000,000 deliveries and 3,000,000 events.

    python benchmarks/report.py [--deliveries N] [--events M] [--runs K]

Makes (once, cached in benchmarks/.data/report/, git-ignored) a project whose delivery log holds
one issue `x` sent to N readers over two lists (70/30) and whose event store holds M events of
that issue spread over 72 hours (delivered, deferred, opens, clicks on 40 links, soft and hard
bounces, complaints, unsubscribes), plus a small twin (1/100 of each) to show memory is flat.

Then, K times each, interleaved: `compose report`, `--json` and `--html OUT` as child processes
(wall time and peak RSS from wait4), beside the floor: the same interpreter starting, importing
composer and doing nothing (`python -c "import composer.cli"`). Prints every run and the medians.
Goal: `compose report` under 2 s at 1,000,000 + 3,000,000; memory flat (the same peak RSS at
both sizes, within a few MB). It prints figures and never fails on a missed goal.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data" / "report"
GOAL_SECONDS = 2.0
NEWSLETTER_YAML = """\
# A minimal project for benchmarks/report.py.
name: Report Bulletin
language: en
archive_url: https://news.example.org/
postal_address: "1 Test Street, 1000 Testville"
from: {name: Report Bulletin, email: bulletin@example.org}
"""
# (kind, share of the events in per mille)
MIX = [("delivered", 317), ("deferred", 100), ("open", 300), ("click", 200),
       ("soft_bounce", 30), ("bounce", 20), ("spamreport", 3), ("unsubscribe", 30)]  # fmt: skip


def make_project(root: Path, deliveries: int, events: int) -> Path:
    """The project, made once per size."""
    done = root / "done"
    if done.exists():
        count_events(root)
        return root
    if root.exists():
        shutil.rmtree(root)
    (root / "subscribers").mkdir(parents=True)
    (root / "issues").mkdir()
    (root / ".compose").mkdir()
    (root / "newsletter.yaml").write_text(NEWSLETTER_YAML, encoding="utf-8")
    from composer.delivery.log import DeliveryLog
    from composer.events.store import EventStore

    started = time.time() - 72 * 3600
    DeliveryLog(root / ".compose" / "delivery.sqlite").close()
    db = sqlite3.connect(root / ".compose" / "delivery.sqlite")
    for name, share in (("main", 0.7), ("partners", 0.3)):
        db.execute(
            "INSERT INTO sends (issue, list, subject, mode, content_sha, transport, segment, "
            "started_at, updated_at, source) VALUES ('x', ?, 'Vol. 37', 'full', '0', 'sendgrid', "
            "NULL, ?, ?, 'issues/x.yaml')",
            (name, started, started),
        )
    db.executemany(
        "INSERT INTO deliveries (issue, list, email, state, attempts, last_error, transport, "
        "created_at, updated_at, sent_at) VALUES ('x', ?, ?, ?, 1, ?, 'sendgrid', ?, ?, ?)",
        _deliveries(deliveries, started),
    )
    db.commit()
    db.close()
    EventStore(root / ".compose" / "events.sqlite").close()
    db = sqlite3.connect(root / ".compose" / "events.sqlite")
    db.execute("PRAGMA journal_mode=WAL")
    db.executemany(
        "INSERT INTO events (id, issue, list, email, kind, at, reason, url, source) "
        "VALUES (?, 'x', ?, ?, ?, ?, ?, ?, 'sendgrid')",
        _events(events, deliveries, started),
    )
    db.commit()
    db.close()
    done.touch()
    count_events(root)
    return root


def count_events(root: Path) -> None:
    """The per-hour counts and per-link clicks the store keeps as events are applied
    (events/store.py `insert`), made here in one pass since the events went in by SQL."""
    marker = root / "counted"
    if marker.exists():
        return
    from composer.events.store import _SCHEMA

    db = sqlite3.connect(root / ".compose" / "events.sqlite")
    db.executescript(_SCHEMA)
    db.execute("DELETE FROM counts")
    db.execute("DELETE FROM link_clicks")
    db.execute(
        "INSERT INTO counts (issue, kind, list, hour, n) SELECT issue, kind, list, "
        "CAST(at / 3600 AS INTEGER) * 3600, count(*) FROM events GROUP BY 1, 2, 3, 4"
    )
    db.execute(
        "INSERT INTO link_clicks (issue, url, total, scanner) SELECT issue, url, count(*), 0 "
        "FROM events WHERE kind = 'click' GROUP BY 1, 2"
    )
    db.commit()
    db.close()
    marker.touch()


def _deliveries(n: int, started: float) -> Iterator[tuple[object, ...]]:
    for i in range(n):
        name = "main" if i % 10 < 7 else "partners"
        state, error = "sent", None
        if i % 500 == 0:
            state, error = "failed", "SendGrid 500: Internal Server Error"
        elif i % 997 == 0:
            state, error = "refused", "550 5.1.1 user unknown"
        at = started + i * 0.002
        yield (name, f"reader{i:07d}@example.org", state, error, at, at, at)


def _events(n: int, readers: int, started: float) -> Iterator[tuple[object, ...]]:
    rng = random.Random(37)
    kinds = [kind for kind, share in MIX for _ in range(share)]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        r = rng.randrange(readers)
        name = "main" if r % 10 < 7 else "partners"
        email = "" if kind in ("open", "click") else f"reader{r:07d}@example.org"
        url = f"https://www.example.org/story/{rng.randrange(40)}" if kind == "click" else ""
        reason = "421 4.2.2 mailbox full" if kind == "soft_bounce" else ""
        at = started + rng.random() * 72 * 3600
        yield (f"ev{i}", name, email, kind, at, reason, url)


def timed(command: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of a child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(
            f"{' '.join(command)} failed: {child.stderr.read().decode() if child.stderr else ''}"
        )
    return wall, usage.ru_maxrss // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = {
        "big": (args.deliveries, args.events),
        "small": (args.deliveries // 100, args.events // 100),
    }
    projects = {}
    for label, (deliveries, events) in sizes.items():
        started = time.perf_counter()
        root = DATA / f"{label}-{deliveries}-{events}"
        projects[label] = make_project(root, deliveries, events)
        print(f"{label}: {deliveries:,} deliveries, {events:,} events "
              f"(ready in {time.perf_counter() - started:.1f} s)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f}")
    py = sys.executable
    contenders = {"floor (import only)": lambda root: [py, "-c", "import composer.cli"]}
    for flag in ("", "--json", "--html"):

        def command(root: Path, flag: str = flag) -> list[str]:
            extra = {"": [], "--json": ["--json"], "--html": ["--html", str(root / "r.html")]}
            return [py, "-m", "composer", "--project", str(root), "report",
                    str(root / "issues" / "x.yaml"), *extra[flag]]  # fmt: skip

        contenders[f"compose report {flag}".strip()] = command
    results: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for run in range(args.runs):
        for name, make in contenders.items():
            for label, root in projects.items():
                results.setdefault((name, label), []).append(timed(make(root)))
    for name in contenders:
        line = [f"{name:<28}"]
        for label in projects:
            runs = results[(name, label)]
            wall = statistics.median(w for w, _ in runs)
            rss = max(m for _, m in runs)
            line.append(f"{label}: {wall:5.2f} s, peak {rss:4d} MB")
        print("  ".join(line))
    big = statistics.median(w for w, _ in results[("compose report", "big")])
    verdict = "met" if big < GOAL_SECONDS else "missed"
    print(f"median of {args.runs}: compose report {big:.2f} s at {args.deliveries:,} deliveries + "
          f"{args.events:,} events; goal < {GOAL_SECONDS:.0f} s: {verdict}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
