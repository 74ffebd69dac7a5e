"""SMTP: several reused connections, 8BITMIME when offered, and PIPELINING (RFC 2920)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import smtplib
import socket
import ssl
from collections.abc import Sequence

from composer.delivery.dkim import dkim_signer
from composer.delivery.message import MessageTemplate
from composer.delivery.settings import Settings
from composer.delivery.smtp_session import LoginInClear, NoStartTLS, connect, start_session
from composer.delivery.transports.base import (
    Channel,
    Envelope,
    FatalTransportError,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
    message_for,
)

# "554 5.7.1 <a@b>: Relay access denied", "550 5.7.1 Unable to relay": a policy refusal to relay
# (5.7.x, or no enhanced code). Not "550 5.1.1 User unknown in relay recipient table": that one
# is about the address.
_RELAY_DENIED = re.compile(
    r"^5\d\d (?:5\.7\.\d{1,3} |(?!\d\.\d{1,3}\.\d{1,3}\b)).*\brelay", re.IGNORECASE
)
_DISCONNECTS = (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError, socket.timeout)

# One message for one recipient: who, the bytes, the MAIL FROM parameters.
SMTPPayload = tuple[Envelope, bytes, list[str]]
SMTPReply = tuple[int, bytes]


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


class SMTPChannel(Channel[SMTPPayload, SMTPReply]):
    """One SMTP connection, opened on demand and reused for message after message."""

    def __init__(self, transport: SMTPTransport) -> None:
        super().__init__(transport)
        self.seven_bit_template = transport.seven_bit_template
        self.signer = transport.signer
        self.host, self.port = transport.host, transport.port
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False
        self.eight_bit = False
        self.utf8 = False
        self.connect_failures = 0
        # The next recipient whose MAIL, RCPT and DATA went out behind the last message's final
        # dot (RFC 2920: message content may start a group); their replies are not read yet.
        self.primed: Envelope | None = None
        self.prepared: tuple[str, bytes] | None = None  # its message, made while a reply comes

    def _connect(self) -> smtplib.SMTP:
        s, host, port = self.settings, self.host, self.port
        sender_domain = self.template.domain
        smtp: smtplib.SMTP | None = None
        try:
            smtp = connect(host, port, s.timeout, helo_name(sender_domain))
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
        if smtp.sock is not None:  # a primed group must not wait for an ACK (Nagle)
            with contextlib.suppress(OSError):
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pipelining = s.pipelining and smtp.has_extn("pipelining")
        self.eight_bit = smtp.has_extn("8bitmime")
        self.utf8 = smtp.has_extn("smtputf8")
        return smtp

    def build_payload(self, batch: Sequence[Envelope]) -> SMTPPayload:
        (envelope,) = batch
        if self.primed is not None and self.primed.key != envelope.key:
            # Another recipient's DATA may be open on this connection: only closing it abandons
            # that message safely (a dot would deliver it empty, a command would become its text).
            self._drop()
        if self.smtp is None:
            self.smtp = self._connect()
        template = self.template if self.eight_bit else self.seven_bit_template
        options = self._options(envelope)
        prepared, self.prepared = self.prepared, None
        if prepared is not None and prepared[0] == envelope.key:
            return envelope, prepared[1], options
        try:
            # Dot-stuffed and ended: sent as it is, in one write.
            data = message_for(template, envelope, smtp_data=True, dkim=self.signer)
        except ValueError as exc:
            raise PermanentFailure(str(exc)) from None
        return envelope, data, options

    def _options(self, envelope: Envelope) -> list[str]:
        """The MAIL FROM parameters for this recipient on this connection."""
        template = self.template if self.eight_bit else self.seven_bit_template
        options = ["BODY=8BITMIME"] if template.eight_bit else []
        if not envelope.email.isascii():
            if not self.utf8:
                raise PermanentFailure(
                    "the server does not accept non-ASCII addresses (no SMTPUTF8)"
                )
            options.append("SMTPUTF8")
        return options

    def _commands(self, envelope: Envelope, options: list[str]) -> bytes:
        """MAIL FROM, RCPT TO and DATA for one recipient, as one pipelined group."""
        sender = self.template.newsletter.from_.email
        extra = "".join(" " + option for option in options)
        return f"MAIL FROM:<{sender}>{extra}\r\nRCPT TO:<{envelope.email}>\r\nDATA\r\n".encode()

    @property
    def uses_ahead(self) -> bool:
        """Connected to a server that offers PIPELINING, without TLS: see _prime."""
        return (
            self.smtp is not None
            and self.pipelining
            and not isinstance(self.smtp_socket, ssl.SSLSocket)
        )

    def _prime(self) -> bytes:
        """The commands of the recipient the runner will hand over next, to go out behind this
        message's final dot: their replies come back with this message's (one round trip a
        message instead of two). Nothing of that message's content goes before its turn."""
        following = self.ahead
        if (
            not self.pipelining
            or len(following) != 1
            or isinstance(self.smtp_socket, ssl.SSLSocket)
        ):
            return b""  # TLS: a write cannot say how much of it went (see _send_both)
        try:
            options = self._options(following[0])
        except PermanentFailure:
            return b""  # refused when its turn comes, without a word to the server
        return self._commands(following[0], options)

    def _prepare(self, envelope: Envelope) -> None:
        """Make the primed recipient's message now, while the replies are on their way."""
        template = self.template if self.eight_bit else self.seven_bit_template
        try:
            # Signing too happens while the replies are on their way.
            data = message_for(template, envelope, smtp_data=True, dkim=self.signer)
        except ValueError:
            return  # refused in build_payload when its turn comes
        self.prepared = (envelope.key, data)

    @property
    def smtp_socket(self) -> socket.socket | None:
        """The connection's socket, when connected."""
        return self.smtp.sock if self.smtp is not None else None

    @staticmethod
    def _send_both(smtp: smtplib.SMTP, data: bytes, following: bytes) -> None:
        """Write `data` and `following` in one go (two writes let the server answer `data` in
        a packet of its own, and Nagle then holds the next answer for a delayed ACK: 40 ms).
        Counts what went: raises OSError when some of `data` did not (nothing was accepted),
        _SentThenLost when all of it did, final dot included, and the rest did not."""
        sock = smtp.sock
        assert sock is not None
        parts = [memoryview(data), memoryview(following)]
        done = 0
        try:
            while parts:
                sent = sock.sendmsg(parts)
                done += sent
                while parts and sent >= len(parts[0]):
                    sent -= len(parts.pop(0))
                if parts and sent:
                    parts[0] = parts[0][sent:]
        except OSError as exc:
            if done >= len(data):
                raise _SentThenLost(str(exc) or type(exc).__name__) from None
            raise

    def post(self, payload: SMTPPayload) -> SMTPReply:
        envelope, data, options = payload
        smtp = self.smtp
        assert smtp is not None
        try:
            return self._transaction(smtp, envelope, data, options)
        except (*_DISCONNECTS, OSError) as exc:
            self._drop()
            raise TemporaryFailure(
                f"connection to the smtp server lost: {str(exc) or type(exc).__name__}"
            ) from None

    def _transaction(
        self, smtp: smtplib.SMTP, envelope: Envelope, data: bytes, options: list[str]
    ) -> SMTPReply:
        # PIPELINING: 10,000 x 17 KB, 3,498 msg/s vs 3,060 without (benchmarks/send.py, 2026-12-02)
        primed, self.primed = self.primed, None
        if self.pipelining:
            if primed is None:  # else they went behind the previous message
                smtp.send(self._commands(envelope, options))
            replies = [smtp.getreply(), smtp.getreply(), smtp.getreply()]
        else:
            replies = []
            sender = self.template.newsletter.from_.email
            extra = "".join(" " + option for option in options)
            mail = f"MAIL FROM:<{sender}>{extra}\r\n".encode()
            to = f"RCPT TO:<{envelope.email}>\r\n".encode()
            for command in (mail, to, b"DATA\r\n"):
                smtp.send(command)
                replies.append(smtp.getreply())
                if replies[-1][0] >= 400:
                    break
        refused = next(((n, c, t) for n, (c, t) in enumerate(replies[:2]) if c >= 400), None)
        data_code, data_text = replies[2] if len(replies) == 3 else (0, b"")
        if data_code == 354 and refused:
            smtp.send(b".\r\n")  # no valid recipient: an empty message that goes nowhere
            smtp.getreply()
        if refused:
            self._reset(smtp)
            stage, code, text = refused
            self._raise(code, text, "MAIL FROM" if stage == 0 else "RCPT TO")
        if data_code != 354:
            self._reset(smtp)
            self._raise(data_code, data_text, "DATA")
        # `data` is dot-stuffed and ends with the final dot (MessageTemplate, smtp_data=True).
        following = self._prime()
        try:
            if following:
                self._send_both(smtp, data, following)
                self.primed = self.ahead[0]
                self._prepare(self.primed)  # while the server reads and answers
            else:
                smtp.send(data)  # fails before the final dot is out: nothing was accepted
        except _SentThenLost as lost:  # the final dot went, the next recipient's commands did not
            self._drop()
            raise UnknownOutcome(
                "the smtp connection was lost after the message was sent, before the server's "
                f"reply: {lost}"
            ) from None
        try:
            code, text = smtp.getreply()
        except (*_DISCONNECTS, OSError) as exc:
            # The whole message went; the server may have queued it before the line broke.
            self._drop()
            raise UnknownOutcome(
                "the smtp connection was lost after the message was sent, before the server's "
                f"reply: {str(exc) or type(exc).__name__}"
            ) from None
        if code != 250:
            if self.primed is None:  # else RSET would land in the next message's DATA
                self._reset(smtp)
            self._raise(code, text, "end of data")
        return code, text

    def _raise(self, code: int, text: bytes, stage: str) -> None:
        if code == 421 or code == -1:
            self._drop()
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

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        self.primed = None
        self.prepared = None
        if self.smtp is not None:
            try:
                self.smtp.close()
            finally:
                self.smtp = None

    def parse_response(self, response: SMTPReply, batch: Sequence[Envelope]) -> list[str | None]:
        code, text = response
        return [_reply(code, text)[:200]]

    def close(self) -> None:
        if self.primed is not None:  # a DATA is open: QUIT would become its text
            self._drop()
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
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
        # Built once up front, for servers that do not offer 8BITMIME.
        self.seven_bit_template = template.seven_bit()
        # transport.dkim: the key is read and checked now, before anything is sent.
        self.signer = dkim_signer(settings.dkim) if settings.dkim is not None else None

    def open_channel(self) -> SMTPChannel:
        return SMTPChannel(self)

    def describe(self) -> str:
        user = f" as {self.settings.username}" if self.settings.username else ""
        signed = ""
        if self.signer is not None:
            signed = f", DKIM-signed for {self.signer.domain} ({self.signer.algorithm})"
        return f"smtp {self.host}:{self.port}{user}, {self.concurrency} connections{signed}"
