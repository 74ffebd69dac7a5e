"""Sends that could not finish, hung or duplicated: dead addresses, full disks, ambiguous replies,
issue files sharing a name. Real servers (aiosmtpd, the SendGrid double) and real full disks."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from doubles.delivery_project import compose_args, compose_env, make_project, run, send
from doubles.sendgrid_api import SendGridDouble
from doubles.smtp_servers import DroppingAfterData, Recording, Refusing, smtp_server
from filelock import FileLock

KEY = "SG.faults-test-key"


def smtp_env(server) -> dict[str, str]:
    return {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}


def sendgrid_env(double: SendGridDouble) -> dict[str, str]:
    return {"SENDGRID_API_KEY": KEY, "COMPOSE_SENDGRID_HOST": double.url}


def readers(n: int) -> list[str]:
    return [f"reader{i:04d}@example.org" for i in range(n)]


def log_states(project: Path) -> Counter[str]:
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        return Counter(dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")))


def in_state(project: Path, state: str) -> set[str]:
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        return {e for (e,) in db.execute("SELECT email FROM deliveries WHERE state=?", (state,))}


def status(project: Path) -> str:
    return run(project, "status", str(project / "issues" / "x.yaml")).stdout


# 1. Dead addresses ---------------------------------------------------------------------------


def test_thirty_dead_addresses_first_do_not_block_the_send(tmp_path: Path) -> None:
    dead = set(readers(30))
    project = make_project(tmp_path, 40, transport="smtp")
    with smtp_server(Refusing(refused=dead)) as server:
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr  # no "25 failures in a row": refusals are final
        assert "stopped after" not in result.stdout + result.stderr
        assert server.handler.counts() == Counter(readers(40)[30:])
        assert "refused: 30" in result.stdout and "left to retry: none" in result.stdout
        assert "hard bounces added to the suppressions: 30" in result.stdout
        again = send(project, **smtp_env(server))
        assert again.code == 0, again.stderr
        assert "sent: 0" in again.stdout and "suppressed: 30" in again.stdout
    assert set(server.handler.refusals) == dead and set(server.handler.refusals.values()) == {1}
    suppressions = (project / "subscribers" / "suppressions.csv").read_text(encoding="utf-8")
    assert suppressions.count("hard bounce (smtp: 550 5.1.1 User unknown)") == 30
    shown = status(project)
    assert "refused 30" in shown
    assert "refused reader0000@example.org (1 attempt): 550 5.1.1 User unknown" in shown


@dataclass
class Mixed(Recording):
    """552 for some addresses, 451 for ever for others, 250 for the rest."""

    full: set[str] = field(default_factory=set)
    greylisted: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.full:
            return "552 5.2.2 Mailbox full"
        if address in self.greylisted:
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_exit_3_only_while_something_retryable_is_left(tmp_path: Path) -> None:
    project = make_project(tmp_path, 6, transport="smtp", extra_settings="  retries: 2\n")
    handler = Mixed(full={"reader0001@example.org"}, greylisted={"reader0004@example.org"})
    with smtp_server(handler) as server:
        first = send(project, **smtp_env(server))
        assert first.code == 3, first.stderr  # the 451 is left to retry
        assert "1 recipient(s) failed temporarily" in first.stderr
        assert "left to retry: 1 (temporary failures)" in first.stdout
        assert "refused reader0001@example.org: 552 5.2.2 Mailbox full" in first.stdout
        handler.greylisted.clear()
        second = send(project, **smtp_env(server))
    assert second.code == 0, second.stderr
    assert "sent: 1" in second.stdout and "left to retry: none" in second.stdout
    assert server.handler.counts() == Counter(r for r in readers(6) if "0001" not in r)
    assert "main: sent 5, failed 0, pending 0, suppressed 1, refused 1, unknown 0" in status(
        project
    )


@dataclass
class NoRelay(Recording):
    """Refuses every recipient as Postfix does for a client it will not relay for."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return f"554 5.7.1 <{address}>: Relay access denied"


