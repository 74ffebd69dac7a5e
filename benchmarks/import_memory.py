"""Benchmark: peak memory and wall time of `compose subscribers import` of a big CSV.

    python benchmarks/import_memory.py [--python PATH] [--rows N] [--runs K] [--regenerate]

Generates under benchmarks/.data/import_memory/ (git-ignored; reused when it has the asked-for
size) a CSV of N rows (default 1,000,000) with the columns email, name, country, organization
and interests (example.org addresses; every 10,000th row repeats an earlier address in upper
case, so a few duplicates warn), and a project whose newsletter.yaml has pillars I to IV. Each
run deletes the target list and runs, as a fresh process,

    PATH -m composer --project DIR subscribers import FILE --list imported

under `/usr/bin/time -v` when present (else the children's ru_maxrss, which is the largest
child so far), and records its wall time and peak resident memory.

`--python` names the interpreter whose `composer` is measured (default: this one), so the same
script measures old and new code. It prints each run and the medians. Goal: peak < 200 MB. It
prints figures and never fails on a missed goal.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data" / "import_memory"
LIST_NAME = "imported"
GOAL_MB = 200.0
NEWSLETTER_YAML = """\
# A minimal project for benchmarks/import_memory.py: the pillars give `interests` meaning.
name: Import Bulletin
organization: Composer Benchmarks
language: en
website: https://www.example.org/
archive_url: https://news.example.org/archive/
postal_address: "1 Test Street, 1000 Testville"
from: {name: Import Bulletin, email: bulletin@example.org}
pillars:
  I:   {title: Law enforcement, color: "#1f6fb2"}
  II:  {title: Organized crime, color: "#8a3b8f"}
  III: {title: Drug use prevention, color: "#2e7d4f"}
  IV:  {title: Research, color: "#a0522d"}
transport:
  kind: outbox
"""
COUNTRIES = [
    "Albania", "Bosnia and Herzegovina", "Kosovo under UNSCR 1244", "Montenegro",
    "North Macedonia", "Serbia", "Moldova", "Croatia", "Slovenia", "Bulgaria", "Romania",
]  # fmt: skip
ORGANIZATIONS = [
    "Ministry of Interior", "Ministry of Justice", "Border Police", "Customs Administration",
    "Public Prosecutor's Office", "Youth Prevention Network", "Institute of Criminology",
]  # fmt: skip
INTERESTS = ["I", "II", "III", "IV", "I;II", "I;III", "II;IV", "III;IV", "I;II;III;IV", ""]
FIRST = ["ana", "marko", "elira", "arben", "amra", "emir", "jovana", "stefan", "marija", "bojan"]
LAST = ["petrovic", "hoxha", "hadzic", "vukovic", "stojanovski", "krasniqi", "horvat", "popescu"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` data rows to `path`; every 10,000th repeats an earlier address."""
    rng = random.Random(seed)
    remembered = ""
    staging = path.with_suffix(".partial")
    with staging.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "name", "country", "organization", "interests"])
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}.{n}@example.org"
            if n % 10_000 == 4_999:
                remembered = email
            elif n % 10_000 == 9_999:
                email = remembered.upper()
            writer.writerow(
                [
                    email,
                    f"{first.title()} {last.title()}",
                    rng.choice(COUNTRIES),
                    rng.choice(ORGANIZATIONS),
                    rng.choice(INTERESTS),
                ]
            )
    staging.replace(path)


def make_project() -> Path:
    """The (re)written project folder, with no lists yet."""
    project = DATA / "project"
    (project / "subscribers").mkdir(parents=True, exist_ok=True)
    (project / "newsletter.yaml").write_text(NEWSLETTER_YAML, encoding="utf-8")
    return project


def timed(command: list[str], cwd: Path) -> tuple[float, float | None, int, str]:
    """Run `command`: wall seconds, peak RSS in MB (from /usr/bin/time), exit status, output."""
    gnu_time = Path("/usr/bin/time")
    wrapped = [str(gnu_time), "-v", *command] if gnu_time.exists() else command
    started = time.perf_counter()
    proc = subprocess.run(
        wrapped, cwd=cwd, capture_output=True, text=True, check=False, timeout=1800
    )
    elapsed = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    output = (proc.stdout + proc.stderr).strip()
    return elapsed, (int(peak.group(1)) / 1024 if peak else None), proc.returncode, output


def summary(output: str) -> str:
    """The lines of compose's output that are not /usr/bin/time's report, shortened."""
    lines = [line for line in output.splitlines() if not line.startswith("\t")]
    lines = [line for line in lines if not line.startswith("Command being timed")]
    if len(lines) > 6:
        lines = [*lines[:3], f"... ({len(lines) - 6} more lines)", *lines[-3:]]
    return "\n".join(f"    {line[:160]}" for line in lines)


def main() -> int:
    """Generate (if needed), import K times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter under test")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the CSV")
    parser.add_argument("--runs", type=int, default=3, help="imports, each a fresh process")
    parser.add_argument("--regenerate", action="store_true", help="write the CSV again")
    args = parser.parse_args()

    python = shutil.which(args.python) or args.python
    DATA.mkdir(parents=True, exist_ok=True)
    source = DATA / f"contacts-{args.rows}.csv"
    if args.regenerate or not source.exists():
        print(f"generating {args.rows:,} rows ...", flush=True)
        generate(source, args.rows)
    project = make_project()
    target = project / "subscribers" / f"{LIST_NAME}.csv"
    command = [
        python, "-m", "composer", "--project", str(project),
        "subscribers", "import", str(source), "--list", LIST_NAME,
    ]  # fmt: skip
    print(f"interpreter: {python}")
    print(f"importing {args.rows:,} rows ({source.stat().st_size / 1e6:.0f} MB) into a new list")
    seconds, peaks = [], []
    for run in range(1, args.runs + 1):
        target.unlink(missing_ok=True)
        elapsed, peak, status, output = timed(command, cwd=project)
        if peak is None:  # no /usr/bin/time: the largest child this process has waited for
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        seconds.append(elapsed)
        peaks.append(peak)
        written = sum(1 for _ in target.open(encoding="utf-8")) - 1 if target.exists() else 0
        print(
            f"run {run}: exit {status}, {elapsed:.2f} s, peak RSS {peak:.0f} MB, "
            f"list has {written:,} rows; load average {os.getloadavg()[0]:.1f}"
        )
        if run == 1 or status != 0:
            print(summary(output))
    peak_mb = statistics.median(peaks)
    print(
        f"median of {args.runs}: {statistics.median(seconds):.2f} s, peak RSS {peak_mb:.0f} MB "
        f"(max {max(peaks):.0f} MB)"
    )
    print(f"goal: peak < {GOAL_MB:.0f} MB ({'met' if peak_mb < GOAL_MB else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
