"""A real DNS server (dnslib) on 127.0.0.1 answering from a zone dict, for `compose doctor` tests.

Usage::

    zone = Zone()
    zone.add("example.org", "TXT", "v=spf1 include:sendgrid.net ~all")
    zone.add("mail.example.org", "A", "192.0.2.25")
    zone.servfail.add("broken.example.org")       # SERVFAIL for every question about it
    with dns_server(zone) as port:
        ...                                       # COMPOSE_DNS_SERVER=127.0.0.1:{port}
    zone.queries                                  # [(name, type)] in the order asked

The zone may change while the server runs: each answer reads it afresh. A name that is in the
zone with other types answers NOERROR and no records; a name that is not answers NXDOMAIN.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from dnslib import AAAA, MX, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class Zone:
    """Records by (lower-case name without the final dot, type); TXT values are str."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, rtype: str, *values: str) -> Zone:
        self.records.setdefault((name.lower().rstrip("."), rtype), []).extend(values)
        return self

    def set(self, name: str, rtype: str, *values: str) -> Zone:
        self.records[(name.lower().rstrip("."), rtype)] = list(values)
        return self

    def remove(self, name: str, rtype: str) -> Zone:
        self.records.pop((name.lower().rstrip("."), rtype), None)
        return self


def _txt(value: str) -> TXT:
    """A TXT record split into 255-byte strings, as long DKIM keys are published."""
    data = value.encode("utf-8")
    return TXT([data[i : i + 255] for i in range(0, len(data), 255)] or [b""])


def _rdata(rtype: str, value: str):
    if rtype == "TXT":
        return _txt(value)
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        preference, _, host = value.partition(" ")
        return MX(host, int(preference))
    raise ValueError(f"unsupported type {rtype}")


class ZoneResolver(BaseResolver):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        with self.zone.lock:
            self.zone.queries.append((qname, qtype))
            if qname in self.zone.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            values = list(self.zone.records.get((qname, qtype), []))
            known = any(name == qname for name, _ in self.zone.records)
        for value in values:
            reply.add_answer(
                RR(request.q.qname, getattr(QTYPE, qtype), rdata=_rdata(qtype, value), ttl=60)
            )
        if not values and not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (for a server that never answers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def dns_server(zone: Zone) -> Iterator[int]:
    """Serve `zone` over UDP on 127.0.0.1 and a free port; yields the port."""
    server = DNSServer(
        ZoneResolver(zone),
        address="127.0.0.1",
        port=0,
        logger=DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False),
    )
    server.start_thread()
    try:
        yield server.server.server_address[1]
    finally:
        server.stop()
        server.server.server_close()
