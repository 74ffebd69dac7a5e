"""Benchmark: reads of the web archive (`GET /` and `GET /feed.xml`) under concurrent load.

    python benchmarks/archive_load.py [--python PATH] [--requests N] [--concurrency C]
                                      [--issues N] [--runs K] [--regenerate]

Makes a project under benchmarks/.data/archive_load/ (git-ignored; reused unless
--regenerate) whose build folder holds N built issues (default 20), vol-1 .. vol-N: the
repository's issues/vol-36.yaml and issues/2022-05.yaml are built once with `compose build`
(by PATH, else by this interpreter, else the serve test fixture's pages are used) and copied,
each copy with its own meta.json (slug, subject, volume, date). Then, for each run:

  * starts `PATH -m composer --project DIR serve --host 127.0.0.1 --port P` (one uvicorn
    worker) and waits for GET /healthz;
  * sends 20 warm-up requests, then N requests (default 2,000), alternately `/` and
    `/feed.xml`, from C concurrent keep-alive HTTP/1.1 connections (default 50; a small
    asyncio client, lighter than httpx, so the client is not what is measured);
  * stops the server.

`--python` names the interpreter whose `composer` is measured (default: this one), so the same
script measures old and new code. It prints, per route and overall, requests per second, p50
and p99 latency, the status codes and how many issues each route listed, then the medians over
the runs. Goal: >= 1,500 req/s and p99 < 100 ms overall. It prints figures and never fails on a
missed goal.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from local_server import free_port, http_request, percentile, stop

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data" / "archive_load"
FIXTURE_BUILD = REPO / "tests" / "fixtures" / "serve" / "project" / "build"
SOURCES = ("vol-36", "2022-05")
ROUTES = ("/", "/feed.xml")
GOAL_RPS = 1500.0
GOAL_P99_MS = 100.0
REQUEST_TIMEOUT = 30.0


@dataclass
class RouteStats:
    """Latencies and status codes of one route in one run."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    listed: set[int] = field(default_factory=set)


def run_quiet(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `command` in `cwd`, capturing its output, within 5 minutes."""
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def build_templates(pythons: list[str]) -> tuple[Path, str]:
    """Folders of the two built sample issues, and who made them."""
    work = DATA / "template-project"
    shutil.rmtree(work, ignore_errors=True)
    (work / "issues").mkdir(parents=True)
    shutil.copy(REPO / "newsletter.yaml", work / "newsletter.yaml")
    for source in SOURCES:
        shutil.copy(REPO / "issues" / f"{source}.yaml", work / "issues" / f"{source}.yaml")
    for python in pythons:
        out = work / "build"
        shutil.rmtree(out, ignore_errors=True)
        ok = True
        for source in SOURCES:
            issue = work / "issues" / f"{source}.yaml"
            command = [python, "-m", "composer", "--project", str(work), "build", str(issue)]
            proc = run_quiet([*command, "--out", str(out)], cwd=work)
            if proc.returncode != 0 or not (out / source / "web.html").is_file():
                print(f"  (`compose build` with {python} failed: {proc.stderr.strip()[-300:]})")
                ok = False
                break
        if ok:
            return out, f"built by {python}"
    return FIXTURE_BUILD, "copied from tests/fixtures/serve/project/build (no build worked)"


def make_project(pythons: list[str], issues: int) -> Path:
    """The project with `issues` built issues vol-1 .. vol-N, made once and reused."""
    project = DATA / f"project-{issues}"
    if (project / "done").exists():
        print(f"reusing {project} ({(project / 'done').read_text().strip()})")
        return project
    shutil.rmtree(project, ignore_errors=True)
    templates, made_by = build_templates(pythons)
    build = project / "build"
    build.mkdir(parents=True)
    shutil.copy(REPO / "newsletter.yaml", project / "newsletter.yaml")
    first = dt.date(2020, 1, 15)
    for n in range(1, issues + 1):
        source = templates / SOURCES[n % 2]
        target = build / f"vol-{n}"
        shutil.copytree(source, target)
        meta_path = target / "meta.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        meta.update(
            slug=target.name,
            subject=f"UNODC in South Eastern Europe — Newsletter Vol. {n}",
            volume=n,
            date=(first + dt.timedelta(days=30 * n)).isoformat(),
        )
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", "utf-8")
    (project / "done").write_text(f"{issues} issues, {made_by}\n")
    print(f"made {project}: {issues} issues, {made_by}")
    return project


def listed_issues(body: bytes, issues: int) -> set[int]:
    """Which of vol-1 .. vol-N a page or feed links to."""
    found = {int(m) for m in re.findall(rb"vol-(\d+)/", body)}
    return {n for n in found if 1 <= n <= issues}


async def load(
    port: int, paths: list[str], concurrency: int, issues: int
) -> tuple[dict[str, RouteStats], float]:
    """GET every path from `concurrency` keep-alive connections; stats per route, wall time."""
    stats = {route: RouteStats() for route in ROUTES}
    queue = iter(paths)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for path in queue:
                started = time.perf_counter()
                try:
                    status, body, alive = await asyncio.wait_for(
                        http_request(reader, writer, "GET", path), REQUEST_TIMEOUT
                    )
                except (OSError, asyncio.IncompleteReadError, ValueError):  # timeouts are OSErrors
                    status, body, alive = 0, b"", False
                elapsed = (time.perf_counter() - started) * 1000
                route = stats[path]
                route.latencies_ms.append(elapsed)
                route.statuses[status] = route.statuses.get(status, 0) + 1
                route.listed |= listed_issues(body, issues)
                if not alive:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return stats, time.perf_counter() - started


def wait_healthy(port: int, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll /healthz until it answers 200; exit if the server dies or `timeout` passes."""

    async def probe() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return (await asyncio.wait_for(http_request(reader, writer, "GET", "/healthz"), 2))[0]
        finally:
            writer.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} before answering /healthz")
        try:
            if asyncio.run(probe()) == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        time.sleep(0.05)
    sys.exit(f"/healthz never answered within {timeout:.0f} s")


