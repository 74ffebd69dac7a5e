"""Benchmark: count a segment of a 1,000,000-row list, against Python's csv merely reading it.

    python benchmarks/subscribers.py [--rows N] [--runs K] [--regenerate]

Generates a project with subscribers/big.csv under benchmarks/.data/ (git-ignored; reused
when it already has the asked-for size), then times, each as a separate process:

  * `python -c "for row in csv.reader(f): pass"` over the same file (the floor), and
  * `compose --project DIR subscribers count --list big --segment SEGMENT`.

It prints the best time of each, their ratio and the peak resident memory of `compose`
(from `/usr/bin/time -v` when present, else the children's ru_maxrss). Goals: at most 3x
the csv read and under 200 MB. The exit status is 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data"
PROJECT = DATA / "project"
SEGMENT = "western-balkans-law-enforcement"
GOAL_RATIO = 3.0
GOAL_MB = 200.0

COUNTRIES = [
    "Albania", "Bosnia and Herzegovina", "Kosovo under UNSCR 1244", "Montenegro",
    "North Macedonia", "Serbia", "Moldova", "Croatia", "Slovenia", "Bulgaria", "Romania",
    "Greece", "Austria",
]  # fmt: skip
SECTORS = ["government", "police", "prosecution", "civil-society", "academia", "international"]
ORGANIZATIONS = [
    "Ministry of Interior", "Ministry of Justice", "Ministry of Security", "Border Police",
    "Public Prosecutor's Office", "Customs Administration", "Youth Prevention Network",
    "Institute of Criminology", "Regional Cooperation Office",
]  # fmt: skip
INTERESTS = ["I", "II", "III", "IV", "I;II", "I;III", "II;IV", "III;IV", "I;II;III;IV", ""]
FIRST = ["ana", "marko", "elira", "arben", "amra", "emir", "jovana", "stefan", "marija", "bojan"]
LAST = ["petrovic", "hoxha", "hadzic", "vukovic", "stojanovski", "krasniqi", "horvat", "popescu"]


def generate(rows: int, seed: int = 36) -> Path:
    """Write a project whose big.csv has `rows` data rows: a few bad, duplicate, unsubscribed."""
    rng = random.Random(seed)
    subscribers = PROJECT / "subscribers"
    subscribers.mkdir(parents=True, exist_ok=True)
    domains = [f"{kind}{n}.example.org" for n in range(150) for kind in ("gov", "ngo")]
    suppressed = []
    remembered = ""
    path = subscribers / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "email",
                "name",
                "country",
                "organization",
                "sector",
                "language",
                "interests",
                "status",
            ]
        )
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}.{n}@{rng.choice(domains)}"
            if n % 1000 == 499:
                remembered = email
            elif n % 1000 == 999:  # a mixed-case repeat of an earlier reader: a warning
                email = remembered.upper()
            if n % 100_000 == 50_000:
                email = f"{first} {last}@broken"  # an invalid address: a row error
            if n % 997 == 0:
                suppressed.append(email)
            status = "unsubscribed" if n % 37 == 0 else ""
            writer.writerow(
                [
                    email,
                    f"{first.title()} {last.title()}",
                    rng.choice(COUNTRIES),
                    rng.choice(ORGANIZATIONS),
                    rng.choice(SECTORS),
                    "en",
                    rng.choice(INTERESTS),
                    status,
                ]
            )
    with (subscribers / "suppressions.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "reason", "date"])
        writer.writerows((email, "bounced", "2024-01-01") for email in suppressed)
    (DATA / "rows.txt").write_text(str(rows))
    return path


def timed(command: list[str]) -> tuple[float, float | None, str]:
    """Run `command`; return wall seconds, peak RSS in MB (if /usr/bin/time is there), stdout."""
    gnu_time = Path("/usr/bin/time")
    wrapped = [str(gnu_time), "-v", *command] if gnu_time.exists() else command
    started = time.perf_counter()
    proc = subprocess.run(wrapped, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return elapsed, (int(peak.group(1)) / 1024 if peak else None), proc.stdout


def main() -> int:
    """Generate (if needed), time both readers, print the figures; 1 if a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs each")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()

    big = PROJECT / "subscribers" / "big.csv"
    marker = DATA / "rows.txt"
    if args.regenerate or not marker.exists() or marker.read_text() != str(args.rows):
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(args.rows)
    # The masthead and segments follow the repository's, even for a list generated earlier.
    shutil.copy(REPO / "newsletter.yaml", PROJECT / "newsletter.yaml")
    shutil.copy(REPO / "subscribers" / "segments.yaml", PROJECT / "subscribers" / "segments.yaml")
    size_mb = big.stat().st_size / 1e6
    read_csv = (
        "import csv, sys\n"
        "with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:\n"
        "    for _ in csv.reader(f): pass\n"
    )
    baseline = [sys.executable, "-c", read_csv, str(big)]
    compose = [
        sys.executable, "-m", "composer", "--project", str(PROJECT),
        "subscribers", "count", "--list", "big", "--segment", SEGMENT,
    ]  # fmt: skip
    csv_times, compose_times, peaks = [], [], []
    for _ in range(args.runs):
        csv_times.append(timed(baseline)[0])
        seconds, peak, out = timed(compose)
        compose_times.append(seconds)
        peaks.append(peak)
    *summary, counted = out.strip().splitlines()
    peak_mb = max(p for p in peaks if p is not None) if any(peaks) else None
    if peak_mb is None:  # no /usr/bin/time: the largest child this process has waited for
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    ratio = min(compose_times) / min(csv_times)
    print(f"list: {args.rows:,} rows, {size_mb:.0f} MB; segment {SEGMENT}: {counted} recipients")
    print(f"  ({' '.join(summary)})")
    print(f"csv.reader only : {min(csv_times):.2f} s (best of {args.runs})")
    print(f"compose count   : {min(compose_times):.2f} s (best of {args.runs})")
    print(f"ratio           : {ratio:.2f}x  (goal <= {GOAL_RATIO:.0f}x)")
    print(f"peak RSS        : {peak_mb:.0f} MB  (goal < {GOAL_MB:.0f} MB)")
    return 0 if ratio <= GOAL_RATIO and peak_mb < GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
