"""Does the From domain's SPF record exist, hold together, and authorise the transport?"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from composer.doctor.dns import DnsFailure
from composer.doctor.findings import Finding, ok, problem, warning
from composer.doctor.records import SpfTerm, parse_spf, spf_records
from composer.doctor.setup import Setup
from composer.doctor.spf import SpfPermError, check_host, walk_includes

SENDGRID_INCLUDE = "sendgrid.net"


@dataclass
class SpfOutcome:
    """The findings, and whether SPF passes for the transport (None: cannot tell or not sending)."""

    findings: list[Finding] = field(default_factory=list)
    authorised: bool | None = None


def _mechanism(setup: Setup) -> str:
    """The mechanism that authorises the configured transport."""
    if setup.kind == "sendgrid":
        return f"include:{SENDGRID_INCLUDE}"
    host = setup.smtp_host
    if setup.kind == "smtp" and host:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return f"a:{host}"
        return f"ip{address.version}:{address}"
    return "mx"


def with_mechanism(record: str, mechanism: str) -> str:
    """`record` with `mechanism` added before its `all` (or at the end)."""
    words = record.split()
    at = next(
        (i for i, w in enumerate(words) if w.lower().lstrip("+-~?") == "all"),
        next((i for i, w in enumerate(words) if w.lower().startswith("redirect=")), len(words)),
    )
    return " ".join([*words[:at], mechanism, *words[at:]])


def _merged(records: list[str]) -> str:
    """One record holding every mechanism of several, ending in ~all."""
    words: list[str] = []
    for record in records:
        for word in record.split()[1:]:
            if word.lower().lstrip("+-~?") != "all" and word not in words:
                words.append(word)
    return " ".join(["v=spf1", *words, "~all"])


def check_spf(setup: Setup) -> SpfOutcome:
    """SPF findings for the From domain and the configured transport."""
    outcome = SpfOutcome()
    domain, found = setup.from_domain, outcome.findings
    # With the outbox nothing is sent: what SPF lacks is worth knowing, not yet a problem.
    flaw = warning if setup.kind == "outbox" else problem
    try:
        records = spf_records(setup.lookup.txt(domain))
    except DnsFailure as exc:
        found.append(problem(str(exc)))
        return outcome
    mechanism = _mechanism(setup)
    if not records:
        found.append(flaw(f'no SPF record for {domain}; publish TXT "v=spf1 {mechanism} ~all"'))
        return outcome
    if len(records) > 1:
        merged = _merged(records)
        if mechanism not in merged.split():
            merged = with_mechanism(merged, mechanism)
        found.append(
            problem(
                f"{len(records)} SPF records for {domain} (receivers then fail SPF); "
                f'publish one TXT "{merged}" instead'
            )
        )
        return outcome
    record = records[0]
    try:
        terms = parse_spf(record)
    except ValueError as exc:
        found.append(problem(f'SPF record of {domain} "{record}" is invalid: {exc}'))
        return outcome
    found.extend(_all_findings(domain, record, terms))
    try:
        tree = walk_includes(setup.lookup, domain)
    except (SpfPermError, DnsFailure) as exc:
        found.append(problem(str(exc)))
        return outcome
    if setup.kind == "sendgrid":
        outcome.authorised = SENDGRID_INCLUDE in tree.includes
        if outcome.authorised:
            found.append(ok(f"SPF of {domain} authorises SendGrid (include:{SENDGRID_INCLUDE})"))
        else:
            fixed = with_mechanism(record, mechanism)
            found.append(
                problem(f'SPF of {domain} does not authorise SendGrid; publish TXT "{fixed}"')
            )
    elif setup.kind == "smtp":
        outcome.authorised = _check_smtp_host(setup, record, mechanism, found)
    else:
        found.append(
            ok(
                f'SPF record of {domain}: "{record}"; transport outbox sends nothing, '
                "so SPF is informational until you send with smtp or sendgrid"
            )
        )
    return outcome


def _all_findings(domain: str, record: str, terms: list[SpfTerm]) -> list[Finding]:
    last = next((t for t in terms if t.name == "all"), None)
    if last is None:
        if any(t.name == "redirect" for t in terms):
            return []
        return [warning(f'SPF record of {domain} has no "all"; end it with ~all or -all')]
    if last.qualifier in "+?":
        fixed = " ".join("~all" if w.lower().lstrip("+-~?") == "all" else w for w in record.split())
        what = (
            "lets anyone send as"
            if last.qualifier == "+"
            else "says nothing about other senders of"
        )
        return [
            problem(
                f"SPF record of {domain} ends in {last.qualifier}all, which {what} {domain}; "
                f'publish TXT "{fixed}"'
            )
        ]
    return []


def _check_smtp_host(
    setup: Setup, record: str, mechanism: str, found: list[Finding]
) -> bool | None:
    domain, host = setup.from_domain, setup.smtp_host
    if not host:
        found.append(
            warning(
                "no SMTP host set (transport.host or COMPOSE_SMTP_HOST): SPF not checked for it"
            )
        )
        return None
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = setup.lookup.addresses(host)
        except DnsFailure as exc:
            found.append(problem(str(exc)))
            return None
    if not addresses:
        found.append(problem(f"the SMTP host {host} has no A or AAAA address in DNS"))
        return None
    results: dict[str, str] = {}
    for address in addresses:
        try:
            results[address] = check_host(setup.lookup, ipaddress.ip_address(address), domain)
        except (SpfPermError, DnsFailure) as exc:
            found.append(problem(str(exc)))
            return None
    refused = {a: r for a, r in results.items() if r != "pass"}
    if not refused:
        shown = ", ".join(addresses)
        found.append(ok(f"SPF of {domain} authorises the SMTP host {host} ({shown})"))
        return True
    shown = ", ".join(f"{a} gets {r}" for a, r in refused.items())
    fixed = with_mechanism(record, mechanism)
    found.append(
        problem(
            f'SPF of {domain} does not authorise the SMTP host {host} ({shown}); publish TXT "{fixed}"'
        )
    )
    return False
