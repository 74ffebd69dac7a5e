"""`compose doctor` against a real DNS server on 127.0.0.1 (dnslib) and real DKIM keys."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from composer.doctor.dns import DnsLookup, make_resolver
from composer.doctor.records import aligned, org_domain, parse_dkim, parse_dmarc, parse_spf
from composer.doctor.spf import SpfPermError, check_host
from tests.conftest import Result, run_compose
from tests.doubles.dns_server import Zone, dns_server, free_udp_port

DOMAIN = "example.org"
SELECTOR = "news"
DKIM_NAME = f"{SELECTOR}._domainkey.{DOMAIN}"
SENDGRID_SPF = "v=spf1 include:sendgrid.net ~all"
DMARC_REJECT = "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"


@dataclass(frozen=True)
class Key:
    pem: bytes
    record: str  # the TXT value DKIM publishes for it


def _rsa_key(bits: int = 2048) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Key(pem, f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}")


def _ed25519_key() -> Key:
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Key(pem, f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}")


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return _rsa_key()


@pytest.fixture(scope="module")
def other_rsa_key() -> Key:
    return _rsa_key()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Zone, int]]:
    """One DNS server for this module; each test fills the zone afresh through `zone`."""
    zone = Zone()
    with dns_server(zone) as port:
        yield zone, port


@pytest.fixture
def zone(server: tuple[Zone, int]) -> Zone:
    zone, _ = server
    with zone.lock:
        zone.records.clear()
        zone.servfail.clear()
        zone.queries.clear()
    zone.add("sendgrid.net", "TXT", "v=spf1 ip4:167.89.0.0/17 ip4:149.72.0.0/16 ~all")
    return zone


def good_sendgrid_zone(zone: Zone, key: Key) -> Zone:
    zone.add(DOMAIN, "TXT", SENDGRID_SPF, "google-site-verification=abc")
    zone.add(DKIM_NAME, "TXT", key.record)
    zone.add(f"_dmarc.{DOMAIN}", "TXT", DMARC_REJECT)
    return zone


def configure(
    root: Path,
    transport: str = "kind: sendgrid",
    dkim: str | None = f"{{domain: {DOMAIN}, selector: {SELECTOR}}}",
    archive_url: str | None = None,
) -> Path:
    """Give the project's newsletter.yaml a transport (and DKIM settings, an archive_url)."""
    config = root / "newsletter.yaml"
    text = config.read_text(encoding="utf-8")
    if archive_url is not None:
        text = text.replace(
            "archive_url: https://newsletter.example.org/", f"archive_url: {archive_url}"
        )
    lines = ["transport:", *(f"  {line}" for line in transport.splitlines())]
    if dkim is not None:
        lines.append(f"  dkim: {dkim}")
    config.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    return root


def doctor(
    root: Path,
    server: tuple[Zone, int],
    key_file: Path | None = None,
    key_inline: bytes | None = None,
    *args: str,
) -> Result:
    _, port = server
    env = {
        "COMPOSE_DNS_SERVER": f"127.0.0.1:{port}",
        "COMPOSE_DKIM_PRIVATE_KEY": key_inline.decode() if key_inline else "",
        "COMPOSE_DKIM_PRIVATE_KEY_FILE": str(key_file) if key_file else "",
        "COMPOSE_SMTP_HOST": "",
    }
    return run_compose("--project", root, "doctor", "--timeout", "2", *args, env=env)


def key_file(tmp_path: Path, key: Key) -> Path:
    path = tmp_path / "dkim.pem"
    path.write_bytes(key.pem)
    path.chmod(0o600)
    return path


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def problems(result: Result) -> list[str]:
    return [line for line in lines(result) if line.startswith("problem: ")]


# -- a domain set up right ---------------------------------------------------------------------


