"""SMTP: several reused connections driven by one thread, 8BITMIME when offered, and PIPELINING
(RFC 2920)."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import re
import smtplib
import socket
import ssl
import threading
from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from composer.delivery.dkim import dkim_signer
from composer.delivery.log import PENDING, SENT, Outcome
from composer.delivery.message import MessageTemplate
from composer.delivery.pool import (
    READ,
    TAKE,
    TAKE_NOW,
    WRITE,
    Commit,
    Fatal,
    Feed,
    Pool,
    Request,
    Sleep,
    Talk,
)
from composer.delivery.settings import Settings
from composer.delivery.smtp_session import LoginInClear, NoStartTLS, connect, start_session
from composer.delivery.transports.base import (
    Envelope,
    FatalTransportError,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
    backoff,
    final_outcome,
    message_for,
)

# "554 5.7.1 <a@b>: Relay access denied", "550 5.7.1 Unable to relay": a policy refusal to relay
# (5.7.x, or no enhanced code). Not "550 5.1.1 User unknown in relay recipient table": that one
# is about the address.
_RELAY_DENIED = re.compile(
    r"^5\d\d (?:5\.7\.\d{1,3} |(?!\d\.\d{1,3}\.\d{1,3}\b)).*\brelay", re.IGNORECASE
)
_DISCONNECTS = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, socket.timeout)

_SIGNING_THREADS = 2
_SIGN_AHEAD = 64  # messages signed ahead of the connections (RSA)
_MAX_LINE = 8192  # as smtplib: a reply line longer than this is not SMTP
_TLS_RECORD = 16384  # the most one TLS write takes (a record's worth)


class _LineEnded(Exception):
    """A server ended a connection it had delivered on before this transaction's content went
    (many cap messages a connection: 421 at the next MAIL FROM): a new one, at once."""


class _SentThenLost(Exception):
    """The whole message went, its final dot included, and then the connection broke."""


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def helo_name(sender_domain: str) -> str:
    """The EHLO name: this host's name when it is qualified, else the sender's domain (no DNS)."""
    name = socket.gethostname()
    return name if "." in name else sender_domain


class SMTPConversation:
    """One SMTP connection of the pool (composer/delivery/pool.py), opened on demand and reused
    for message after message; talk() is its whole life, one recipient after another."""

    def __init__(self, transport: SMTPTransport, pool: Pool, stop: threading.Event) -> None:
        self.transport, self.pool, self.stop = transport, pool, stop
        self.settings = transport.settings
        self.host, self.port = transport.host, transport.port
        self.sender = transport.template.newsletter.from_.email
        self.smtp: smtplib.SMTP | None = None
        self.sock: socket.socket | None = None
        self.pipelining = self.eight_bit = self.utf8 = self.ahead = False
        self.connect_failures = 0
        self.delivered_here = 0  # messages this connection has delivered
        # The next recipient, taken but not marked: its MAIL, RCPT and DATA went out behind the
        # last message's final dot (RFC 2920: message content may start a group), their
        # replies not read yet.
        self.primed: Envelope | None = None
        self._replies: deque[tuple[int, bytes] | BaseException] = deque()
        self._lines: list[bytes] = []
        self._buffer = b""

    # What the pool reads for this connection.

    def receive(self, data: bytes) -> None:
        if not data:
            self._replies.append(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"))
            return
        buffer = self._buffer + data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = buffer[start : end + 1]
            start = end + 1
            self._lines.append(line[4:].strip())
            if line[3:4] != b"-":  # the last line of a reply
                try:
                    code = int(line[:3])
                except ValueError:
                    code = -1
                self._replies.append((code, b"\n".join(self._lines)))
                self._lines = []
        self._buffer = buffer[start:]
        if len(self._buffer) > _MAX_LINE:  # not SMTP: read as a broken line
            self._buffer = b""
            self._replies.append(smtplib.SMTPServerDisconnected("a reply line too long"))

    def reply(self) -> tuple[int, bytes] | BaseException | None:
        return self._replies.popleft() if self._replies else None

    # The conversation.

    def talk(self) -> Talk:
        outcome: Outcome | None = None
        while True:
            envelope = self.primed
            if envelope is not None and self.stop.is_set():
                self._drop()  # its DATA may be open: only closing abandons it safely
                envelope = None
            if envelope is None and outcome is not None:
                envelope = yield TAKE_NOW
                if envelope is None:  # never hold an outcome back while waiting for work
                    yield Commit([outcome], ())
                    outcome = None
            if envelope is None:
                envelope = yield TAKE
                if envelope is None:
                    break
            # Its mark, with the last outcome, committed before anything of its content goes.
            yield Commit([outcome] if outcome is not None else [], [envelope])
            outcome = yield from self._deliver(envelope)
        yield from self._quit()

    def _deliver(self, envelope: Envelope) -> Generator[Request, Any, Outcome]:
        """One recipient, with retries: its outcome, as Channel.deliver would give it."""
        key = envelope.key
        attempt = 0
        while True:
            attempt += 1
            try:
                code, text = yield from self._attempt(envelope)
                return Outcome(key, SENT, provider_id=_reply(code, text)[:200], tries=attempt)
            except (PermanentFailure, UnknownOutcome) as exc:
                return final_outcome(key, exc, attempt)
            except FatalTransportError as exc:
                yield Fatal(str(exc))
                return Outcome(key, PENDING, str(exc), tries=attempt)
            except _LineEnded:
                attempt -= 1  # not the reader's attempt: a new connection tries at once
            except TemporaryFailure as exc:
                if attempt >= self.settings.retries:
                    return final_outcome(key, exc, attempt)
                if self.primed is not None:  # another recipient's DATA is open: abandon it
                    self._drop()
                if not (yield Sleep(backoff(self.settings, attempt, exc.retry_after))):
                    # Stopping (Ctrl-C): pending for the next run rather than wait.
                    return Outcome(key, PENDING, str(exc), tries=attempt)

    def _attempt(self, envelope: Envelope) -> Generator[Request, Any, tuple[int, bytes]]:
        if self.smtp is None:
            self._connect()
        options = self._options(envelope)
        signed = self.transport.signed_ahead.pop(envelope.key, None)
        try:
            if signed is not None and self.eight_bit:
                data = signed.result()
            else:
                data = self._message(envelope)
        except ValueError as exc:
            raise PermanentFailure(str(exc)) from None
        reused = self.delivered_here > 0
        try:
            return (yield from self._transaction(envelope, data, options))
        except (*_DISCONNECTS, OSError) as exc:  # before the final dot (else UnknownOutcome)
            self._drop()
            if reused:
                raise _LineEnded from None
            raise TemporaryFailure(
                f"connection to the smtp server lost: {str(exc) or type(exc).__name__}"
            ) from None

    def _transaction(
        self, envelope: Envelope, data: bytes, options: list[str]
    ) -> Generator[Request, Any, tuple[int, bytes]]:
        primed, self.primed = self.primed, None
        if self.pipelining:
            if primed is not envelope:  # else they went behind the previous message
                yield from self._send(self._commands(envelope, options))
            replies = [(yield READ), (yield READ), (yield READ)]
        else:
            replies = []
            extra = "".join(" " + option for option in options)
            mail = f"MAIL FROM:<{self.sender}>{extra}\r\n".encode()
            to = f"RCPT TO:<{envelope.email}>\r\n".encode()
            for command in (mail, to, b"DATA\r\n"):
                yield from self._send(command)
                replies.append((yield READ))
                if replies[-1][0] >= 400:
                    break
        refused = next(((n, c, t) for n, (c, t) in enumerate(replies[:2]) if c >= 400), None)
        data_code, data_text = replies[2] if len(replies) == 3 else (0, b"")
        if data_code == 354 and refused:
            yield from self._send(
                b".\r\n"
            )  # no valid recipient: an empty message that goes nowhere
            yield READ
        if refused:
            yield from self._reset()
            stage, code, text = refused
            self._raise(code, text, "MAIL FROM" if stage == 0 else "RCPT TO")
        if data_code != 354:
            yield from self._reset()
            self._raise(data_code, data_text, "DATA")
        # `data` is dot-stuffed and ends with the final dot (MessageTemplate, smtp_data=True).
        following = (yield TAKE_NOW) if self.ahead else None
        commands = self._prime(following) if following is not None else b""
        try:
            yield from self._send(data, commands)  # fails before the final dot: nothing accepted
        except _SentThenLost as lost:  # the final dot went, the next recipient's commands did not
            self._drop()
            raise UnknownOutcome(
                "the smtp connection was lost after the message was sent, before the server's "
                f"reply: {lost}"
            ) from None
        try:
            code, text = yield READ
        except (*_DISCONNECTS, OSError) as exc:
            # The whole message went; the server may have queued it before the line broke.
            self._drop()
            raise UnknownOutcome(
                "the smtp connection was lost after the message was sent, before the server's "
                f"reply: {str(exc) or type(exc).__name__}"
            ) from None
        if code != 250:
            if self.primed is None:  # else RSET would land in the next message's DATA
                yield from self._reset()
            self._raise(code, text, "end of data")
        self.delivered_here += 1
        return code, text

    def _prime(self, following: Envelope) -> bytes:
        """The commands of the next recipient, to go out behind this message's final dot:
        their replies come back with this message's (one round trip a message instead of
        two). Nothing of that message's content goes before its mark."""
        try:
            commands = self._commands(following, self._options(following))
        except PermanentFailure:
            self.pool.give_back(following)  # refused when its turn comes, without a word sent
            return b""
        self.primed = following
        return commands

    def _message(self, envelope: Envelope) -> bytes:
        """The message for `envelope` as this connection sends it: dot-stuffed and ended by
        the final dot, 7-bit for a server without 8BITMIME, signed under transport.dkim."""
        template = self.transport.template_for(self.eight_bit)
        return message_for(template, envelope, smtp_data=True, dkim=self.transport.signer)

    def _options(self, envelope: Envelope) -> list[str]:
        """The MAIL FROM parameters for this recipient on this connection."""
        options = ["BODY=8BITMIME"] if self.transport.template_for(self.eight_bit).eight_bit else []
        if not envelope.email.isascii():
            if not self.utf8:
                raise PermanentFailure(
                    "the server does not accept non-ASCII addresses (no SMTPUTF8)"
                )
            options.append("SMTPUTF8")
        return options

    def _commands(self, envelope: Envelope, options: list[str]) -> bytes:
        """MAIL FROM, RCPT TO and DATA for one recipient, as one pipelined group."""
        extra = "".join(" " + option for option in options)
        return (
            f"MAIL FROM:<{self.sender}>{extra}\r\nRCPT TO:<{envelope.email}>\r\nDATA\r\n".encode()
        )

    def _send(self, data: bytes, following: bytes = b"") -> Generator[Request, Any, None]:
        """Write `data`, then `following`, in one go where the socket takes it (two writes let
        the server answer `data` in a packet of its own, and Nagle then holds the next answer
        for a delayed ACK: 40 ms); when its buffer is full, the other connections go on until
        it has room. Counts what went: raises OSError when some of `data` did not (nothing
        was accepted), _SentThenLost when all of it did, final dot included, and the rest
        did not."""
        sock = self.sock
        assert sock is not None
        tls = isinstance(sock, ssl.SSLSocket)  # never primed: `following` is empty
        parts = [memoryview(part) for part in (data, following) if part]
        done = 0
        try:
            while parts:
                try:
                    sent = sock.send(parts[0][:_TLS_RECORD]) if tls else sock.sendmsg(parts)
                except (BlockingIOError, ssl.SSLWantWriteError):
                    yield WRITE
                    continue
                done += sent
                while parts and sent >= len(parts[0]):
                    sent -= len(parts.pop(0))
                if parts and sent:
                    parts[0] = parts[0][sent:]
        except OSError as exc:
            if following and done >= len(data):
                raise _SentThenLost(str(exc) or type(exc).__name__) from None
            raise

    def _reset(self) -> Generator[Request, Any, None]:
        try:
            yield from self._send(b"RSET\r\n")
            code, _ = yield READ
        except (*_DISCONNECTS, OSError):
            code = -1
        if code != 250:
            self._drop()

    def _raise(self, code: int, text: bytes, stage: str) -> None:
        if code == 421 or code == -1:
            self._drop()
            if stage != "end of data" and self.delivered_here:
                raise _LineEnded
        if 400 <= code < 500 or code == -1:
            raise TemporaryFailure(_reply(code, text))
        reply = _reply(code, text)
        if stage == "MAIL FROM":  # the sender is refused: nothing can go through this server
            raise FatalTransportError(
                f"the smtp server {self.host}:{self.port} refused the sender: {reply}"
            )
        if stage == "RCPT TO" and _RELAY_DENIED.search(reply):  # our setup, not the reader
            raise FatalTransportError(
                f"the smtp server {self.host}:{self.port} does not relay for this sender: {reply}; "
                "check transport.username and COMPOSE_SMTP_PASSWORD"
            )
        # 5xx for this recipient: final. At RCPT it is the address itself (a hard bounce).
        raise PermanentFailure(reply, bounce=stage == "RCPT TO")

    def _connect(self) -> None:
        s, host, port = self.settings, self.host, self.port
        smtp: smtplib.SMTP | None = None
        try:
            smtp = connect(host, port, s.timeout, helo_name(self.transport.template.domain))
            start_session(smtp, s, port, clear_login_ok=_is_loopback(host))
        except (NoStartTLS, LoginInClear) as refusal:
            if smtp is not None:
                smtp.close()
            if isinstance(refusal, NoStartTLS):
                reason = (
                    f"smtp server {host}:{port} does not offer STARTTLS, and transport.starttls "
                    "is true in newsletter.yaml"
                )
            else:
                reason = (
                    f"refusing to send the smtp password to {host} without TLS; "
                    "use a server that offers STARTTLS or port 465"
                )
            raise FatalTransportError(reason) from None
        except smtplib.SMTPAuthenticationError as exc:
            if smtp is not None:
                smtp.close()
            raise FatalTransportError(
                f"smtp server {host}:{port} refused the login of '{s.username}': "
                f"{_reply(exc.smtp_code, exc.smtp_error)}; check COMPOSE_SMTP_USERNAME and "
                "COMPOSE_SMTP_PASSWORD"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            if smtp is not None:
                smtp.close()
            self.connect_failures += 1
            reason = f"cannot connect to smtp server {host}:{port}: {exc}"
            if self.connect_failures >= s.retries:
                raise FatalTransportError(reason) from None
            raise TemporaryFailure(reason) from None
        self.connect_failures = 0
        self.delivered_here = 0
        sock = smtp.sock
        assert sock is not None
        with contextlib.suppress(OSError):  # a primed group must not wait for an ACK (Nagle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)  # the pool waits for replies and for room to write
        self.smtp, self.sock = smtp, sock
        self._replies.clear()
        self._lines, self._buffer = [], b""
        self.pipelining = s.pipelining and smtp.has_extn("pipelining")
        self.eight_bit = smtp.has_extn("8bitmime")
        self.utf8 = smtp.has_extn("smtputf8")
        # The next recipient's commands behind a message: with PIPELINING, and without TLS.
        self.ahead = self.pipelining and not isinstance(sock, ssl.SSLSocket)

    def _drop(self) -> None:
        """Close the connection; a recipient taken ahead goes back to the pool unmarked."""
        if self.primed is not None:
            self.pool.give_back(self.primed)
            self.primed = None
        if self.smtp is not None:
            self.pool.unwatch(self)
            try:
                self.smtp.close()
            finally:
                self.smtp = self.sock = None

    def _quit(self) -> Generator[Request, Any, None]:
        if self.primed is not None:  # a DATA is open: QUIT would become its text
            self._drop()
        if self.smtp is not None:
            with contextlib.suppress(*_DISCONNECTS, OSError):
                yield from self._send(b"QUIT\r\n")
                yield READ
            self._drop()

    def close(self) -> None:
        self._drop()


class SMTPTransport(Transport):
    """Delivers through an SMTP server or relay."""

    name = "smtp"

    def __init__(self, settings: Settings, template: MessageTemplate, issue: str) -> None:
        super().__init__(settings, template, issue)
        if settings.host is None or settings.port is None:  # resolve_settings always sets both
            raise ValueError("the smtp transport needs resolved settings with a host and port")
        self.host: str = settings.host
        self.port: int = settings.port
        # transport.dkim: the key is read and checked now, before anything is sent.
        self.signer = dkim_signer(settings.dkim) if settings.dkim is not None else None
        self.signing: ThreadPoolExecutor | None = None  # while a pool of a signed send runs
        self.signed_ahead: dict[str, Future[bytes]] = {}  # each envelope's message, by key

    def template_for(self, eight_bit: bool) -> MessageTemplate:
        """The message template for a connection: 8-bit as written, or 7-bit for a server
        without 8BITMIME."""
        return self.template if eight_bit else self.seven_bit_template

    @functools.cached_property
    def seven_bit_template(self) -> MessageTemplate:
        """Built when a server first lacks 8BITMIME (rare; 0.1 s for 48 variants)."""
        return self.template.seven_bit()

    def open_pool(self, feed: Feed) -> Pool:
        if self.signer is None or self.signer.algorithm != "rsa-sha256":
            pool = Pool(feed, self.settings.timeout)
        else:
            # OpenSSL lets go of the GIL while it signs: an RSA 2048 signature (0.3 ms, more
            # than all the rest of a message) is made on the other core, messages ahead of
            # the connections. Ed25519 (0.03 ms) costs less than the hand-off: signed in line.
            self.signing = ThreadPoolExecutor(_SIGNING_THREADS, thread_name_prefix="dkim")
            pool = Pool(
                feed,
                self.settings.timeout,
                prepare=self._sign_ahead,
                ahead=_SIGN_AHEAD,
                on_close=self._stop_signing,
            )
        pool.add([SMTPConversation(self, pool, feed.stop) for _ in range(self.concurrency)])
        return pool

    def _sign_ahead(self, envelope: Envelope) -> None:
        assert self.signing is not None
        self.signed_ahead[envelope.key] = self.signing.submit(
            message_for, self.template, envelope, smtp_data=True, dkim=self.signer
        )

    def _stop_signing(self) -> None:
        if self.signing is not None:
            self.signing.shutdown(cancel_futures=True)
            self.signing = None
        self.signed_ahead.clear()

    def describe(self) -> str:
        user = f" as {self.settings.username}" if self.settings.username else ""
        signed = ""
        if self.signer is not None:
            signed = f", DKIM-signed for {self.signer.domain} ({self.signer.algorithm})"
        return f"smtp {self.host}:{self.port}{user}, {self.concurrency} connections{signed}"