def test_a_refusal_to_relay_stops_the_send_and_suppresses_nobody(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="smtp")
    with smtp_server(NoRelay()) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 3
    assert "does not relay for this sender" in result.stderr
    assert not (project / "subscribers" / "suppressions.csv").exists()
    assert "sent 0, failed 0, pending 5" in status(project)


def test_an_unknown_user_in_a_relay_table_is_a_hard_bounce_not_a_relay_refusal(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, 3, transport="smtp")
    reply = "550 5.1.1 Recipient address rejected: User unknown in relay recipient table"
    with smtp_server(Refusing(refused={"reader0001@example.org"}, reply=reply)) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 0, result.stderr
    assert server.handler.counts() == Counter(
        {"reader0000@example.org": 1, "reader0002@example.org": 1}
    )
    assert "refused: 1" in result.stdout


# 2. A full disk ends the send at once, releases the lock, and the next run resumes ----------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` mounted at `path` (skips when this machine cannot mount)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem holding `folder` is full; returns it (delete to free)."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                out.write(block)
    return filler


def test_a_full_disk_stops_the_log_cleanly_and_it_can_be_written_again(tmp_path: Path) -> None:
    from composer.delivery.log import DeliveryLog, Outcome
    from composer.errors import SendAborted

    with small_tmpfs(tmp_path / "state", "512k") as state:
        log = DeliveryLog(state / "delivery.sqlite")
        try:
            log.enqueue("x", "main", ["a@x.org", "b@x.org"], "smtp")
            filler = fill(state)
            with pytest.raises(SendAborted, match="cannot be written: disk full at"):
                for n in range(1000):  # the WAL grows a page at a time until there is none
                    log.enqueue("x", "main", [f"{n}-{'y' * 200}@x.org" for _ in range(20)], "smtp")
            filler.unlink()
            # The failed transaction was rolled back: the same connection works again.
            log.record("x", [Outcome("a@x.org", "sent")])
            assert log.states("x", ["a@x.org"]) == {"a@x.org": "sent"}
        finally:
            log.close()