def test_a_correct_sendgrid_domain_has_no_problem(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key)
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 0, result.stdout + result.stderr
    assert problems(result) == []
    assert lines(result)[:4] == [
        "ok: SPF of example.org authorises SendGrid (include:sendgrid.net)",
        (
            f"ok: DKIM record at {DKIM_NAME} matches the private key in "
            "COMPOSE_DKIM_PRIVATE_KEY_FILE (2048-bit RSA)"
        ),
        "ok: DMARC record at _dmarc.example.org: p=reject",
        (
            "ok: DMARC can pass for example.org through DKIM; SPF aligns only if SendGrid sends with "
            "a custom return path under example.org (Sender Authentication); its default envelope "
            "sender is @sendgrid.net"
        ),
    ]
    assert "ok: archive_url https://newsletter.example.org/ is https" in lines(result)
    assert (
        "ok: List-Unsubscribe: one-click https://newsletter.example.org/unsubscribe/<token>, "
        "with List-Unsubscribe-Post" in lines(result)
    )
    assert result.stderr == ""
    # every question went to the test server, none elsewhere
    assert (f"_dmarc.{DOMAIN}", "TXT") in zone.queries


def test_an_rsa_key_that_send_would_refuse_is_a_problem(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone
) -> None:
    short = _rsa_key(1536)
    good_sendgrid_zone(zone, short)
    result = doctor(configure(small_project), server, key_file(tmp_path, short))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: the DKIM key is 1536-bit: compose send refuses RSA keys under 2048 bits "
            "(RFC 8301; receivers ignore those under 1024); generate a 2048-bit key (docs/dkim.md)"
        )
    ]


def test_the_private_key_is_never_shown(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(DKIM_NAME, "TXT")  # no DKIM record: record printed
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    body = b"".join(rsa_key.pem.splitlines()[1:-1]).decode()
    for chunk in (body[:40], body[100:140], body[-40:]):
        assert chunk not in result.stdout + result.stderr


def test_an_ed25519_key_given_inline_matches_and_a_subdomain_aligns(
    small_project: Path, server: tuple[Zone, int], zone: Zone
) -> None:
    key = _ed25519_key()
    zone.add(DOMAIN, "TXT", SENDGRID_SPF)
    zone.add(f"{SELECTOR}._domainkey.mail.{DOMAIN}", "TXT", key.record)
    zone.add(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=quarantine")
    root = configure(small_project, dkim=f"{{domain: mail.{DOMAIN}, selector: {SELECTOR}}}")
    result = doctor(root, server, key_inline=key.pem)
    assert result.code == 0, result.stdout
    assert (
        f"ok: DKIM record at {SELECTOR}._domainkey.mail.{DOMAIN} matches the private key in "
        "COMPOSE_DKIM_PRIVATE_KEY (Ed25519)" in lines(result)
    )
    assert "ok: DMARC record at _dmarc.example.org: p=quarantine" in lines(result)


def test_a_correct_smtp_domain_passes_spf_through_nested_includes(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    zone.add(DOMAIN, "TXT", "v=spf1 include:_spf.example.org -all")
    zone.add(
        "_spf.example.org",
        "TXT",
        "v=spf1 a:relay.example.net mx:example.org ip6:2001:db8::/32 -all",
    )
    zone.add(DOMAIN, "MX", "10 mx1.example.org")
    zone.add("mx1.example.org", "A", "192.0.2.10")
    zone.add("mail.example.org", "A", "192.0.2.10")
    zone.add("mail.example.org", "AAAA", "2001:db8::25")
    zone.add(DKIM_NAME, "TXT", rsa_key.record)
    zone.add(f"_dmarc.{DOMAIN}", "TXT", DMARC_REJECT)
    root = configure(small_project, transport="kind: smtp\nhost: mail.example.org\nport: 587")
    result = doctor(root, server, key_file(tmp_path, rsa_key))
    assert result.code == 0, result.stdout
    assert (
        "ok: SPF of example.org authorises the SMTP host mail.example.org "
        "(192.0.2.10, 2001:db8::25)" in lines(result)
    )
    assert "ok: DMARC can pass for example.org through SPF and DKIM" in lines(result)


def test_outbox_spf_is_informational(
    small_project: Path, server: tuple[Zone, int], zone: Zone
) -> None:
    zone.add(f"_dmarc.{DOMAIN}", "TXT", DMARC_REJECT)
    result = doctor(small_project, server)  # the fixture project: outbox, no dkim
    assert result.code == 0, result.stdout
    assert lines(result)[0] == (
        'warning: no SPF record for example.org; publish TXT "v=spf1 mx ~all"'
    )
    assert "ok: DMARC alignment not checked: transport outbox sends nothing" in lines(result)


# -- a broken domain: each problem named with the record to publish ---------------------------


def test_no_spf_record(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(DOMAIN, "TXT", "google-site-verification=abc")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        'problem: no SPF record for example.org; publish TXT "v=spf1 include:sendgrid.net ~all"'
    ]
    assert result.stderr == "1 problem(s) found: fix them before the first send\n"


def test_two_spf_records(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(
        DOMAIN, "TXT", "v=spf1 include:sendgrid.net ~all", "v=spf1 ip4:192.0.2.1 -all"
    )
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: 2 SPF records for example.org (receivers then fail SPF); publish one TXT "
            '"v=spf1 include:sendgrid.net ip4:192.0.2.1 ~all" instead'
        )
    ]


def test_spf_without_sendgrid(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(DOMAIN, "TXT", "v=spf1 mx -all")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: SPF of example.org does not authorise SendGrid; "
            'publish TXT "v=spf1 mx include:sendgrid.net -all"'
        )
    ]


def test_spf_without_the_smtp_host(
    small_project: Path, server: tuple[Zone, int], zone: Zone
) -> None:
    zone.add(DOMAIN, "TXT", "v=spf1 ip4:198.51.100.0/24 -all")
    zone.add("mail.example.org", "A", "192.0.2.25")
    zone.add(f"_dmarc.{DOMAIN}", "TXT", DMARC_REJECT)
    root = configure(small_project, transport="kind: smtp\nhost: mail.example.org", dkim=None)
    result = doctor(root, server)
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: SPF of example.org does not authorise the SMTP host mail.example.org "
            '(192.0.2.25 gets fail); publish TXT "v=spf1 ip4:198.51.100.0/24 a:mail.example.org -all"'
        ),
        (
            "problem: DMARC cannot pass for example.org: SPF does not authorise the SMTP host and no "
            "aligned DKIM key was verified; fix one of the findings above"
        ),
    ]
    assert any(line.startswith("warning: messages are not DKIM-signed") for line in lines(result))


