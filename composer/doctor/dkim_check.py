"""Is the DKIM key published, does it match the signing key, and is its domain aligned?"""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.delivery.dkim_key import RSA_MIN_BITS
from composer.doctor.dkim_key import (
    KEY_FILE_ENV,
    KeyUnreadable,
    PublicKey,
    configured_public_key,
    published_key,
)
from composer.doctor.dns import DnsFailure
from composer.doctor.findings import Finding, ok, problem, warning
from composer.doctor.records import aligned, org_domain, parse_dkim
from composer.doctor.setup import Setup


@dataclass
class DkimOutcome:
    """The findings, and whether an aligned DKIM signature can verify (DMARC passes then)."""

    findings: list[Finding] = field(default_factory=list)
    aligned: bool = False


def _publish(key: PublicKey | None) -> str:
    if key is not None:
        return f'publish TXT "{key.record}"'
    return (
        'publish TXT "v=DKIM1; k=rsa; p=<your public key>" '
        f"(set {KEY_FILE_ENV} and run compose doctor again to have it printed)"
    )


def _unconfigured(setup: Setup, key: PublicKey | None) -> list[Finding]:
    domain = setup.from_domain
    found: list[Finding] = []
    if key is not None:
        found.append(
            warning(
                f"a DKIM private key is set in {key.source} but transport.dkim is not; "
                f"set transport.dkim: {{domain: {domain}, selector: ...}}"
            )
        )
    if setup.kind == "sendgrid":
        found.append(
            warning(
                "no transport.dkim: SendGrid signs with d=sendgrid.net unless "
                f"{domain} is authenticated in SendGrid (Sender Authentication); then set "
                f"transport.dkim: {{domain: {domain}, selector: s1}} to check it"
            )
        )
    elif setup.kind == "smtp":
        found.append(
            warning(
                "messages are not DKIM-signed (no transport.dkim); Gmail and Yahoo require "
                f"DKIM for bulk mail: set transport.dkim: {{domain: {domain}, selector: ...}} "
                f"and {KEY_FILE_ENV}"
            )
        )
    else:
        found.append(ok("no transport.dkim set (transport outbox signs and sends nothing)"))
    return found


def check_dkim(setup: Setup, strict: bool = False) -> DkimOutcome:
    """DKIM findings; `strict` is the DMARC record's adkim=s (the same domain, not a relative)."""
    outcome = DkimOutcome()
    found = outcome.findings
    try:
        key = configured_public_key(setup.env)
    except KeyUnreadable as exc:
        found.append(problem(str(exc)))
        key = None
    settings = setup.dkim
    if settings is None:
        found.extend(_unconfigured(setup, key))
        return outcome
    domain = settings.domain.lower().rstrip(".")
    is_aligned = aligned(domain, setup.from_domain, strict=strict)
    if not is_aligned:
        wanted = (
            setup.from_domain
            if strict
            else f"{setup.from_domain} or another name under {org_domain(setup.from_domain)}"
        )
        found.append(
            problem(
                f"DKIM domain {domain} is not aligned with the From domain {setup.from_domain}"
                f"{' (DMARC adkim=s)' if strict else ''}; set transport.dkim.domain to {wanted}"
            )
        )
    name = f"{settings.selector}._domainkey.{domain}"
    try:
        texts = [t for t in setup.lookup.txt(name) if t.strip()]
    except DnsFailure as exc:
        found.append(problem(str(exc)))
        return outcome
    if not texts:
        found.append(problem(f"no DKIM record at {name}; {_publish(key)}"))
        return outcome
    if len(texts) > 1:
        found.append(problem(f"{len(texts)} TXT records at {name}; keep one: {_publish(key)}"))
        return outcome
    try:
        record = parse_dkim(texts[0])
        if not record.public_key:
            raise ValueError("its p= is empty: the key is revoked")
        published = published_key(record)
    except ValueError as exc:
        found.append(problem(f"DKIM record at {name} is invalid ({exc}); {_publish(key)}"))
        return outcome
    if key is None:
        found.append(
            ok(f"DKIM record at {name} found ({record.key_type}); SendGrid holds its private key")
            if setup.kind == "sendgrid"
            else warning(
                f"DKIM record at {name} found ({record.key_type}), but no private key is set "
                f"in COMPOSE_DKIM_PRIVATE_KEY or {KEY_FILE_ENV}: messages will not be signed"
            )
        )
        outcome.aligned = is_aligned and setup.kind == "sendgrid"
        return outcome
    if record.key_type != key.key_type or published != key.data:
        found.append(
            problem(
                f"DKIM record at {name} does not match the private key in {key.source}; "
                f"{_publish(key)}"
            )
        )
        return outcome
    size = f"{key.bits}-bit RSA" if key.key_type == "rsa" else "Ed25519"
    found.append(ok(f"DKIM record at {name} matches the private key in {key.source} ({size})"))
    if key.key_type == "rsa" and key.bits < RSA_MIN_BITS:
        found.append(
            problem(
                f"the DKIM key is {key.bits}-bit: compose send refuses RSA keys under "
                f"{RSA_MIN_BITS} bits (RFC 8301; receivers ignore those under 1024); generate a "
                f"{RSA_MIN_BITS}-bit key (docs/dkim.md)"
            )
        )
    if key.key_type == "ed25519":
        found.append(
            warning(
                "many receivers (Gmail among them) do not verify Ed25519 DKIM signatures yet; "
                "sign with an RSA key too (a second selector)"
            )
        )
    outcome.aligned = is_aligned
    return outcome
