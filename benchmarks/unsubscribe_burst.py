"""Benchmark: a burst of RFC 8058 one-click unsubscribes right after a send.

    python benchmarks/unsubscribe_burst.py [--python PATH] [--existing N] [--posts N] [--runs K]

Builds a small project under benchmarks/.data/unsubscribe_burst/ (git-ignored) whose
`subscribers/suppressions.csv` already holds N suppressions (default 200,000), then, for each
run, on a fresh copy of that project:

  * starts `PATH -m composer --project DIR serve --host 127.0.0.1 --port P` with
    COMPOSE_SECRET in its environment, and waits for GET /healthz;
  * mints one unsubscribe token per new address with the same interpreter and secret
    (`composer.delivery.tokens.make_token`);
  * fires all POST /unsubscribe/<token> (body `List-Unsubscribe=One-Click`) at once, one new
    connection each as mail providers do, from a plain asyncio client (an HTTP library here
    would cost more CPU than the server, on the same two cores), and times each one;
  * stops the server and counts each new address in suppressions.csv (it should be there
    exactly once).

`--python` names the interpreter whose `composer` is measured (default: this one), so the same
script measures old and new code; the HTTP client always runs in this interpreter. It prints
p50, p99 and max latency, the wall time of the burst, and the medians over the runs.
Goal: p99 < 200 ms. It prints figures and never fails on a missed goal.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from local_server import free_port, http_request, percentile, stop, wait_healthy

DATA = Path(__file__).resolve().parent / ".data" / "unsubscribe_burst"
SECRET = "benchmark-secret-0123456789abcdef"
LIST_NAME = "main"
GOAL_P99_MS = 200.0
ONE_CLICK = "List-Unsubscribe=One-Click"
REQUEST_TIMEOUT = 120.0
NEWSLETTER_YAML = """\
# A minimal project for benchmarks/unsubscribe_burst.py.
name: Burst Bulletin
organization: Composer Benchmarks
language: en
website: https://www.example.org/
archive_url: https://news.example.org/archive/
postal_address: "1 Test Street, 1000 Testville"
from: {name: Burst Bulletin, email: bulletin@example.org}
transport:
  kind: outbox
"""
MINT = """\
import sys
from composer.delivery.tokens import make_token
secret, list_name = sys.argv[1].encode("utf-8"), sys.argv[2]
for line in sys.stdin:
    print(make_token(secret, list_name, line.strip()))
