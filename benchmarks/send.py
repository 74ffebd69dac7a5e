"""Delivery benchmarks: SMTP against Postfix's smtp-sink, and SendGrid against the local double.

    python benchmarks/send.py [--messages 10000] [--sizes 17,31] [--repeat 5]
                              [--sendgrid 100000] [--skip-smtp] [--skip-sendgrid]
                              [--scale 100000,1000000] [--scale-transports smtp,sendgrid]
                              [--baseline DIR] [--dkim rsa|ed25519]

1. SMTP, for personalised messages of ~17 KB and ~31 KB to `smtp-sink` (Debian package `postfix`)
   on 127.0.0.1, each round side by side with Postfix's own load generator
   `smtp-source -s 4 -m N -l SIZE` against the same sink (SIZE = our message's size):
   - transport: the SMTP transport alone (`run_send` in this process, the plan already built).
     Goal: at least 0.9 of smtp-source's rate.
   - whole: `compose send --yes` as a user runs it, a child process (start-up, list reading,
     rendering, sending, delivery log). Goal: at least 0.8 of smtp-source's rate.
   - after build: the same, after a `compose build` of the issue (untimed), as the officer works:
     the send reads the rendered issue from the render cache.
   Medians of `--repeat` interleaved rounds, with the load average before and after.
   `--baseline DIR` adds both figures for the `composer` package in DIR (an earlier tree,
   imported through PYTHONPATH), in the same rounds: before and after, side by side.
   `--dkim rsa|ed25519` adds both figures with every message DKIM-signed (transport.dkim and a
   fresh key of that kind). Goal: signed at least 0.7 of smtp-source's rate.
2. SendGrid: recipients through the SendGrid transport against tests/doubles/sendgrid_api.py, in
   a child `compose send` process: requests, wall time, and the child's peak memory for two list
   sizes (it must stay flat as the list grows).
3. `--scale N[,N...]`: a whole `compose send` of N recipients over SMTP (to smtp-sink) and over
   SendGrid (to the double): wall time, peak RSS of the child, and the time from the start of the
   process to the first message out. Goals at 1,000,000: peak < 200 MB on both, SendGrid < 60 s,
   first message out within 2 s.

Only 127.0.0.1 is ever contacted. Scratch projects go to benchmarks/.data/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "delivery" / "project"
DATA = REPO / "benchmarks" / ".data"
sys.path.insert(0, str(REPO / "tests"))

from doubles.sendgrid_api import SendGridDouble
from doubles.smtp_servers import free_port

# One more article of the fixture issue: about 1,040 bytes of the personalised message.
_ARTICLE = """\
      - title: Another article, number {n}
        dateline: "2 March 2024, Testville"
        body: |
          The body of the article, long enough to be a paragraph. Çà et là, naïve café. Some more
          words about the region, the programme and its partners, to fill a realistic paragraph.

          A second paragraph with a [link](https://example.org/more/{n}) and a little more to say.
"""
_FIXTURE_BYTES = 17_100  # the fixture issue's message, as it is
_ARTICLE_BYTES = 1_040


def make_project(name: str, recipients: int, transport: str, kb: int = 17) -> Path:
    """A copy of the delivery fixture project with `recipients` generated subscribers, its issue
    grown by articles until a personalised message is about `kb` KB."""
    target = DATA / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(FIXTURE, target)
    extra = max(0, math.ceil((kb * 1000 - _FIXTURE_BYTES) / _ARTICLE_BYTES))
    issue = target / "issues" / "x.yaml"
    issue.write_text(
        issue.read_text(encoding="utf-8") + "".join(_ARTICLE.format(n=n) for n in range(extra)),
        encoding="utf-8",
    )
    config = target / "newsletter.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("kind: outbox", f"kind: {transport}"),
        encoding="utf-8",
    )
    with (target / "subscribers" / "main.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,country\n")
        for n in range(recipients):
            out.write(f"reader{n:06d}@example.org,Reader Nº {n},Serbia\n")
    return target


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Block until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def message_size(project: Path) -> int:
    """The size in bytes of one personalised message of the fixture issue."""
    from composer.delivery.plan import plan_send
    from composer.project import load_project

    plan = plan_send(
        load_project(project), project / "issues" / "x.yaml", "main", transport="outbox"
    )
    envelope = plan.envelope("reader000000@example.org", "reader000000@example.org", "Reader Nº 0")
    return len(plan.template.personalize(envelope.email, envelope.name, envelope.unsubscribe_url))


def run_ours(project: Path, port: int, pipelining: bool = True) -> float:
    """Send the whole list through the SMTP transport; returns the wall time in seconds."""
    from composer.delivery.plan import plan_send
    from composer.delivery.runner import run_send
    from composer.project import load_project

    shutil.rmtree(project / ".compose", ignore_errors=True)
    os.environ["COMPOSE_SMTP_HOST"] = "127.0.0.1"
    os.environ["COMPOSE_SMTP_PORT"] = str(port)
    plan = plan_send(load_project(project), project / "issues" / "x.yaml", "main")
    plan.transport.settings = plan.settings = _with(plan.settings, pipelining=pipelining)
    started = time.perf_counter()
    summary = run_send(plan)
    elapsed = time.perf_counter() - started
    assert summary.sent == plan.recipients and not summary.failed, summary
    return elapsed


def _with(settings, **changes):  # -> Settings
    return settings.model_copy(update=changes)


_TRANSPORT_CHILD = """
import os, shutil, sys, time
from pathlib import Path
from composer.delivery.plan import plan_send
from composer.delivery.runner import run_send
from composer.project import load_project
project = Path(sys.argv[1])
shutil.rmtree(project / ".compose", ignore_errors=True)
plan = plan_send(load_project(project), project / "issues" / "x.yaml", "main")
started = time.perf_counter()
summary = run_send(plan)
assert summary.sent == plan.recipients and not summary.failed, summary
print(time.perf_counter() - started)
"""


def user_env() -> dict[str, str]:
    """This environment as a user's shell has it: Python keeps its bytecode caches (this
    workplace sets PYTHONDONTWRITEBYTECODE, which makes every child compile composer anew)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def baseline_env(port: int, baseline: Path) -> dict[str, str]:
    """The environment of a child that imports composer from `baseline` (an earlier tree; the
    child runs in it too, as `-m` and `-c` put the working folder first on sys.path)."""
    return {
        **user_env(),
        "PYTHONPATH": str(baseline),
        "COMPOSE_SMTP_HOST": "127.0.0.1",
        "COMPOSE_SMTP_PORT": str(port),
    }


