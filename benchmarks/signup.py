"""Benchmark: sign-up POSTs per second, each mailing a confirmation into the outbox.

    python benchmarks/signup.py [--python PATH] [--posts N] [--clients C] [--runs K]

For each run, on a fresh project under benchmarks/.data/signup/ (git-ignored):

  * starts `PATH -m composer --project DIR serve --host 127.0.0.1 --port P` with COMPOSE_SECRET
    and COMPOSE_SIGNUP_RATE (the per-IP limit, lifted: every client here is 127.0.0.1) in its
    environment, and waits for GET /healthz;
  * C clients (default 50), each on its own keep-alive connection from a plain asyncio client
    (an HTTP library would cost more CPU than the server, on the same cores), POST /subscribe
    for N distinct addresses in all (default 3,000), as the embeddable form does: email,
    consent, the empty honeypot. Each POST writes one consent record (fsync) and one .eml;
  * stops the server, then counts the .eml files and consent records (one each per address).

Every request has a timeout (30 s) and the run a deadline (300 s): it never hangs. It prints
sign-ups per second, p50, p99 and max latency, and the medians over the runs.
Goals: >= 300 sign-ups/s and p99 < 200 ms. It prints figures and never fails on a missed goal.
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
from urllib.parse import urlencode

from local_server import free_port, http_request, percentile, stop, wait_healthy

DATA = Path(__file__).resolve().parent / ".data" / "signup"
SECRET = "benchmark-secret-0123456789abcdef"
GOAL_RATE = 300.0
GOAL_P99_MS = 200.0
REQUEST_TIMEOUT = 30.0
RUN_DEADLINE = 300.0
NEWSLETTER_YAML = """\
# A minimal project for benchmarks/signup.py.
name: Sign-up Bulletin
organization: Composer Benchmarks
language: en
archive_url: https://news.example.org/archive/
postal_address: "1 Test Street, 1000 Testville"
from: {name: Sign-up Bulletin, email: bulletin@example.org}
pillars:
  I: {title: Law enforcement}
  II: {title: Organized crime}
signup:
  lists: [newsletter]
  interests: true
  consent: "I agree to receive the Sign-up Bulletin and know I can unsubscribe at any time."
transport:
  kind: outbox
"""


@dataclass
class RunResult:
    """What one run measured."""

    latencies_ms: list[float]
    wall_s: float
    statuses: dict[int, int]
    mails: int
    records: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.wall_s


def make_project(run: int) -> Path:
    """A fresh project for one run."""
    root = DATA / f"run-{run}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "subscribers").mkdir(parents=True)
    (root / "newsletter.yaml").write_text(NEWSLETTER_YAML, encoding="utf-8")
    (root / "subscribers" / "newsletter.csv").write_text("email,name\n", encoding="utf-8")
    return root


async def load(port: int, posts: int, clients: int) -> tuple[list[float], float, dict[int, int]]:
    """`clients` connections POSTing sign-ups until `posts` are done: latencies (ms), wall
    seconds, status counts."""
    queue = iter(range(posts))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for n in queue:
                body = urlencode(
                    {"email": f"reader.{n}@example.org", "consent": "yes", "website": "",
                     "interests": "II"}
                ).encode()  # fmt: skip
                started = time.perf_counter()
                status, _, keep = await asyncio.wait_for(
                    http_request(reader, writer, "POST", "/subscribe", body), REQUEST_TIMEOUT
                )
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), RUN_DEADLINE)
    return latencies, time.perf_counter() - started, statuses


def count_records(root: Path) -> int:
    path = root / "subscribers" / "consent.csv"
    if not path.exists():
        return 0
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    torn = [row for row in rows if len(row) != 8]
    if torn:
        sys.exit(f"{len(torn)} torn line(s) in {path}")
    return len(rows) - 1


def run_once(python: str, run: int, posts: int, clients: int) -> RunResult:
    root = make_project(run)
    port = free_port()
    env = {
        **os.environ,
        "COMPOSE_SECRET": SECRET,
        "COMPOSE_SIGNUP_RATE": "1000000/minute",
    }
    server = subprocess.Popen(
        [python, "-m", "composer", "--project", str(root), "serve", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=DATA,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        latencies, wall, statuses = asyncio.run(load(port, posts, clients))
    finally:
        stop(server)
    mails = len(list((root / "outbox" / "confirmations").glob("*.eml")))
    return RunResult(latencies, wall, statuses, mails, count_records(root))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    results = []
    for run in range(args.runs):
        result = run_once(args.python, run, args.posts, args.clients)
        results.append(result)
        lat = result.latencies_ms
        print(
            f"run {run + 1}: {len(lat)} sign-ups in {result.wall_s:.2f} s = {result.rate:.0f}/s; "
            f"p50 {percentile(lat, 0.5):.1f} ms, p99 {percentile(lat, 0.99):.1f} ms, "
            f"max {max(lat):.1f} ms; statuses {result.statuses}; "
            f"{result.mails} e-mails, {result.records} consent records"
        )
        if result.mails != args.posts or result.records != args.posts:
            print(f"  MISMATCH: expected {args.posts} e-mails and records")
    rate = statistics.median(r.rate for r in results)
    p99 = statistics.median(percentile(r.latencies_ms, 0.99) for r in results)
    p50 = statistics.median(percentile(r.latencies_ms, 0.5) for r in results)
    print(
        f"median over {len(results)} runs: {rate:.0f} sign-ups/s (goal >= {GOAL_RATE:.0f}), "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal < {GOAL_P99_MS:.0f} ms), "
        f"{args.clients} clients"
    )


if __name__ == "__main__":
    main()
