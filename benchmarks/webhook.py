"""Benchmark: SendGrid Event Webhook throughput, events applied per second.

    python benchmarks/webhook.py [--batches N] [--runs K] [--readers R]

For each run, on a fresh copy of a small project whose delivery log holds a send of issue `x`
to R readers (default 20,000):

  * starts `python -m composer --project DIR serve` with COMPOSE_SECRET and
    SENDGRID_WEBHOOK_PUBLIC_KEY (a P-256 key made for the run) in its environment;
  * prepares N batches (default 50) of 1,000 events each, as SendGrid sends them (delivered,
    deferred, open, click, bounces, spam reports, unsubscribes; each with our custom args:
    issue, list, delivery id) and signs each as SendGrid does (ECDSA over timestamp + body);
  * POSTs them to /webhooks/sendgrid over one keep-alive connection, one after the other, and
    counts the events the server says it applied.

Side by side, the same batches applied in this process without HTTP (verify, sort, apply):
the floor of what the server can do. Prints events/s of each run and the medians.
Goal: >= 20,000 events/s applied. It prints figures and never fails on a missed goal.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from local_server import free_port, stop, wait_healthy

DATA = Path(__file__).resolve().parent / ".data" / "webhook"
SECRET = "benchmark-secret-0123456789abcdef"
GOAL = 20_000
BATCH = 1000
NEWSLETTER_YAML = """\
# A minimal project for benchmarks/webhook.py.
name: Webhook Bulletin
language: en
archive_url: https://news.example.org/
postal_address: "1 Test Street, 1000 Testville"
from: {name: Webhook Bulletin, email: bulletin@example.org}
transport:
  kind: sendgrid
"""
# (SendGrid event, extra fields, share of the events)
MIX = [
    ("delivered", {}, 60),
    ("deferred", {"response": "451 4.7.1 greylisted"}, 10),
    ("open", {}, 12),
    ("click", {"url": "https://www.example.org/report"}, 10),
    ("bounce", {"type": "blocked", "reason": "421 4.2.2 mailbox full"}, 3),
    ("bounce", {"type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 unknown"}, 2),
    ("spamreport", {}, 1),
    ("unsubscribe", {}, 2),
]


def make_project(root: Path, readers: int) -> Path:
    """A project whose delivery log holds a send of `x` to `readers` addresses."""
    from composer.delivery.log import SENT, DeliveryLog, Outcome, SendRecord

    if root.exists():
        shutil.rmtree(root)
    (root / "subscribers").mkdir(parents=True)
    (root / "newsletter.yaml").write_text(NEWSLETTER_YAML, encoding="utf-8")
    (root / ".compose").mkdir()
    emails = [f"reader{n:06d}@example.org" for n in range(readers)]
    with DeliveryLog(root / ".compose" / "delivery.sqlite") as log:
        log.begin_send("x", "main", SendRecord("Subject", "full", "0" * 16, "sendgrid"))
        log.enqueue("x", "main", emails, "sendgrid")
        for start in range(0, readers, 5000):
            chunk = emails[start : start + 5000]
            log.record("x", [Outcome(e, SENT) for e in chunk])
    return root


def make_batches(count: int, readers: int) -> list[bytes]:
    """`count` JSON bodies of BATCH events each, with our custom args as SendGrid returns them."""
    from composer.events.ids import expected_id

    secret = SECRET.encode()
    kinds = [(name, extra) for name, extra, share in MIX for _ in range(share)]
    ids: dict[str, str] = {}
    bodies = []
    now = int(time.time())
    for b in range(count):
        events = []
        for i in range(BATCH):
            n = (b * BATCH + i) * 7919 % readers
            email = f"reader{n:06d}@example.org"
            if email not in ids:
                ids[email] = expected_id(secret, "x", "main", email)
            name, extra = kinds[(b * BATCH + i) % len(kinds)]
            events.append({
                "email": email, "timestamp": now, "event": name, "sg_event_id": f"ev-{b}-{i}",
                "sg_message_id": f"msg{n}.filter0001", "issue": "x", "list": "main",
                "delivery": ids[email], **extra,
            })  # fmt: skip
        bodies.append(json.dumps(events, separators=(",", ":")).encode())
    return bodies


def sign(key: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def public_key(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def over_http(project: Path, bodies: list[bytes], key: ec.EllipticCurvePrivateKey) -> float:
    """Events applied per second by `compose serve`."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COMPOSE_SECRET": SECRET, "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key(key)}
    command = [sys.executable, "-m", "composer", "--project", str(project), "serve",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with (project / "server.log").open("wb") as log:
        server = subprocess.Popen(command, env=env, cwd=project, stdout=log, stderr=log)
        try:
            wait_healthy(base, server)
            signed = [(body, sign(key, body)) for body in bodies]
            applied = 0
            with httpx.Client(base_url=base, timeout=120) as client:
                started = time.perf_counter()
                for body, headers in signed:
                    response = client.post("/webhooks/sendgrid", content=body, headers=headers)
                    response.raise_for_status()
                    applied += response.json()["applied"]
                wall = time.perf_counter() - started
        finally:
            stop(server)
    if applied != len(bodies) * BATCH:
        print(f"  warning: {applied} applied of {len(bodies) * BATCH}")
    return applied / wall


def in_process(project: Path, bodies: list[bytes], key: ec.EllipticCurvePrivateKey) -> float:
    """Events applied per second by the same code without HTTP."""
    from composer.events.apply import apply_events
    from composer.events.deliveries import sent_issues
    from composer.events.sendgrid_events import load_verifier, parse_batch, sort_events, verify
    from composer.events.store import EventStore
    from composer.project import load_project

    loaded = load_project(project)
    verifier = load_verifier(public_key(key))
    signed = [(body, sign(key, body)) for body in bodies]
    applied = 0
    with EventStore.for_state_dir(project / ".compose") as store:
        started = time.perf_counter()
        for body, headers in signed:
            signature, stamp = list(headers.values())[:2]
            verify(verifier, body, signature, stamp)
            issues = sent_issues(project / ".compose")
            sorted_ = sort_events(parse_batch(body), SECRET.encode(), issues, False)
            applied += apply_events(loaded, store, sorted_.events, sorted_.tallies).applied
        wall = time.perf_counter() - started
    return applied / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=50, help="batches of 1,000 events")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--readers", type=int, default=20_000)
    args = parser.parse_args()
    os.environ["COMPOSE_SECRET"] = SECRET
    bodies = make_batches(args.batches, args.readers)
    print(f"{args.batches} signed batches of {BATCH} events, {args.readers:,} readers; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    http_rates, floor_rates = [], []
    for run in range(1, args.runs + 1):
        key = ec.generate_private_key(ec.SECP256R1())
        http_rates.append(over_http(make_project(DATA / f"http-{run}", args.readers), bodies, key))
        floor_rates.append(
            in_process(make_project(DATA / f"floor-{run}", args.readers), bodies, key)
        )
        print(f"run {run}: compose serve {http_rates[-1]:,.0f} events/s; "
              f"in process (no HTTP) {floor_rates[-1]:,.0f} events/s")  # fmt: skip
    median = statistics.median(http_rates)
    print(f"median of {args.runs}: compose serve {median:,.0f} events/s, in process "
          f"{statistics.median(floor_rates):,.0f} events/s; goal >= {GOAL:,}: "
          f"{'met' if median >= GOAL else 'missed'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