def run_transport_child(project: Path, port: int, baseline: Path) -> float:
    """`run_send` alone, like run_ours, in a child importing composer from `baseline`."""
    out = subprocess.run(
        [sys.executable, "-c", _TRANSPORT_CHILD, str(project)], cwd=baseline,
        env=baseline_env(port, baseline), check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(out.stdout.split()[-1])


def run_whole_baseline(project: Path, port: int, baseline: Path) -> float:
    """`compose send` as run_whole does, importing composer from `baseline`."""
    shutil.rmtree(project / ".compose", ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        send_command(project), env=baseline_env(port, baseline), check=True, cwd=baseline,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def send_command(project: Path) -> list[str]:
    """`compose send` of the benchmark issue to the whole list, as a user types it."""
    return [sys.executable, "-m", "composer", "--project", str(project), "send",
            str(project / "issues" / "x.yaml"), "--list", "main", "--yes"]  # fmt: skip


def run_whole(project: Path, port: int, after_build: bool = False) -> float:
    """`compose send` in a child process, start-up to exit; returns the wall time in seconds.

    `after_build`: as the officer works, `compose build` (and the preview) first, so the send
    finds the rendered issue in the render cache; only the delivery log is cleared. Else cold:
    the whole state folder goes, and the send renders the issue itself.
    """
    if after_build:
        for log in (project / ".compose").glob("delivery.sqlite*"):
            log.unlink()
        if not (project / ".compose" / "render-cache").is_dir():
            build = [sys.executable, "-m", "composer", "--project", str(project), "build",
                     str(project / "issues" / "x.yaml")]  # fmt: skip
            subprocess.run(build, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        shutil.rmtree(project / ".compose", ignore_errors=True)
    env = {**user_env(), "COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(port)}
    started = time.perf_counter()
    subprocess.run(
        send_command(project),
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def dkim_project(project: Path, kind: str) -> Path:
    """A copy of `project` that signs with a new key of `kind`, put in this process's
    environment (children inherit it; projects without transport.dkim ignore it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    signed = project.with_name(project.name + "-dkim")
    shutil.rmtree(signed, ignore_errors=True)
    shutil.copytree(project, signed)
    config = signed / "newsletter.yaml"
    text = config.read_text(encoding="utf-8")
    dkim = "  dkim: {domain: example.org, selector: bench}\n"
    config.write_text(text.replace("transport:\n", "transport:\n" + dkim, 1), encoding="utf-8")
    key = (
        rsa.generate_private_key(65537, 2048)
        if kind == "rsa"
        else (ed25519.Ed25519PrivateKey.generate())
    )
    os.environ["COMPOSE_DKIM_PRIVATE_KEY"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")  # fmt: skip
    return signed


def load() -> str:
    """The 1-minute load average now (other work on the machine skews every figure)."""
    return f"{os.getloadavg()[0]:.2f}"


def bench_smtp(
    messages: int,
    sizes: list[int],
    repeat: int,
    no_pipelining: bool,
    baseline: Path | None,
    dkim: str | None = None,
) -> None:
    """Transport alone and whole `compose send` vs smtp-source, against one smtp-sink; medians."""
    if shutil.which("smtp-sink") is None or shutil.which("smtp-source") is None:
        print("smtp: skipped (smtp-sink/smtp-source not installed; apt-get install postfix)")
        return
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"])
    try:
        wait_for_port(port)
        for kb in sizes:
            project = make_project(f"smtp-{kb}", messages, "smtp", kb)
            size = message_size(project)
            source = ["smtp-source", "-s", "4", "-m", str(messages), "-l", str(size),
                      f"127.0.0.1:{port}"]  # fmt: skip
            contenders: dict[str, Callable[[], float]] = {
                "transport": lambda p=project: run_ours(p, port),
                "whole send": lambda p=project: run_whole(p, port),
                "after build": lambda p=project: run_whole(p, port, after_build=True),
            }
            if dkim is not None:
                signed = dkim_project(project, dkim)
                contenders[f"transport, {dkim}"] = lambda p=signed: run_ours(p, port)
                contenders[f"whole, {dkim}"] = lambda p=signed: run_whole(p, port)
            if no_pipelining:
                contenders["no pipelining"] = lambda p=project: run_ours(p, port, False)
            if baseline is not None:
                contenders["transport, base"] = lambda p=project: run_transport_child(
                    p, port, baseline
                )
                contenders["whole, base"] = lambda p=project: run_whole_baseline(p, port, baseline)
            times: dict[str, list[float]] = {"smtp-source": [], **{k: [] for k in contenders}}
            before = load()
            for _ in range(repeat):  # interleaved, so a busy moment hits every contender alike
                started = time.perf_counter()
                subprocess.run(source, check=True)
                times["smtp-source"].append(time.perf_counter() - started)
                for label, run in contenders.items():
                    times[label].append(run())
            mid = {label: statistics.median(values) for label, values in times.items()}
            print(
                f"smtp: {messages:,} messages of {size:,} bytes, 4 connections each, median of "
                f"{repeat} (load {before} -> {load()})"
            )
            base = mid["smtp-source"]
            print(f"  smtp-source -s 4          {base:6.2f} s  {messages / base:8,.0f} msg/s")
            for label in contenders:
                elapsed = mid[label]
                print(
                    f"  composer, {label:<15} {elapsed:6.2f} s  {messages / elapsed:8,.0f} msg/s  "
                    f"{base / elapsed:.2f} of smtp-source  "
                    f"(runs: {', '.join(f'{t:.2f}' for t in times[label])})"
                )
    finally:
        sink.terminate()
        sink.wait()


def run_child(
    project: Path,
    env: dict[str, str],
    first_out: Callable[[], bool] | None = None,
    cwd: Path | None = None,
) -> tuple[float, int, float | None]:
    """Run `compose send` in a child process: (wall seconds, peak RSS in KiB, seconds from the
    start to the first message out, when `first_out` can tell). `cwd`: where it runs (`-m`
    imports composer from there first)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        send_command(project), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=cwd,
    )  # fmt: skip
    first: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while first_out is not None and not done.is_set():
            if first_out():
                first.append(time.perf_counter() - started)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert child.stderr is not None
    errors = child.stderr.read()  # until the child exits: its pipe never fills
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    done.set()
    watcher.join()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"compose send exited {code}: {errors.decode()[-2000:]}")
    return elapsed, usage.ru_maxrss, first[0] if first else None


def sendgrid_child(
    project: Path, double: SendGridDouble, baseline: Path | None = None
) -> tuple[float, int, float | None]:
    """`compose send` to the SendGrid double, importing composer from `baseline` when given;
    (wall seconds, peak RSS KiB, first out seconds)."""
    env = {**user_env(), "SENDGRID_API_KEY": double.api_key, "COMPOSE_SENDGRID_HOST": double.url}
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline)
    return run_child(project, env, lambda: double.delivered > 0, cwd=baseline)


def first_sent_in_log(project: Path) -> Callable[[], bool]:
    """Whether the project's delivery log holds a sent message yet (read-only, never blocks)."""
    log = project / ".compose" / "delivery.sqlite"

    def check() -> bool:
        if not log.exists():
            return False
        try:
            with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True)) as db:
                return (
                    db.execute("SELECT 1 FROM deliveries WHERE state='sent' LIMIT 1").fetchone()
                    is not None
                )
        except sqlite3.Error:
            return False

    return check


