"""Is there a DMARC policy for the From domain, and can the mail pass it?"""

from __future__ import annotations

from dataclasses import dataclass

from composer.doctor.dns import DnsFailure
from composer.doctor.findings import Finding, ok, problem, warning
from composer.doctor.records import DmarcPolicy, dmarc_records, org_domain, parse_dmarc
from composer.doctor.setup import Setup


@dataclass(frozen=True)
class DmarcLookup:
    """Where the DMARC record was looked for and what was found there."""

    name: str  # the _dmarc name holding the record (or the first one asked)
    records: list[str]
    failure: DnsFailure | None = None

    @property
    def policy(self) -> DmarcPolicy | None:
        """The parsed policy when there is exactly one valid record."""
        if len(self.records) != 1:
            return None
        try:
            return parse_dmarc(self.records[0])
        except ValueError:
            return None


def find_dmarc(setup: Setup) -> DmarcLookup:
    """The DMARC record of the From domain, else of its organisational domain (RFC 7489 6.6.3)."""
    domain = setup.from_domain
    names = [f"_dmarc.{domain}"]
    if org_domain(domain) != domain:
        names.append(f"_dmarc.{org_domain(domain)}")
    for name in names:
        try:
            records = dmarc_records(setup.lookup.txt(name))
        except DnsFailure as exc:
            return DmarcLookup(name, [], exc)
        if records:
            return DmarcLookup(name, records)
    return DmarcLookup(names[0], [])


def check_dmarc(
    setup: Setup, found_dmarc: DmarcLookup, spf_aligned: bool | None, dkim_aligned: bool
) -> list[Finding]:
    """The DMARC record's findings, then whether SPF or DKIM lets the mail pass it."""
    domain = setup.from_domain
    name = found_dmarc.name
    if found_dmarc.failure is not None:
        return [problem(str(found_dmarc.failure))]
    if not found_dmarc.records:
        report_to = f"dmarc-reports@{org_domain(domain)}"
        return [
            problem(
                f"no DMARC record for {domain}; publish TXT at _dmarc.{domain} "
                f'"v=DMARC1; p=none; rua=mailto:{report_to}"'
            )
        ]
    if len(found_dmarc.records) > 1:
        return [
            problem(
                f"{len(found_dmarc.records)} DMARC records at {name} (receivers ignore them all); "
                "keep one"
            )
        ]
    try:
        policy = parse_dmarc(found_dmarc.records[0])
    except ValueError as exc:
        return [problem(f'DMARC record at {name} "{found_dmarc.records[0]}" has {exc}')]
    found: list[Finding] = []
    if policy.policy == "none":
        found.append(
            warning(
                f"DMARC policy of {domain} is p=none: receivers do not act on mail that fails; "
                f"once reports show your mail aligned, publish p=quarantine or p=reject at {name}"
            )
        )
    else:
        found.append(ok(f"DMARC record at {name}: p={policy.policy}"))
    if policy.percent < 100:
        found.append(warning(f"DMARC record at {name} applies to pct={policy.percent}% of mail"))
    found.extend(_alignment(setup, spf_aligned, dkim_aligned))
    return found


def _alignment(setup: Setup, spf_aligned: bool | None, dkim_aligned: bool) -> list[Finding]:
    domain = setup.from_domain
    if setup.kind == "outbox":
        return [ok("DMARC alignment not checked: transport outbox sends nothing")]
    if setup.kind == "sendgrid":
        return_path = (
            "SPF aligns only if SendGrid sends with a custom return path under "
            f"{org_domain(domain)} (Sender Authentication); its default envelope sender is "
            "@sendgrid.net"
        )
        if dkim_aligned:
            return [ok(f"DMARC can pass for {domain} through DKIM; {return_path}")]
        return [
            warning(
                f"DMARC alignment for {domain} is not shown: {return_path}, and no aligned DKIM "
                "record was checked (set transport.dkim)"
            )
        ]
    ways = [w for w, yes in (("SPF", spf_aligned), ("DKIM", dkim_aligned)) if yes]
    if ways:
        return [ok(f"DMARC can pass for {domain} through {' and '.join(ways)}")]
    if spf_aligned is None:
        return [warning(f"DMARC alignment for {domain} is not shown: see the SPF findings above")]
    return [
        problem(
            f"DMARC cannot pass for {domain}: SPF does not authorise the SMTP host and no aligned "
            "DKIM key was verified; fix one of the findings above"
        )
    ]