def test_plus_all(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(DOMAIN, "TXT", "v=spf1 include:sendgrid.net +all")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: SPF record of example.org ends in +all, which lets anyone send as example.org; "
            'publish TXT "v=spf1 include:sendgrid.net ~all"'
        )
    ]


def test_neutral_all(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(DOMAIN, "TXT", "v=spf1 include:sendgrid.net ?all")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert len(problems(result)) == 1
    assert "?all" in problems(result)[0]


def test_too_many_spf_lookups(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(
        DOMAIN,
        "TXT",
        "v=spf1 " + " ".join(f"include:s{i}.example.org" for i in range(11)) + " ~all",
    )
    for i in range(11):
        zone.add(f"s{i}.example.org", "TXT", "v=spf1 include:sendgrid.net ~all")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: the SPF record of example.org needs more than 10 DNS lookups "
            "(RFC 7208 limit; receivers then fail SPF)"
        )
    ]


def test_no_dkim_record_prints_the_record_from_the_private_key(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).remove(DKIM_NAME, "TXT")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        f'problem: no DKIM record at {DKIM_NAME}; publish TXT "{rsa_key.record}"'
    ]


def test_dkim_record_of_another_key(
    small_project: Path,
    tmp_path: Path,
    server: tuple[Zone, int],
    zone: Zone,
    rsa_key: Key,
    other_rsa_key: Key,
) -> None:
    good_sendgrid_zone(zone, other_rsa_key)
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result)[0] == (
        f"problem: DKIM record at {DKIM_NAME} does not match the private key in "
        f'COMPOSE_DKIM_PRIVATE_KEY_FILE; publish TXT "{rsa_key.record}"'
    )