@dataclass
class Slow(Recording):
    delay: float = 0.01

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def _start(project: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        compose_args(project, "send", str(project / "issues/x.yaml"), "--list", "main", "--yes",
                     *extra),
        env=compose_env(**env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def test_a_full_disk_under_the_delivery_log_ends_the_send_and_releases_the_lock(
    tmp_path: Path,
) -> None:
    total = 400
    project = make_project(tmp_path, total, transport="smtp")
    with small_tmpfs(project / ".compose", "4m") as state, smtp_server(Slow()) as server:
        child = _start(project, smtp_env(server))
        deadline = time.monotonic() + 60
        while len(server.handler.messages) < 40:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the send never got going"
            time.sleep(0.005)
        filler = fill(state)
        try:
            out, err = child.communicate(timeout=30)  # it used to wait in worker.join for ever
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        assert child.returncode == 1, (out, err)
        lines = [line for line in err.splitlines() if "cannot be written" in line]
        assert len(lines) == 1 and "the delivery log cannot be written: disk full at" in lines[0]
        assert "delivery.sqlite" in lines[0] and "Traceback" not in err
        lock = FileLock(str(state / "send.lock"))
        lock.acquire(timeout=0)  # released
        lock.release()
        filler.unlink()
        in_flight = in_state(project, "sending")
        assert len(in_flight) <= 4  # one message per connection
        delivered_before = len(server.handler.messages)
        assert delivered_before < total
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
        states = log_states(project)
    counts = server.handler.counts()
    assert set(counts) == set(readers(total))
    duplicates = {address for address, n in counts.items() if n > 1}
    assert duplicates <= in_flight and all(n <= 2 for n in counts.values())
    print(f"full disk: {len(in_flight)} in flight, {len(duplicates)} duplicates after resume")
    assert states == Counter({"sent": total})


def test_a_full_disk_under_the_outbox_ends_the_send_with_one_line(tmp_path: Path) -> None:
    total = 200
    project = make_project(tmp_path, total)
    with small_tmpfs(project / "outbox", "512k") as outbox:
        result = send(project)  # its process timeout is the hang guard; no latency bound here
        assert result.code == 1, result.stdout + result.stderr
        assert "internal error" not in result.stderr
        assert "the outbox cannot be written: disk full at" in result.stderr
        written = len(list((outbox / "x").iterdir()))
        assert 0 < written < total
        subprocess.run(["mount", "-o", "remount,size=64m", str(outbox)], check=True)
        again = send(project)
        assert again.code == 0, again.stderr
        assert len(list((outbox / "x").iterdir())) == total
    assert log_states(project) == Counter({"sent": total})


# 3. Ambiguous outcomes are `unknown`: reported, never resent unless asked ------------------


def test_smtp_drop_after_data_is_unknown_and_never_resent_unasked(tmp_path: Path) -> None:
    project = make_project(tmp_path, 6, transport="smtp")
    with smtp_server(DroppingAfterData(times=1)) as server:
        first = send(project, **smtp_env(server))
        assert first.code == 0, first.stderr  # nothing retryable is left
        assert server.handler.counts() == Counter(readers(6))  # one copy each, not 3
        assert "unknown: 6" in first.stdout and "--retry-unknown" in first.stdout
        assert "6 recipient(s) with an unknown outcome" in first.stderr
        again = send(project, **smtp_env(server))
        assert again.code == 0 and "sent: 0" in again.stdout
        assert server.handler.counts() == Counter(readers(6))
        shown = status(project)
        assert "unknown 6" in shown and "unknown reader0003@example.org (1 attempt)" in shown
        retried = send(project, "--retry-unknown", **smtp_env(server))
        assert retried.code == 0, retried.stderr
        assert "sent: 6" in retried.stdout
    assert server.handler.counts() == Counter({r: 2 for r in readers(6)})  # the officer chose
    assert log_states(project) == Counter({"sent": 6})


def test_sendgrid_202_after_the_timeout_is_unknown_not_a_resent_batch(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, 300, transport="sendgrid", extra_settings="  timeout: 0.5\n  retries: 4\n"
    )
    with SendGridDouble(api_key=KEY) as double:
        double.slow_202 = 1.5
        result = send(project, **sendgrid_env(double))
        assert result.code == 0, result.stderr
        assert "unknown: 300" in result.stdout
        assert len(double.recipients()) == 300  # one request, never repeated
        double.slow_202 = 0.0
        again = send(project, **sendgrid_env(double))
        assert again.code == 0 and len(double.recipients()) == 300
    assert log_states(project) == Counter({"unknown": 300})


def test_sendgrid_reset_after_accepting_is_unknown_then_retried_on_request(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="sendgrid")
    with SendGridDouble(api_key=KEY) as double:
        double.reset_after_accept = 1
        first = send(project, **sendgrid_env(double))
        assert first.code == 0, first.stderr
        assert sorted(double.recipients()) == readers(5)
        assert "unknown: 5" in first.stdout
        retried = send(project, "--retry-unknown", **sendgrid_env(double))
    assert retried.code == 0, retried.stderr
    assert Counter(double.recipients()) == Counter({r: 2 for r in readers(5)})
    assert log_states(project) == Counter({"sent": 5})


def test_sendgrid_413_splits_the_batch(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1000, transport="sendgrid")
    with SendGridDouble(api_key=KEY) as double:
        double.too_large_over = 300
        result = send(project, **sendgrid_env(double))
    assert result.code == 0, result.stderr
    assert sorted(double.recipients()) == readers(1000)  # everyone, once
    statuses = Counter(r.status for r in double.requests)
    assert statuses[413] == 3 and statuses[202] == 4  # 1000 -> 2 x 500 -> 4 x 250


# 4. An issue is its own, not its file name's -------------------------------------------------


def _other_issue(project: Path, folder: str, subject: str) -> Path:
    source = (project / "issues" / "x.yaml").read_text(encoding="utf-8")
    target = project / folder / "x.yaml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(
        source.replace(
            'subject: "Test Bulletin — Vol. 1: Grüße & <news>"', f'subject: "{subject}"'
        ),
        encoding="utf-8",
    )
    return target


def test_a_different_issue_with_the_same_file_name_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5)
    assert send(project).code == 0
    other = _other_issue(project, "other", "Another issue entirely")
    before = {p.name: p.stat().st_mtime_ns for p in (project / "outbox" / "x").iterdir()}
    refused = run(project, "send", str(other), "--list", "main", "--yes")
    assert refused.code == 2, refused.stdout + refused.stderr
    assert "issues/x.yaml" in refused.stderr and "other/x.yaml" in refused.stderr
    assert "nothing was sent" in refused.stderr
    after = {p.name: p.stat().st_mtime_ns for p in (project / "outbox" / "x").iterdir()}
    assert before == after
    shown = run(project, "status", str(other)).stdout
    assert "not sent" in shown and "issues/x.yaml" in shown


