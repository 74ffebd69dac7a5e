"""DNS look-ups for `compose doctor`: one resolver, answers as text, failures as one reason."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping

import dns.exception
import dns.name
import dns.resolver
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TXT import TXT

from composer.errors import UsageError

DNS_SERVER_ENV = "COMPOSE_DNS_SERVER"
DEFAULT_TIMEOUT = 5.0


class DnsFailure(Exception):
    """DNS could not say whether a record exists (timeout, SERVFAIL, no server); never NXDOMAIN."""

    def __init__(self, name: str, rdtype: str, reason: str) -> None:
        super().__init__(f"could not ask DNS for {name} {rdtype} ({reason})")
        self.name, self.rdtype, self.reason = name, rdtype, reason


def parse_server(value: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`, or `HOST` for port 53) as an IP address and a port."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else 53
        if not 0 < port < 65536 or not host:
            raise ValueError(value)
    except ValueError:
        raise UsageError(
            f"{DNS_SERVER_ENV}={value!r} is not HOST:PORT (for example 127.0.0.1:5353)"
        ) from None
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        raise UsageError(f"{DNS_SERVER_ENV}: cannot find the address of {host}") from None
    return str(infos[0][4][0]), port


def make_resolver(
    env: Mapping[str, str], timeout: float = DEFAULT_TIMEOUT
) -> dns.resolver.Resolver:
    """The resolver of `COMPOSE_DNS_SERVER` when it is set, else the system's."""
    server = env.get(DNS_SERVER_ENV, "").strip()
    if server:
        host, port = parse_server(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.exception.DNSException:
            raise UsageError(
                f"no DNS resolver is configured on this machine; set {DNS_SERVER_ENV}=HOST:PORT"
            ) from None
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _reason(exc: dns.exception.DNSException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "timed out"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "the server failed to answer: SERVFAIL or refused"
    if isinstance(exc, dns.name.NameTooLong | dns.name.LabelTooLong | dns.name.EmptyLabel):
        return "not a valid DNS name"
    return type(exc).__name__


class DnsLookup:
    """Asks one resolver; remembers answers so that a check asking twice costs one query."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self._answers: dict[tuple[str, str], list[str] | DnsFailure] = {}

    def _ask(self, name: str, rdtype: str) -> list[str]:
        key = (name.lower().rstrip("."), rdtype)
        cached = self._answers.get(key)
        if cached is None:
            cached = self._answers[key] = self._query(key[0], rdtype)
        if isinstance(cached, DnsFailure):
            raise cached
        return cached

    def _query(self, name: str, rdtype: str) -> list[str] | DnsFailure:
        try:
            answer = self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            return DnsFailure(name, rdtype, _reason(exc))
        if rdtype == "TXT":
            # RFC 7208 3.3 and RFC 6376 3.6.2.2: a record's strings join with nothing between.
            return [
                b"".join(rdata.strings).decode("utf-8", errors="replace")
                for rdata in answer
                if isinstance(rdata, TXT)
            ]
        if rdtype == "MX":
            exchangers = sorted(
                (r for r in answer if isinstance(r, MX)), key=lambda r: r.preference
            )
            return [rdata.exchange.to_text(omit_final_dot=True) for rdata in exchangers]
        return [rdata.to_text() for rdata in answer]

    def txt(self, name: str) -> list[str]:
        """Every TXT record at `name` as text; [] when there is none (or no such name)."""
        return self._ask(name, "TXT")

    def addresses(self, name: str) -> list[str]:
        """The A and AAAA addresses of `name`."""
        return self._ask(name, "A") + self._ask(name, "AAAA")

    def mx(self, name: str) -> list[str]:
        """The mail exchangers of `name`, most preferred first."""
        return self._ask(name, "MX")
