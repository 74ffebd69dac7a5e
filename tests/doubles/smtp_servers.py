"""Real SMTP servers (aiosmtpd) on 127.0.0.1 for delivery tests: normal, 451, and dropping.

Usage::

    with smtp_server() as server:                      # records every accepted message
        ...                                            # send to 127.0.0.1:server.port
        server.handler.messages                        # [Received(mail_from, rcpt, data, options)]

    smtp_server(Greylisting(times=1))  # 451 for each recipient's first `times` attempts
    smtp_server(Greylisting(times=None))  # 451 forever
    smtp_server(Dropping(every=3))     # drops the connection at MAIL FROM of every 3rd transaction
    smtp_server(Refusing({"bad@example.org"}))  # 550 for those recipients
    smtp_server(Refusing({"full@example.org"}, reply="552 5.2.2 Mailbox full"))
    smtp_server(DroppingAfterData())   # stores each message, then drops the line before its 250
    smtp_server(DroppingAfterData(times=1))  # only for each recipient's first message
    smtp_server(auth=("user", "password"))       # AUTH required (no TLS needed on loopback)
    smtp_server(tls=tls_files(tmp_path))         # STARTTLS with a certificate for 127.0.0.1
    smtp_server(Silent())              # takes each message and never answers its final dot
    smtp_server(Capping(per_connection=5))  # 421 and a closed line at the 6th MAIL FROM
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    """One message as the server accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]


@dataclass
class Recording:
    """Accepts everything and records it."""

    messages: list[Received] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                    list(envelope.mail_options),
                )
            )
            number = len(self.messages)
        return f"250 2.0.0 OK queued as Q{number}"

    def recipients(self) -> list[str]:
        """Every recipient of every accepted message, in order."""
        with self.lock:
            return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    def counts(self) -> Counter[str]:
        """How many copies each recipient got."""
        return Counter(self.recipients())


@dataclass
class Greylisting(Recording):
    """Answers 451 to each recipient's first `times` attempts (None: forever)."""

    times: int | None = 1
    attempts: Counter[str] = field(default_factory=Counter)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.attempts[address] += 1
            refuse = self.times is None or self.attempts[address] <= self.times
        if refuse:
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass
class Refusing(Recording):
    """Answers 550 for the given recipients."""

    refused: set[str] = field(default_factory=set)
    reply: str = "550 5.1.1 User unknown"
    refusals: Counter[str] = field(default_factory=Counter)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            with self.lock:
                self.refusals[address] += 1
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@dataclass
class Dropping(Recording):
    """Drops the connection at MAIL FROM of every `every`-th transaction."""

    every: int = 3
    transactions: int = 0
    drops: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            self.transactions += 1
            drop = self.transactions % self.every == 0
            if drop:
                self.drops += 1
        if drop:
            server.transport.close()
            return "421 4.3.0 closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


@dataclass
class DroppingAfterData(Recording):
    """Stores each message (it counts as delivered), then drops the connection before its 250.

    `times`: only for each recipient's first `times` messages (None: always).
    """

    times: int | None = None
    dropped: Counter[str] = field(default_factory=Counter)

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        rcpt = envelope.rcpt_tos[0]
        with self.lock:
            drop = self.times is None or self.dropped[rcpt] < self.times
            if drop:
                self.dropped[rcpt] += 1
        if drop:
            server.transport.abort()  # no 250: the client cannot know the message was taken
        return reply


@dataclass
class Capping(Recording):
    """Takes `per_connection` messages on a connection, then answers the next MAIL FROM with
    421 and closes it, as relays that cap messages a connection do."""

    per_connection: int = 5
    refused_at_cap: int = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        taken = getattr(session, "taken", 0)
        if taken >= self.per_connection:
            with self.lock:
                self.refused_at_cap += 1
            server.transport.close()
            return "421 4.7.0 Too many messages on this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        session.taken = getattr(session, "taken", 0) + 1
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Silent(Recording):
    """Stores each message and never answers its final dot (the client's timeout decides)."""

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(3600)
        return "250 too late"


@dataclass(frozen=True)
class TLSFiles:
    """A certificate for 127.0.0.1 and its key; `cert` also serves as the client's CA file."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def tls_files(folder: Path) -> TLSFiles:
    """A self-signed certificate for 127.0.0.1, written to `folder` (trust it on the client
    side with SSL_CERT_FILE=<cert>)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TLSFiles(folder / "smtp-cert.pem", folder / "smtp-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running aiosmtpd controller and its handler."""

    def __init__(self, handler: Recording, controller: Controller) -> None:
        self.handler = handler
        self.controller = controller
        self.port = controller.port
        self.host = "127.0.0.1"


def _authenticator(login: str, password: str):  # -> an aiosmtpd authenticator
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == login.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return check


@contextlib.contextmanager
def smtp_server(
    handler: Recording | None = None,
    *,
    auth: tuple[str, str] | None = None,
    tls: TLSFiles | None = None,
) -> Iterator[Server]:
    """Run an aiosmtpd server with `handler` (default: Recording) on a free port.

    With `auth=(login, password)` the server requires AUTH (allowed without TLS, on loopback).
    With `tls`, it offers STARTTLS and requires it before anything else.
    """
    handler = handler or Recording()
    extra: dict[str, object] = {}
    if auth is not None:
        extra = {
            "authenticator": _authenticator(*auth),
            "auth_required": True,
            "auth_require_tls": False,
        }
    if tls is not None:
        extra.update(tls_context=tls.server_context(), require_starttls=True, auth_require_tls=True)
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        enable_SMTPUTF8=True,
        data_size_limit=10 * 1024 * 1024,
        **extra,
    )
    controller.start()
    try:
        yield Server(handler, controller)
    finally:
        controller.stop()