"""


@dataclass
class RunResult:
    """What one burst measured."""

    latencies_ms: list[float]
    wall_s: float
    statuses: dict[int, int]
    found: int
    duplicates: int
    rows: int


def make_base(existing: int) -> Path:
    """The template project with `existing` suppressions (reused when it has that many)."""
    base = DATA / f"base-{existing}"
    if (base / "done").exists():
        return base
    shutil.rmtree(base, ignore_errors=True)
    subscribers = base / "subscribers"
    subscribers.mkdir(parents=True)
    (base / "newsletter.yaml").write_text(NEWSLETTER_YAML, encoding="utf-8")
    with (subscribers / f"{LIST_NAME}.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "name"])
        writer.writerows((f"reader.{n}@example.org", f"Reader {n}") for n in range(1000))
    with (subscribers / "suppressions.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["email", "reason", "date"])
        writer.writerows(
            (f"gone.{n}@example.org", "bounced", "2024-01-01") for n in range(existing)
        )
    (base / "done").write_text("ok\n")
    return base


def mint_tokens(python: str, emails: list[str]) -> list[str]:
    """Tokens for `emails`, made by `python`'s composer with SECRET."""
    proc = subprocess.run(
        [python, "-c", MINT, SECRET, LIST_NAME],
        input="\n".join(emails) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=DATA,  # not the repository: `-c` puts the working folder first on sys.path
    )
    if proc.returncode != 0:
        sys.exit(f"minting tokens failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    tokens = proc.stdout.split()
    if len(tokens) != len(emails):
        sys.exit(f"minted {len(tokens)} tokens for {len(emails)} addresses")
    return tokens


async def burst(port: int, tokens: list[str]) -> tuple[list[float], float, dict[int, int]]:
    """POST every token at once, each on its own connection as mail providers do: each latency
    in ms (connecting included), the wall seconds, the status counts."""

    async def one(token: str) -> tuple[float, int]:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                status, _, _ = await asyncio.wait_for(
                    http_request(
                        reader, writer, "POST", f"/unsubscribe/{token}", ONE_CLICK.encode()
                    ),
                    REQUEST_TIMEOUT,
                )
            finally:
                writer.close()
        except (OSError, asyncio.IncompleteReadError, ValueError):  # timeouts are OSErrors
            status = 0
        return (time.perf_counter() - started) * 1000, status

    started = time.perf_counter()
    results = await asyncio.gather(*(one(t) for t in tokens))
    wall = time.perf_counter() - started
    statuses: dict[int, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return [ms for ms, _ in results], wall, statuses


def count_addresses(path: Path, emails: list[str]) -> tuple[int, int, int]:
    """How many of `emails` suppressions.csv holds, how many extra copies, how many rows."""
    wanted = {e.lower(): 0 for e in emails}
    rows = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            rows += 1
            key = row[0].strip().lower() if row else ""
            if key in wanted:
                wanted[key] += 1
    found = sum(1 for n in wanted.values() if n > 0)
    duplicates = sum(n - 1 for n in wanted.values() if n > 1)
    return found, duplicates, rows


def run_once(python: str, base_project: Path, posts: int, run: int) -> RunResult:
    """One burst on a fresh copy of the project against a freshly started server."""
    project = DATA / "run"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(base_project, project)
    emails = [f"burst.{run}.{n}@example.org" for n in range(posts)]
    tokens = mint_tokens(python, emails)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COMPOSE_SECRET": SECRET}
    log_path = DATA / f"server-{run}.log"
    command = [
        python, "-m", "composer", "--project", str(project),
        "serve", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, env=env, cwd=project, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(base, server)
            # Warm-up that changes nothing: the GET page of one token (imports, templates).
            httpx.get(f"{base}/unsubscribe/{tokens[0]}", timeout=30)
            latencies, wall, statuses = asyncio.run(burst(port, tokens))
        finally:
            stop(server)
    found, duplicates, rows = count_addresses(project / "subscribers" / "suppressions.csv", emails)
    return RunResult(latencies, wall, statuses, found, duplicates, rows)


def main() -> int:
    """Run the bursts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter under test")
    parser.add_argument("--existing", type=int, default=200_000, help="suppressions already there")
    parser.add_argument("--posts", type=int, default=200, help="concurrent one-click POSTs")
    parser.add_argument("--runs", type=int, default=3, help="fresh server and data each run")
    args = parser.parse_args()

    python = shutil.which(args.python) or args.python
    DATA.mkdir(parents=True, exist_ok=True)
    base_project = make_base(args.existing)
    print(f"interpreter: {python}")
    print(f"{args.existing:,} existing suppressions, {args.posts} concurrent one-click POSTs")
    p50s, p99s, maxes, walls = [], [], [], []
    for run in range(1, args.runs + 1):
        result = run_once(python, base_project, args.posts, run)
        p50 = percentile(result.latencies_ms, 0.50)
        p99 = percentile(result.latencies_ms, 0.99)
        worst = max(result.latencies_ms)
        p50s.append(p50)
        p99s.append(p99)
        maxes.append(worst)
        walls.append(result.wall_s)
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
        print(
            f"run {run}: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {worst:.0f} ms, "
            f"wall {result.wall_s:.2f} s; statuses {{{statuses}}}; "
            f"in suppressions.csv: {result.found}/{args.posts} found, "
            f"{result.duplicates} duplicates, {result.rows:,} rows; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    p99 = statistics.median(p99s)
    print(
        f"median of {args.runs}: p50 {statistics.median(p50s):.0f} ms, p99 {p99:.0f} ms, "
        f"max {statistics.median(maxes):.0f} ms, wall {statistics.median(walls):.2f} s"
    )
    verdict = "met" if p99 < GOAL_P99_MS else "missed"
    print(f"goal: p99 < {GOAL_P99_MS:.0f} ms ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
