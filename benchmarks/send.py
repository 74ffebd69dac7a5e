"""Delivery benchmarks: SMTP against Postfix's smtp-sink, and SendGrid against the local double.

    python benchmarks/send.py [--messages 10000] [--sendgrid 100000] [--skip-smtp] [--skip-sendgrid]

1. SMTP: personalised messages to `smtp-sink` (Debian package `postfix`) on 127.0.0.1, compared
   with Postfix's own load generator `smtp-source -s 4 -m N -l SIZE` against the same sink in the
   same run (SIZE = our message's size). Goal: at least 0.8 of smtp-source's rate.
2. SendGrid: recipients through the SendGrid transport against tests/doubles/sendgrid_api.py, in
   a child `compose send` process: requests, wall time, and the child's peak memory for two list
   sizes (it must stay flat as the list grows).

Only 127.0.0.1 is ever contacted. Scratch projects go to benchmarks/.data/ (git-ignored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "delivery" / "project"
DATA = REPO / "benchmarks" / ".data"
sys.path.insert(0, str(REPO / "tests"))

from doubles.sendgrid_api import SendGridDouble
from doubles.smtp_servers import free_port


def make_project(name: str, recipients: int, transport: str) -> Path:
    """A copy of the delivery fixture project with `recipients` generated subscribers."""
    target = DATA / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(FIXTURE, target)
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


def run_ours(project: Path, port: int, pipelining: bool) -> float:
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


def bench_smtp(messages: int, repeat: int) -> None:
    """Our SMTP transport vs smtp-source, both against one smtp-sink; best of `repeat` runs each."""
    if shutil.which("smtp-sink") is None or shutil.which("smtp-source") is None:
        print("smtp: skipped (smtp-sink/smtp-source not installed; apt-get install postfix)")
        return
    project = make_project("smtp", messages, "smtp")
    size = message_size(project)
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"])
    source = ["smtp-source", "-s", "4", "-m", str(messages), "-l", str(size), f"127.0.0.1:{port}"]
    times: dict[str, list[float]] = {"smtp-source": [], "PIPELINING": [], "no pipelining": []}
    try:
        wait_for_port(port)
        for _ in range(repeat):  # interleaved, so a busy moment hits every contender alike
            started = time.perf_counter()
            subprocess.run(source, check=True)
            times["smtp-source"].append(time.perf_counter() - started)
            times["PIPELINING"].append(run_ours(project, port, pipelining=True))
            times["no pipelining"].append(run_ours(project, port, pipelining=False))
    finally:
        sink.terminate()
        sink.wait()
    best = {label: min(values) for label, values in times.items()}
    print(f"smtp: {messages} messages of {size:,} bytes, 4 connections each, best of {repeat}")
    print(f"  smtp-source              {best['smtp-source']:6.2f} s  "
          f"{messages / best['smtp-source']:8,.0f} msg/s")  # fmt: skip
    for label in ("PIPELINING", "no pipelining"):
        elapsed = best[label]
        print(
            f"  composer, {label:<13} {elapsed:6.2f} s  {messages / elapsed:8,.0f} msg/s  "
            f"({best['smtp-source'] / elapsed:.2f} of smtp-source)"
        )


def sendgrid_child(project: Path, double: SendGridDouble) -> tuple[float, int]:
    """Run `compose send` in a child process; (wall seconds, peak RSS in KiB)."""
    env = {
        **os.environ,
        "SENDGRID_API_KEY": double.api_key,
        "COMPOSE_SENDGRID_HOST": double.url,
    }
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "composer", "--project", str(project), "send",
         str(project / "issues" / "x.yaml"), "--list", "main", "--yes"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"compose send exited {child.returncode}")
    return elapsed, usage.ru_maxrss


def bench_sendgrid(recipients: int) -> None:
    """The SendGrid path for a small and a large list: requests, wall time, peak memory."""
    print(
        f"sendgrid: list sizes {recipients // 10:,} and {recipients:,}, 1000 recipients a request"
    )
    for count in (recipients // 10, recipients):
        project = make_project(f"sendgrid-{count}", count, "sendgrid")
        with SendGridDouble(api_key="SG.bench-key", keep_payloads=False) as double:
            elapsed, peak = sendgrid_child(project, double)
            delivered = double.delivered
            requests = len(double.requests)
        assert delivered == count, (delivered, count)
        print(
            f"  {count:>7,} recipients: {requests:4d} requests, {elapsed:6.2f} s wall, "
            f"{count / elapsed:8,.0f} recipients/s, peak RSS {peak / 1024:6.1f} MiB"
        )


def main() -> None:
    """Parse options and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="SMTP messages")
    parser.add_argument("--sendgrid", type=int, default=100_000, help="largest SendGrid list")
    parser.add_argument("--skip-smtp", action="store_true")
    parser.add_argument("--skip-sendgrid", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="SMTP runs per contender (best kept)")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    if not args.skip_smtp:
        bench_smtp(args.messages, args.repeat)
    if not args.skip_sendgrid:
        bench_sendgrid(args.sendgrid)


if __name__ == "__main__":
    main()