def test_the_same_file_edited_still_resumes(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5)
    assert send(project).code == 0
    issue = project / "issues" / "x.yaml"
    issue.write_text(issue.read_text(encoding="utf-8").replace("Grüße", "Grüsse"), encoding="utf-8")
    (project / "subscribers" / "main.csv").open("a").write("late@example.org,Late,Serbia\n")
    again = send(project)
    assert again.code == 0, again.stderr
    assert "sent: 1" in again.stdout and "skipped (already sent): 5" in again.stdout
    assert "changed since this send started" in again.stderr


_V1_SCHEMA = """
CREATE TABLE deliveries (
    issue TEXT NOT NULL, list TEXT NOT NULL, email TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, provider_id TEXT, transport TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, sent_at REAL,
    PRIMARY KEY (issue, list, email)
) WITHOUT ROWID;
CREATE TABLE sends (
    issue TEXT NOT NULL, list TEXT NOT NULL, subject TEXT NOT NULL, mode TEXT NOT NULL,
    content_sha TEXT NOT NULL, transport TEXT NOT NULL, segment TEXT,
    started_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (issue, list)
);
"""


def test_a_log_of_the_earlier_release_is_migrated_in_place(tmp_path: Path) -> None:
    project = make_project(tmp_path, 4)
    (project / ".compose").mkdir()
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        db.executescript(_V1_SCHEMA)
        rows = [("x", "main", e, "sent", 1, None, "250 ok", "outbox", 1.0, 1.0, 1.0)
                for e in readers(3)]  # fmt: skip
        rows.append(("x", "main", "gone@example.org", "failed", 4, "451 later", None, "smtp",
                     1.0, 1.0, None))  # fmt: skip
        db.executemany("INSERT INTO deliveries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute(
            "INSERT INTO sends VALUES ('x', 'main', ?, 'full', 'abc', 'outbox', NULL, 1, 1)",
            ("Test Bulletin — Vol. 1: Grüße & <news>",),
        )
    other = _other_issue(project, "other", "Another issue entirely")
    refused = run(project, "send", str(other), "--list", "main", "--yes")
    assert refused.code == 2 and "nothing was sent" in refused.stderr
    result = send(project)  # the same subject: the record is this file's
    assert result.code == 0, result.stderr
    assert "sent: 1" in result.stdout and "skipped (already sent): 3" in result.stdout
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        kept = dict(db.execute("SELECT email, state FROM deliveries"))
        source = db.execute("SELECT source FROM sends").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
    assert kept == {**dict.fromkeys(readers(4), "sent"), "gone@example.org": "failed"}
    assert source == "issues/x.yaml" and version == 3


def test_fill_reports_a_full_disk(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "tiny", "64k") as tiny:
        fill(tiny)
        with pytest.raises(OSError) as full:
            (tiny / "more").write_bytes(b"x" * 8192)
        assert full.value.errno == errno.ENOSPC
