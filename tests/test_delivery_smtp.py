"""`compose send --transport smtp` against real SMTP servers (aiosmtpd, smtp-sink) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from doubles.delivery_project import compose_args, compose_env, make_project, run, send
from doubles.smtp_servers import (
    Capping,
    Dropping,
    Greylisting,
    Recording,
    Refusing,
    Silent,
    free_port,
    smtp_server,
    tls_files,
)

from composer.delivery.tokens import read_token


def smtp_env(server) -> dict[str, str]:
    return {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}


def readers(n: int) -> list[str]:
    return [f"reader{i:04d}@example.org" for i in range(n)]


def log_states(project: Path) -> Counter[str]:
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        return Counter(dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")))


def test_everyone_gets_it_once_over_reused_connections(tmp_path: Path) -> None:
    project = make_project(tmp_path, 40, transport="smtp")
    with smtp_server() as server:
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
        assert server.handler.counts() == Counter(readers(40))
        assert server.handler.connections <= 4  # four connections, each reused
        again = send(project, **smtp_env(server))
        assert again.code == 0, again.stderr
        assert len(server.handler.messages) == 40  # the re-run sent nobody anything
    assert "skipped (already sent): 40" in again.stdout
    message = next(m for m in server.handler.messages if m.rcpt_tos == ["reader0007@example.org"])
    assert "BODY=8BITMIME" in message.mail_options
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    assert parsed["To"] == "Reader 7 <reader0007@example.org>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = str(parsed["List-Unsubscribe"]).split("/unsubscribe/")[1].split(">")[0]
    secret = (project / ".compose" / "secret").read_bytes().strip()
    assert read_token(secret, token) == ("main", "reader0007@example.org")
    assert f"/unsubscribe/{token}" in parsed.get_body(("plain",)).get_content()
    status = run(project, "status", str(project / "issues" / "x.yaml"))
    assert "main: sent 40, failed 0, pending 0, suppressed 0" in status.stdout


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_from_the_environment_and_a_refused_login(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3, transport="smtp")
    login = {"COMPOSE_SMTP_USERNAME": "sender"}
    with smtp_server(auth=("sender", "right-password")) as server:
        good = send(project, COMPOSE_SMTP_PASSWORD="right-password", **login, **smtp_env(server))
        assert good.code == 0, good.stderr
        assert server.handler.counts() == Counter(readers(3))
        (project / ".compose" / "delivery.sqlite").unlink()
        bad = send(project, COMPOSE_SMTP_PASSWORD="wrong-password-xyz", **login, **smtp_env(server))
    assert bad.code == 3
    assert "refused the login of 'sender'" in bad.stderr
    assert "wrong-password-xyz" not in bad.stdout + bad.stderr
    no_password = send(project, **login, **smtp_env(server))
    assert no_password.code == 2 and "COMPOSE_SMTP_PASSWORD" in no_password.stderr


def test_over_starttls_with_a_login_everyone_gets_it_once(tmp_path: Path) -> None:
    # TLS: the next recipient's commands never go behind a message (a TLS write cannot say how
    # much of it went), and replies are read out of whole TLS records.
    total = 30
    project = make_project(tmp_path, total, transport="smtp")
    tls = tls_files(tmp_path)
    env = {
        "SSL_CERT_FILE": str(tls.cert),
        "COMPOSE_SMTP_USERNAME": "sender",
        "COMPOSE_SMTP_PASSWORD": "right-password",
    }
    with smtp_server(Pipelining(delay=0.0), auth=("sender", "right-password"), tls=tls) as server:
        result = send(project, **env, **smtp_env(server))
        assert result.code == 0, result.stderr
        assert server.handler.connections <= 4 * 2  # EHLO again after STARTTLS
    assert server.handler.counts() == Counter(readers(total))
    assert log_states(project) == Counter({"sent": total})
    _whole_messages_only(server)


def test_no_answer_to_the_final_dot_is_unknown_after_the_timeout(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2, transport="smtp", extra_settings="  timeout: 1\n")
    with smtp_server(Silent()) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 0, result.stderr  # nothing retryable is left
    assert "unknown: 2" in result.stdout
    assert server.handler.counts() == Counter(readers(2))  # taken once, never resent
    assert log_states(project) == Counter({"unknown": 2})


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_relay_that_caps_messages_a_connection_gets_a_new_one_at_once(
    tmp_path: Path, pipelining: bool
) -> None:
    # Not a failed attempt of the reader's: no backoff (an hour here), no attempt counted.
    total = 23
    settings = f"  pipelining: {str(pipelining).lower()}\n"
    project = make_project(tmp_path, total, transport="smtp", extra_settings=settings)
    config = project / "newsletter.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("backoff: 0.02", "backoff: 3600"), encoding="utf-8")
    handler = (Capping if not pipelining else CappingPipelining)(per_connection=5)
    with smtp_server(handler) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 0, result.stderr
    assert server.handler.counts() == Counter(readers(total))
    assert server.handler.refused_at_cap >= 1
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        assert set(db.execute("SELECT state, attempts FROM deliveries")) == {("sent", 1)}


def test_greylisting_451_is_retried(tmp_path: Path) -> None:
    project = make_project(tmp_path, 6, transport="smtp")
    with smtp_server(Greylisting(times=2)) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 0, result.stderr
    assert server.handler.counts() == Counter(readers(6))


def test_451_for_ever_fails_with_the_reply_and_a_rerun_retries(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3, transport="smtp", extra_settings="  retries: 2\n")
    with smtp_server(Greylisting(times=None)) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 3, result.stderr
    assert "451 4.7.1 Greylisted" in result.stdout
    assert "3 recipient(s) failed" in result.stderr
    status = run(project, "status", str(project / "issues" / "x.yaml"))
    assert "main: sent 0, failed 3, pending 0" in status.stdout
    assert "failed reader0001@example.org (2 attempts): 451 4.7.1 Greylisted" in status.stdout
    with smtp_server() as server:
        again = send(project, **smtp_env(server))
    assert again.code == 0, again.stderr
    assert server.handler.counts() == Counter(readers(3))


def test_dropped_connections_are_retried(tmp_path: Path) -> None:
    project = make_project(tmp_path, 20, transport="smtp")
    with smtp_server(Dropping(every=3)) as server:
        result = send(project, **smtp_env(server))
    assert result.code == 0, result.stderr
    assert server.handler.drops > 0
    assert server.handler.counts() == Counter(readers(20))


def test_a_5xx_marks_the_recipient_refused_suppresses_it_and_never_retries(tmp_path: Path) -> None:
    project = make_project(tmp_path, 4, transport="smtp")
    with smtp_server(Refusing(refused={"reader0002@example.org"})) as server:
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr  # a permanent refusal alone is not exit 3
        assert "refused reader0002@example.org: 550 5.1.1 User unknown" in result.stdout
        assert "refused: 1" in result.stdout and "left to retry: none" in result.stdout
        assert sorted(server.handler.recipients()) == [r for r in readers(4) if "0002" not in r]
        again = send(project, **smtp_env(server))  # nothing left: the refused one is final
        assert again.code == 0 and "sent: 0" in again.stdout
        assert "skipped (already sent): 3" in again.stdout and "suppressed: 1" in again.stdout
    assert server.handler.refusals == Counter({"reader0002@example.org": 1})
    suppressions = (project / "subscribers" / "suppressions.csv").read_text(encoding="utf-8")
    assert "reader0002@example.org,hard bounce (smtp: 550 5.1.1 User unknown)," in suppressions


def test_test_copies_go_only_to_the_test_address_and_are_not_recorded(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="smtp")
    with smtp_server() as server:
        result = send(project, "--test", "me@example.net", **smtp_env(server))
    assert result.code == 0, result.stderr
    assert server.handler.recipients() == ["me@example.net"]
    assert not (project / ".compose" / "delivery.sqlite").exists()


def test_dry_run_renders_everything_and_sends_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="smtp")
    with smtp_server() as server:
        result = send(project, "--dry-run", **smtp_env(server))
    assert result.code == 0, result.stderr
    assert "rendered 5 message(s)" in result.stdout
    assert server.handler.messages == [] and server.handler.connections == 0


def test_without_a_terminal_and_without_yes_it_refuses(tmp_path: Path) -> None:
    project = make_project(tmp_path, 5, transport="smtp")
    with smtp_server() as server:
        result = run(
            project, "send", str(project / "issues/x.yaml"), "--list", "main", **smtp_env(server)
        )
    assert result.code == 2
    assert "--yes" in result.stderr
    assert server.handler.messages == []


@dataclass
class Slow(Recording):
    """Takes a moment over each message, so a send can be caught mid-way."""

    delay: float = 0.01

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def _start_and_wait(project: Path, server, at_least: int, *first: str) -> subprocess.Popen:
    child = subprocess.Popen(
        compose_args(
            project, *first, "send", str(project / "issues/x.yaml"), "--list", "main", "--yes"
        ),
        env=compose_env(**smtp_env(server)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(server.handler.messages) < at_least:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the send never got going"
        time.sleep(0.005)
    return child


def test_kill_9_mid_send_then_rerun_loses_nobody(tmp_path: Path) -> None:
    total = 300
    project = make_project(tmp_path, total, transport="smtp")
    with smtp_server(Slow()) as server:
        child = _start_and_wait(project, server, at_least=60)
        child.kill()  # SIGKILL: no handler runs, no cleanup
        child.communicate()
        before = Counter(server.handler.recipients())
        assert 60 <= sum(before.values()) < total, "the crash should land mid-send"
        with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
            in_flight = {
                e for (e,) in db.execute("SELECT email FROM deliveries WHERE state='sending'")
            }
        assert len(in_flight) <= 4  # at most one message per connection is uncertain
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
    counts = server.handler.counts()
    assert set(counts) == set(readers(total))  # everyone got it
    extra = {address for address, n in counts.items() if n > 1}
    assert extra <= in_flight  # copies beyond one only inside the in-flight window
    assert all(n <= 2 for n in counts.values())
    assert log_states(project) == Counter({"sent": total})
    print(f"kill -9: {len(in_flight)} in flight, {len(extra)} duplicates after resume")


def test_ctrl_c_finishes_in_flight_exits_130_and_resumes_without_duplicates(tmp_path: Path) -> None:
    total = 300
    project = make_project(tmp_path, total, transport="smtp")
    with smtp_server(Slow()) as server:
        child = _start_and_wait(project, server, at_least=40)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        assert child.returncode == 130, (out, err)
        assert "interrupted" in err
        states = log_states(project)
        assert states["sending"] == 0  # everything in flight was recorded
        assert states["sent"] == len(server.handler.messages) < total
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
    assert server.handler.counts() == Counter(readers(total))  # exactly once each


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on 127.0.0.1:{port}"
        time.sleep(0.05)


@pytest.mark.skipif(shutil.which("smtp-sink") is None, reason="needs Postfix's smtp-sink")
def test_pipelining_against_postfix_smtp_sink(tmp_path: Path) -> None:
    project = make_project(tmp_path, 30, transport="smtp")
    # smtp-sink drops privileges to nobody, who cannot enter pytest's private tmp folders.
    dump = Path(tempfile.mkdtemp(prefix="compose-sink-"))
    dump.chmod(0o777)
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(
        ["smtp-sink", *user, "-d", f"{dump}/%H%M%S.", f"127.0.0.1:{port}", "16"]
    )
    try:
        _wait_for_port(port)
        result = send(project, COMPOSE_SMTP_HOST="127.0.0.1", COMPOSE_SMTP_PORT=str(port))
        assert result.code == 0, result.stderr
        deadline = time.monotonic() + 10
        while len(list(dump.iterdir())) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        dumps = [path.read_bytes() for path in dump.iterdir()]
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(dump, ignore_errors=True)
    rcpts = sorted(
        line.split(b"<")[1].split(b">")[0].decode()
        for d in dumps
        for line in d.splitlines()
        if line.startswith(b"X-Rcpt-Args:")
    )
    assert rcpts == readers(30)
    assert all(b"X-Mail-Args: <bulletin@example.org> BODY=8BITMIME" in d for d in dumps)
    # The sink undoes dot-stuffing: the CSS lines that start with a dot arrive intact.
    assert all(b"\n.mj-outlook-group-fix" in d for d in dumps)


def test_sigterm_finishes_in_flight_exits_143_and_resumes_without_duplicates(
    tmp_path: Path,
) -> None:
    total = 300
    project = make_project(tmp_path, total, transport="smtp")
    with smtp_server(Slow()) as server:
        child = _start_and_wait(project, server, at_least=40)
        child.send_signal(signal.SIGTERM)  # what systemd and kill send
        out, err = child.communicate(timeout=60)
        assert child.returncode == 143, (out, err)
        assert "terminated" in err and "Traceback" not in err
        states = log_states(project)
        assert states["sending"] == 0  # everything in flight was recorded
        assert states["sent"] == len(server.handler.messages) < total
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
    counts = server.handler.counts()
    duplicates = sum(n - 1 for n in counts.values())
    print(f"SIGTERM: {duplicates} duplicates after resume")
    assert counts == Counter(readers(total)) and duplicates == 0  # exactly once each


@pytest.mark.parametrize(("number", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_quits_at_once_with_its_code_not_by_dying(
    tmp_path: Path, number: signal.Signals, code: int
) -> None:
    total = 40
    project = make_project(tmp_path, total, transport="smtp")
    with smtp_server(Slow(delay=1.5)) as server:  # four messages in flight for 1.5 s each
        child = _start_and_wait(project, server, at_least=4)
        child.send_signal(number)
        time.sleep(0.3)
        child.send_signal(number)  # before the in-flight messages end
        out, err = child.communicate(timeout=30)
        assert child.returncode == code, (out, err)  # not -2 / -15: death by signal
        assert "Traceback" not in err
        time.sleep(1.6)  # let the server finish what it was given
        in_flight = {
            e
            for (e,) in sqlite3.connect(project / ".compose" / "delivery.sqlite").execute(
                "SELECT email FROM deliveries WHERE state='sending'"
            )
        }
        assert len(in_flight) <= 4
        server.handler.delay = 0.0
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
    counts = server.handler.counts()
    assert set(counts) == set(readers(total))
    duplicates = {address for address, n in counts.items() if n > 1}
    print(f"second {number.name}: {len(in_flight)} in flight, {len(duplicates)} duplicates")
    assert duplicates <= in_flight


def test_traceback_never_changes_the_exit_code(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2, transport="smtp")
    env = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(free_port())}
    plain = send(project, **env)
    traced = run(project, "--traceback", "send", str(project / "issues/x.yaml"), "--list", "main",
                 "--yes", **env)  # fmt: skip
    assert plain.code == traced.code == 3
    assert "Traceback" in traced.stderr and "cannot connect to smtp server" in traced.stderr
    with smtp_server(Slow()) as server:
        big = make_project(tmp_path / "big", 300, transport="smtp")
        child = _start_and_wait(big, server, 40, "--traceback")
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 143, (out, err)


@dataclass
class Pipelining(Slow):
    """Offers PIPELINING (aiosmtpd reads pipelined commands in order, but does not say so)."""

    refused: frozenset[str] = frozenset()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass
class CappingPipelining(Capping):
    """Capping, offering PIPELINING: the 421 answers commands sent behind a message."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