def bench_scale(counts: list[int], transports: list[str]) -> None:
    """Whole sends of large lists: wall time, peak memory, time to the first message out."""
    for transport in transports:
        for count in counts:
            project = make_project(f"scale-{transport}-{count}", count, transport)
            if transport == "sendgrid":
                with SendGridDouble(api_key="SG.bench-key", keep_payloads=False) as double:
                    elapsed, peak, first = sendgrid_child(project, double)
                    assert double.delivered == count, (double.delivered, count)
            else:
                if shutil.which("smtp-sink") is None:
                    print("scale smtp: skipped (smtp-sink not installed)")
                    continue
                port = free_port()
                user = ["-u", "nobody"] if os.geteuid() == 0 else []
                sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"])
                try:
                    wait_for_port(port)
                    env = {**user_env(), "COMPOSE_SMTP_HOST": "127.0.0.1",
                           "COMPOSE_SMTP_PORT": str(port)}  # fmt: skip
                    elapsed, peak, first = run_child(project, env, first_sent_in_log(project))
                finally:
                    sink.terminate()
                    sink.wait()
            out = f"{first:.2f} s" if first is not None else "n/a"
            print(
                f"scale {transport}: {count:>9,} recipients, {elapsed:7.2f} s wall, "
                f"{count / elapsed:8,.0f}/s, peak RSS {peak / 1024:6.1f} MiB, "
                f"first message out after {out} (load {load()})"
            )