def test_dkim_domain_not_aligned(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key)
    zone.add(f"{SELECTOR}._domainkey.mailer.example.net", "TXT", rsa_key.record)
    root = configure(small_project, dkim=f"{{domain: mailer.example.net, selector: {SELECTOR}}}")
    result = doctor(root, server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: DKIM domain mailer.example.net is not aligned with the From domain example.org; "
            "set transport.dkim.domain to example.org or another name under example.org"
        )
    ]


def test_strict_dmarc_alignment_needs_the_same_domain(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=reject; adkim=s")
    zone.add(f"{SELECTOR}._domainkey.mail.{DOMAIN}", "TXT", rsa_key.record)
    root = configure(small_project, dkim=f"{{domain: mail.{DOMAIN}, selector: {SELECTOR}}}")
    result = doctor(root, server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: DKIM domain mail.example.org is not aligned with the From domain example.org "
            "(DMARC adkim=s); set transport.dkim.domain to example.org"
        )
    ]


def test_no_dmarc_record(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).remove(f"_dmarc.{DOMAIN}", "TXT")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: no DMARC record for example.org; publish TXT at _dmarc.example.org "
            '"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.org"'
        )
    ]


def test_dmarc_of_the_organisational_domain_applies(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key)
    (small_project / "newsletter.yaml").write_text(
        (small_project / "newsletter.yaml")
        .read_text(encoding="utf-8")
        .replace("newsletter@example.org", "newsletter@news.example.org"),
        encoding="utf-8",
    )
    zone.add("news.example.org", "TXT", SENDGRID_SPF)
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert "ok: DMARC record at _dmarc.example.org: p=reject" in lines(result)
    assert result.code == 0, result.stdout


def test_dmarc_p_none_is_a_warning(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key).set(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=none")
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 0, result.stdout
    assert (
        "warning: DMARC policy of example.org is p=none: receivers do not act on mail that fails; "
        "once reports show your mail aligned, publish p=quarantine or p=reject at _dmarc.example.org"
    ) in lines(result)


def test_http_archive_url(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key)
    # an http unsubscribe base is refused when newsletter.yaml loads; the archive may still be http
    root = configure(
        small_project,
        archive_url="http://newsletter.example.org/\n"
        "unsubscribe_url: https://newsletter.example.org/unsubscribe/\n"
        "unsubscribe_mailto: unsubscribe@example.org",
    )
    result = doctor(root, server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: archive_url http://newsletter.example.org/ is not https; serve it over https "
            "and set archive_url: https://..."
        )
    ]
    assert (
        "ok: List-Unsubscribe: one-click https://newsletter.example.org/unsubscribe/<token> and "
        "mailto:unsubscribe@example.org, with List-Unsubscribe-Post" in lines(result)
    )


def test_an_http_unsubscribe_base_stops_at_loading(
    small_project: Path, server: tuple[Zone, int]
) -> None:
    root = configure(small_project, archive_url="http://newsletter.example.org/")
    result = doctor(root, server)
    assert result.code == 1
    assert "unsubscribe links must use https://" in result.stderr


def test_an_unreadable_private_key_is_a_problem_without_its_content(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key)
    broken = tmp_path / "broken.pem"
    broken.write_text(
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n"
    )
    result = doctor(configure(small_project), server, broken)
    assert result.code == 1
    assert problems(result) == [
        (
            "problem: COMPOSE_DKIM_PRIVATE_KEY_FILE does not hold an unencrypted PEM private key "
            "(RSA or Ed25519)"
        )
    ]
    assert "c2VjcmV0" not in result.stdout + result.stderr


# -- DNS that does not answer -----------------------------------------------------------------


def test_a_dns_server_that_does_not_answer_is_a_finding(small_project: Path) -> None:
    root = configure(small_project)
    env = {
        "COMPOSE_DNS_SERVER": f"127.0.0.1:{free_udp_port()}",
        "COMPOSE_DKIM_PRIVATE_KEY": "",
        "COMPOSE_DKIM_PRIVATE_KEY_FILE": "",
    }
    result = run_compose("--project", root, "doctor", "--timeout", "0.3", env=env)
    assert result.code == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert problems(result) == [
        "problem: could not ask DNS for example.org TXT (timed out)",
        f"problem: could not ask DNS for {DKIM_NAME} TXT (timed out)",
        "problem: could not ask DNS for _dmarc.example.org TXT (timed out)",
    ]