def _whole_messages_only(server) -> None:
    # A DATA abandoned by closing the line is never delivered, empty or with a command as text.
    for message in server.handler.messages:
        assert len(message.rcpt_tos) == 1 and b"QUIT" not in message.data
        assert message.data.rstrip().endswith(b"--"), message.data[-200:]
        # Made ahead while the previous reply came: still the message of this recipient.
        head = message.data.split(b"\r\n\r\n", 1)[0]
        assert f"<{message.rcpt_tos[0]}>".encode() in head


def test_the_next_recipients_commands_go_behind_each_message_and_everyone_gets_it_once(
    tmp_path: Path,
) -> None:
    total = 60
    project = make_project(tmp_path, total, transport="smtp")
    handler = Pipelining(delay=0.0, refused=frozenset({"reader0013@example.org"}))
    with smtp_server(handler) as server:
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
        assert server.handler.connections <= 4  # a refusal amid primed commands keeps the line
        again = send(project, **smtp_env(server))
        assert again.code == 0, again.stderr
    expected = Counter(r for r in readers(total) if r != "reader0013@example.org")
    assert server.handler.counts() == expected
    assert log_states(project) == Counter({"sent": total - 1, "refused": 1})
    _whole_messages_only(server)


def test_ctrl_c_with_pipelined_commands_in_flight_sends_nothing_twice(tmp_path: Path) -> None:
    total = 300
    project = make_project(tmp_path, total, transport="smtp")
    with smtp_server(Pipelining()) as server:
        child = _start_and_wait(project, server, at_least=40)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
        assert child.returncode == 130, (out, err)
        states = log_states(project)
        assert states["sending"] == 0
        assert states["sent"] == len(server.handler.messages) < total
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
    assert server.handler.counts() == Counter(readers(total))  # exactly once each
    _whole_messages_only(server)


def test_kill_9_with_pipelined_commands_keeps_the_window_at_one_message_a_connection(
    tmp_path: Path,
) -> None:
    total = 300
    project = make_project(tmp_path, total, transport="smtp")
    with smtp_server(Pipelining()) as server:
        child = _start_and_wait(project, server, at_least=60)
        child.kill()
        child.communicate()
        with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
            in_flight = {
                e for (e,) in db.execute("SELECT email FROM deliveries WHERE state='sending'")
            }
        assert len(in_flight) <= 4
        result = send(project, **smtp_env(server))
        assert result.code == 0, result.stderr
    counts = server.handler.counts()
    assert set(counts) == set(readers(total))
    assert {a for a, n in counts.items() if n > 1} <= in_flight
    assert log_states(project) == Counter({"sent": total})
