"""SPF evaluation (RFC 7208 check_host, without macros) and a walk over a record's includes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from composer.doctor.dns import DnsLookup
from composer.doctor.records import SpfTerm, parse_spf, spf_records

LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: more DNS-querying terms than this is a permanent error
_MX_LIMIT = 10  # RFC 7208 4.6.4: an mx mechanism looks at no more than 10 exchangers
_QUERYING = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
_RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SpfPermError(Exception):
    """The SPF records cannot be evaluated: receivers treat this as a failure."""


@dataclass
class _Budget:
    used: int = 0

    def spend(self, domain: str) -> None:
        self.used += 1
        if self.used > LOOKUP_LIMIT:
            raise SpfPermError(
                f"the SPF record of {domain} needs more than {LOOKUP_LIMIT} DNS lookups "
                "(RFC 7208 limit; receivers then fail SPF)"
            )


def _record(lookup: DnsLookup, domain: str) -> list[SpfTerm] | None:
    records = spf_records(lookup.txt(domain))
    if not records:
        return None
    if len(records) > 1:
        raise SpfPermError(f"{domain} has {len(records)} SPF records")
    try:
        return parse_spf(records[0])
    except ValueError as exc:
        raise SpfPermError(f"the SPF record of {domain}: {exc}") from None


def _split_cidr(value: str, domain: str) -> tuple[str, int | None, int | None]:
    """`host/24//64` -> (host or the current domain, IPv4 prefix, IPv6 prefix)."""
    target, _, v6 = value.partition("//")
    target, _, v4 = target.partition("/")
    try:
        return target or domain, int(v4) if v4 else None, int(v6) if v6 else None
    except ValueError:
        raise SpfPermError(f"'{value}' is not a valid SPF prefix") from None


def _covers(address: str, ip: IpAddress, prefix4: int | None, prefix6: int | None) -> bool:
    try:
        host = ipaddress.ip_address(address)
    except ValueError:
        return False
    if host.version != ip.version:
        return False
    prefix = prefix4 if ip.version == 4 else prefix6
    if prefix is None:
        return host == ip
    return ip in ipaddress.ip_network(f"{host}/{prefix}", strict=False)


def _matches(lookup: DnsLookup, term: SpfTerm, ip: IpAddress, domain: str) -> bool:
    if term.name == "all":
        return True
    if term.name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(term.value, strict=False)
        except ValueError:
            raise SpfPermError(f"'{term}' in the SPF record of {domain} is not a network") from None
        return network.version == ip.version and ip in network
    if "%" in term.value:
        return False  # macros depend on the message; they are not expanded here
    if term.name == "a":
        target, prefix4, prefix6 = _split_cidr(term.value, domain)
        return any(_covers(a, ip, prefix4, prefix6) for a in lookup.addresses(target))
    if term.name == "mx":
        target, prefix4, prefix6 = _split_cidr(term.value, domain)
        for exchanger in lookup.mx(target)[:_MX_LIMIT]:
            if any(_covers(a, ip, prefix4, prefix6) for a in lookup.addresses(exchanger)):
                return True
        return False
    return False  # ptr and exists: not evaluated (ptr is deprecated; exists needs macros)


def check_host(lookup: DnsLookup, ip: IpAddress, domain: str, budget: _Budget | None = None) -> str:
    """The SPF result for mail from `ip` with an envelope sender at `domain`.

    One of pass, fail, softfail, neutral, none; SpfPermError when the records are broken and
    DnsFailure when DNS could not answer.
    """
    budget = budget or _Budget()
    terms = _record(lookup, domain)
    if terms is None:
        return "none"
    for term in terms:
        if term.is_modifier:
            continue
        if term.name in _QUERYING:
            budget.spend(domain)
        if term.name == "include":
            inner = check_host(lookup, ip, term.value, budget)
            if inner == "none":
                raise SpfPermError(f"include:{term.value} has no SPF record")
            if inner == "pass":
                return _RESULTS[term.qualifier]
            continue
        if _matches(lookup, term, ip, domain):
            return _RESULTS[term.qualifier]
    redirect = next((t.value for t in terms if t.name == "redirect"), None)
    if redirect:
        budget.spend(domain)
        result = check_host(lookup, ip, redirect, budget)
        if result == "none":
            raise SpfPermError(f"redirect={redirect} has no SPF record")
        return result
    return "neutral"


@dataclass
class SpfTree:
    """What a record reaches through its includes and redirects, and the lookups that costs."""

    lookups: int = 0
    includes: set[str] = field(default_factory=set)


def walk_includes(lookup: DnsLookup, domain: str) -> SpfTree:
    """Every domain that `domain`'s SPF record includes, at any depth; SpfPermError past 10."""
    tree = SpfTree()
    budget = _Budget()

    def visit(name: str) -> None:
        for term in _record(lookup, name) or []:
            if term.name in _QUERYING:
                budget.spend(domain)
            target = term.value if term.name in ("include", "redirect") else ""
            if target and "%" not in target and target.lower() not in tree.includes:
                if term.name == "include" and term.qualifier == "+":
                    tree.includes.add(target.lower())
                visit(target)
        tree.lookups = budget.used

    visit(domain)
    return tree