def test_servfail_is_a_finding(
    small_project: Path, tmp_path: Path, server: tuple[Zone, int], zone: Zone, rsa_key: Key
) -> None:
    good_sendgrid_zone(zone, rsa_key)
    zone.servfail.add(DKIM_NAME)
    result = doctor(configure(small_project), server, key_file(tmp_path, rsa_key))
    assert result.code == 1
    assert problems(result) == [
        (
            f"problem: could not ask DNS for {DKIM_NAME} TXT "
            "(the server failed to answer: SERVFAIL or refused)"
        )
    ]


def test_a_malformed_dns_server_setting_is_one_line(small_project: Path) -> None:
    result = run_compose(
        "--project", small_project, "doctor", env={"COMPOSE_DNS_SERVER": "127.0.0.1:notaport"}
    )
    assert result.code == 2
    assert result.stderr == (
        "COMPOSE_DNS_SERVER='127.0.0.1:notaport' is not HOST:PORT (for example 127.0.0.1:5353)\n"
    )


def test_doctor_runs_as_a_process(
    small_project: Path, server: tuple[Zone, int], zone: Zone
) -> None:
    zone.add(DOMAIN, "TXT", "v=spf1 mx ~all")
    zone.add(f"_dmarc.{DOMAIN}", "TXT", DMARC_REJECT)
    _, port = server
    result = run_compose(
        "--project",
        small_project,
        "doctor",
        env={"COMPOSE_DNS_SERVER": f"127.0.0.1:{port}"},
        process=True,
    )
    assert result.code == 0, result.stderr
    assert result.stdout.startswith('ok: SPF record of example.org: "v=spf1 mx ~all"')


# -- the parts ------------------------------------------------------------------------------


def test_records_parse() -> None:
    terms = parse_spf("v=spf1 +a/24 mx:mail.example.org ip6:2001:db8::/32 -all redirect=x.org")
    assert [str(t) for t in terms] == [
        "a/24",
        "mx:mail.example.org",
        "ip6:2001:db8::/32",
        "-all",
        "redirect=x.org",
    ]
    with pytest.raises(ValueError, match="'include' needs"):
        parse_spf("v=spf1 include")
    assert org_domain("news.example.co.uk") == "example.co.uk"
    assert org_domain("a.b.example.org") == "example.org"
    assert aligned("mail.example.org", "news.example.org")
    assert not aligned("mail.example.org", "example.org", strict=True)
    assert not aligned("example.net", "example.org")
    assert parse_dkim("v=DKIM1; k=ed25519; p=AAAA").key_type == "ed25519"
    with pytest.raises(ValueError, match="k=dsa"):
        parse_dkim("v=DKIM1; k=dsa; p=AAAA")
    assert parse_dmarc("v=DMARC1; p=Quarantine; adkim=s; pct=50").policy == "quarantine"
    with pytest.raises(ValueError, match="no p="):
        parse_dmarc("v=DMARC1; rua=mailto:x@example.org")


def test_check_host_follows_redirects_and_detects_loops(
    server: tuple[Zone, int], zone: Zone
) -> None:
    _, port = server
    zone.add("a.example.org", "TXT", "v=spf1 redirect=b.example.org")
    zone.add("b.example.org", "TXT", "v=spf1 ip4:192.0.2.0/24 -all")
    zone.add("loop.example.org", "TXT", "v=spf1 include:loop.example.org -all")
    lookup = DnsLookup(make_resolver({"COMPOSE_DNS_SERVER": f"127.0.0.1:{port}"}, 2))
    assert check_host(lookup, ipaddress.ip_address("192.0.2.7"), "a.example.org") == "pass"
    assert check_host(lookup, ipaddress.ip_address("198.51.100.1"), "a.example.org") == "fail"
    with pytest.raises(SpfPermError, match="more than 10"):
        check_host(lookup, ipaddress.ip_address("192.0.2.7"), "loop.example.org")