def run_once(
    python: str, project: Path, requests: int, concurrency: int, issues: int, run: int
) -> tuple[dict[str, RouteStats], float]:
    """One load run against a freshly started server."""
    port = free_port()
    command = [
        python, "-m", "composer", "--project", str(project),
        "serve", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log_path = DATA / f"server-{run}.log"
    paths = [ROUTES[n % 2] for n in range(requests)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=project, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(port, server)
            warm_up = [ROUTES[n % 2] for n in range(20)]
            asyncio.run(load(port, warm_up, 1, issues))
            return asyncio.run(load(port, paths, concurrency, issues))
        finally:
            stop(server)


def main() -> int:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter under test")
    parser.add_argument("--requests", type=int, default=2000, help="timed GETs per run")
    parser.add_argument("--concurrency", type=int, default=50, help="open connections")
    parser.add_argument("--issues", type=int, default=20, help="built issues in the archive")
    parser.add_argument("--runs", type=int, default=3, help="fresh server each run")
    parser.add_argument("--regenerate", action="store_true", help="rebuild the project")
    args = parser.parse_args()

    python = shutil.which(args.python) or args.python
    DATA.mkdir(parents=True, exist_ok=True)
    if args.regenerate:
        shutil.rmtree(DATA / f"project-{args.issues}", ignore_errors=True)
    project = make_project(list(dict.fromkeys([python, sys.executable])), args.issues)
    print(f"interpreter: {python}")
    print(
        f"{args.requests:,} GETs (half /, half /feed.xml), {args.concurrency} connections, "
        f"{args.issues} issues"
    )
    figures: dict[str, list[tuple[float, float, float]]] = {r: [] for r in (*ROUTES, "all")}
    for run in range(1, args.runs + 1):
        stats, wall = run_once(python, project, args.requests, args.concurrency, args.issues, run)
        everything = [ms for s in stats.values() for ms in s.latencies_ms]
        rows = [(route, stats[route].latencies_ms) for route in ROUTES]
        rows.append(("all", everything))
        print(f"run {run}: wall {wall:.2f} s, load average {os.getloadavg()[0]:.1f}")
        for route, latencies in rows:
            rps = len(latencies) / wall
            p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
            figures[route].append((rps, p50, p99))
            line = f"  {route:9} {rps:7.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
            if route in stats:
                codes = ", ".join(f"{k}: {v}" for k, v in sorted(stats[route].statuses.items()))
                line += f"  statuses {{{codes}}}  lists {len(stats[route].listed)} issues"
            print(line)
    print(f"median of {args.runs}:")
    for route, values in figures.items():
        rps = statistics.median(v[0] for v in values)
        p50 = statistics.median(v[1] for v in values)
        p99 = statistics.median(v[2] for v in values)
        print(f"  {route:9} {rps:7.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
    rps = statistics.median(v[0] for v in figures["all"])
    p99 = statistics.median(v[2] for v in figures["all"])
    verdict = "met" if rps >= GOAL_RPS and p99 < GOAL_P99_MS else "missed"
    print(f"goal: >= {GOAL_RPS:,.0f} req/s and p99 < {GOAL_P99_MS:.0f} ms overall ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