def bench_sendgrid(recipients: int, baseline: Path | None = None, repeat: int = 1) -> None:
    """The SendGrid path for a small and a large list: requests, wall time, peak memory; with
    `baseline`, the same sends importing composer from that tree, interleaved (medians)."""
    print(
        f"sendgrid: list sizes {recipients // 10:,} and {recipients:,}, 1000 recipients a "
        f"request, median of {repeat} (load {load()})"
    )
    for count in (recipients // 10, recipients):
        project = make_project(f"sendgrid-{count}", count, "sendgrid")
        runs: dict[str, list[tuple[float, int, int]]] = {"now": [], "baseline": []}
        for _ in range(repeat):
            for label in ("now", "baseline") if baseline is not None else ("now",):
                shutil.rmtree(project / ".compose", ignore_errors=True)
                with SendGridDouble(api_key="SG.bench-key", keep_payloads=False) as double:
                    tree = baseline if label == "baseline" else None
                    elapsed, peak, _ = sendgrid_child(project, double, tree)
                    assert double.delivered == count, (double.delivered, count)
                    runs[label].append((elapsed, peak, len(double.requests)))
        for label, done in runs.items():
            if not done:
                continue
            elapsed = statistics.median(run[0] for run in done)
            peak = max(run[1] for run in done)
            print(
                f"  {count:>7,} recipients{', baseline' if label == 'baseline' else ''}: "
                f"{done[0][2]:4d} requests, {elapsed:6.2f} s wall, {count / elapsed:8,.0f} "
                f"recipients/s, peak RSS {peak / 1024:6.1f} MiB  (runs: "
                f"{', '.join(f'{run[0]:.2f}' for run in done)})"
            )


def main() -> None:
    """Parse options and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="SMTP messages")
    parser.add_argument("--sendgrid", type=int, default=100_000, help="largest SendGrid list")
    parser.add_argument("--skip-smtp", action="store_true")
    parser.add_argument("--skip-sendgrid", action="store_true")
    parser.add_argument("--sizes", default="17,31", help="SMTP message sizes in KB")
    parser.add_argument("--repeat", type=int, default=5, help="SMTP rounds (medians reported)")
    parser.add_argument("--no-pipelining", action="store_true", help="also without PIPELINING")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also time a tree holding an earlier `composer` package (PYTHONPATH), interleaved",
    )
    parser.add_argument("--dkim", choices=("rsa", "ed25519"), help="also DKIM-signed, side by side")
    parser.add_argument("--scale", default="", help="list sizes for whole sends, e.g. 1000000")
    parser.add_argument("--scale-transports", default="smtp,sendgrid")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    if args.scale:
        counts = [int(n) for n in args.scale.split(",")]
        bench_scale(counts, args.scale_transports.split(","))
        return
    if not args.skip_smtp:
        sizes = [int(kb) for kb in args.sizes.split(",")]
        bench_smtp(args.messages, sizes, args.repeat, args.no_pipelining, args.baseline, args.dkim)
    if not args.skip_sendgrid:
        bench_sendgrid(args.sendgrid, args.baseline, args.repeat if args.baseline else 1)


if __name__ == "__main__":
    main()
