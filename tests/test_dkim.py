"""DKIM: `compose send` over the real SMTP transport to aiosmtpd, each message checked with
dkimpy's verifier against the test key's DNS record (answered by a `dnsfunc`)."""

from __future__ import annotations

import base64
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from doubles.delivery_project import FIXTURE as DELIVERY_FIXTURE
from doubles.delivery_project import make_project, send
from doubles.smtp_servers import Recording, smtp_server
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.delivery.dkim import CONTRACT_HEADERS, EXTRA_HEADERS
from tests.test_delivery_message import HandMade

_ED_KEY = ed25519.Ed25519PrivateKey.generate()
SELECTOR = "news2026"
DOMAIN = "example.org"
DKIM_SETTINGS = f"  dkim: {{domain: {DOMAIN}, selector: {SELECTOR}}}\n"
# A long name beyond ASCII: its To field is RFC 2047-encoded and folded over lines.
READERS = [
    ("reader0000@example.org", "Reader 0"),
    ("zoe@example.org", "Zoë Ñúñez-Długosz de la Fuente y Ørsted, Ständige Vertretung (Büro Süd)"),
    ("reader0002@example.org", ""),
    ("reader0003@example.org", "Reader 3"),
]


def pem_of(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def dns_record(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    """The TXT record to publish for `key`, as docs/dkim.md says."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def verifies(message: bytes, record: bytes) -> bool:
    """dkimpy's verdict, with DNS answered for our selector only."""
    wanted = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == wanted else None

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


def signature_tags(message: bytes) -> dict[str, str]:
    head = message.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert head.startswith("DKIM-Signature:"), head[:200]
    value = re.split(r"\r\n(?![ \t])", head, maxsplit=1)[0].partition(":")[2]
    tags = (tag.split("=", 1) for tag in value.split(";") if tag.strip())
    return {name.strip(): re.sub(r"\s+", "", content) for name, content in tags}


def new_key(kind: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(65537, 2048)
    return ed25519.Ed25519PrivateKey.generate()


@dataclass
class SevenBitPipelining(Recording):
    """Offers PIPELINING but not 8BITMIME: the 7-bit template, messages signed ahead."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        kept = [line for line in responses if "8BITMIME" not in line]
        return [*kept[:-1], "250-PIPELINING", kept[-1]]


def key_env(key_pem: str, source: str, tmp_path: Path) -> dict[str, str]:
    if source == "inline":
        return {"COMPOSE_DKIM_PRIVATE_KEY": key_pem}
    path = tmp_path / "dkim.pem"
    path.write_text(key_pem, encoding="ascii")
    return {"COMPOSE_DKIM_PRIVATE_KEY_FILE": str(path)}


@pytest.mark.parametrize(
    ("kind", "source", "handler"),
    # RSA messages are signed ahead on other threads, for the 8-bit template: a 7-bit server's
    # connection makes its own.
    [
        ("rsa", "inline", Recording),
        ("rsa", "file", SevenBitPipelining),
        ("ed25519", "file", SevenBitPipelining),
    ],
)
def test_every_message_verifies_and_a_tampered_header_does_not(
    tmp_path: Path, kind: str, source: str, handler: type[Recording]
) -> None:
    key = new_key(kind)
    key_pem = pem_of(key)
    project = make_project(tmp_path, READERS, transport="smtp", extra_settings=DKIM_SETTINGS)
    with smtp_server(handler()) as server:
        env = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}
        result = send(project, **env, **key_env(key_pem, source, tmp_path))
    assert result.code == 0, result.stderr
    assert server.handler.counts() == Counter(email for email, _ in READERS)
    record = dns_record(key)
    other = dns_record(new_key(kind))  # the same kind of key, not the one that signed
    for received in server.handler.messages:
        message = received.data
        tags = signature_tags(message)
        assert (tags["a"], tags["d"], tags["s"]) == (f"{kind}-sha256", DOMAIN, SELECTOR)
        assert tags["c"] == "relaxed/relaxed" and "l" not in tags
        assert verifies(message, record), message[:1500]
        # Another key's record, or any signed field changed: the signature fails.
        assert not verifies(message, other)
        subject = re.search(rb"\r\nSubject: [^\r]*", message)
        assert subject is not None
        tampered = message.replace(subject.group(0), b"\r\nSubject: You have won a prize")
        assert not verifies(tampered, record)
        unsubscribe = message.replace(b"/unsubscribe/", b"/unsubscribe/x", 1)
        assert not verifies(unsubscribe, record)
    assert not (set(key_pem.splitlines()[1:-1]) & set((result.stdout + result.stderr).split()))
    # Both templates were signed: 8bit parts where the server offers 8BITMIME, else 7-bit ones.
    eight_bit = [b"Transfer-Encoding: 8bit" in m.data for m in server.handler.messages]
    assert all(eight_bit) if handler is Recording else not any(eight_bit)


def test_h_covers_the_contract_headers_each_oversigned(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    project = make_project(tmp_path, READERS[:2], transport="smtp", extra_settings=DKIM_SETTINGS)
    with smtp_server() as server:
        env = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}
        result = send(project, **env, COMPOSE_DKIM_PRIVATE_KEY=pem_of(key))
    assert result.code == 0, result.stderr
    message = server.handler.messages[0].data
    signed = signature_tags(message)["h"].split(":")
    # The contract's eight, plus Reply-To (the fixture sets one), MIME-Version and Content-Type;
    # each twice, so that a second instance added on the way breaks the signature.
    expected = [name.lower() for name in CONTRACT_HEADERS + EXTRA_HEADERS]
    assert Counter(signed) == Counter({name: 2 for name in expected})
    record = dns_record(key)
    assert verifies(message, record)
    for added in (
        b"List-Unsubscribe: <https://attacker.example.com/u>\r\n",
        b"From: Someone Else <ceo@example.com>\r\n",
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
    ):
        assert not verifies(added + message, record), added
    # Fields nobody signs may be added on the way (a relay's Received:).
    assert verifies(b"Received: from relay.example.com by mx.example.com\r\n" + message, record)


def test_without_transport_dkim_nothing_is_signed(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2, transport="smtp")
    with smtp_server() as server:
        env = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}
        key = pem_of(ed25519.Ed25519PrivateKey.generate())
        result = send(project, **env, COMPOSE_DKIM_PRIVATE_KEY=key)
    assert result.code == 0, result.stderr
    assert all(b"DKIM-Signature" not in m.data for m in server.handler.messages)


def _encrypted() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
        .decode("ascii")
    )


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("missing", "no DKIM private key is"),
        ("no file", "cannot read the DKIM private key file in COMPOSE_DKIM_PRIVATE_KEY_FILE"),
        ("garbage", "COMPOSE_DKIM_PRIVATE_KEY does not hold an unencrypted PEM private key"),
        ("truncated", "COMPOSE_DKIM_PRIVATE_KEY does not hold an unencrypted PEM private key"),
        ("encrypted", "COMPOSE_DKIM_PRIVATE_KEY_FILE does not hold an unencrypted PEM"),
        ("rsa 1024", "is 1024-bit; DKIM wants 2048 to 4096 bits"),
        ("ec p-256", "holds a key DKIM cannot use (use RSA or Ed25519)"),
    ],
)
def test_a_bad_key_exits_1_with_one_line_before_anything_is_sent(
    tmp_path: Path, case: str, said: str
) -> None:
    good = pem_of(rsa.generate_private_key(65537, 2048))
    env: dict[str, str] = {
        "missing": {},
        "no file": {"COMPOSE_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "absent.pem")},
        "garbage": {"COMPOSE_DKIM_PRIVATE_KEY": "not a key at all\n"},
        "truncated": {"COMPOSE_DKIM_PRIVATE_KEY": good[: len(good) // 2]},
        "encrypted": key_env(_encrypted(), "file", tmp_path),
        "rsa 1024": {"COMPOSE_DKIM_PRIVATE_KEY": pem_of(rsa.generate_private_key(65537, 1024))},
        "ec p-256": {"COMPOSE_DKIM_PRIVATE_KEY": pem_of(ec.generate_private_key(ec.SECP256R1()))},
    }[case]
    project = make_project(tmp_path, 3, transport="smtp", extra_settings=DKIM_SETTINGS)
    with smtp_server() as server:
        smtp = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}
        result = send(project, **smtp, **env)
        assert server.handler.messages == []
        assert server.handler.connections == 0
    assert result.code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    assert "PRIVATE KEY" not in output
    for value in env.values():
        for line in value.splitlines():
            if len(line) > 20:  # a PEM line, never the path of the file (it may be shown)
                assert line not in output or line == str(tmp_path / "absent.pem")
    assert not (project / ".compose" / "delivery.sqlite").exists()


def test_sign_up_confirmations_over_smtp_are_signed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from composer.project import load_project
    from composer.web.mailer import ConfirmationMailer

    key = new_key("rsa")
    project = make_project(tmp_path, 1, transport="smtp", extra_settings=DKIM_SETTINGS)
    with smtp_server() as server:
        monkeypatch.setenv("COMPOSE_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("COMPOSE_SMTP_PORT", str(server.port))
        monkeypatch.setenv("COMPOSE_DKIM_PRIVATE_KEY", pem_of(key))
        mailer = ConfirmationMailer(load_project(project))
        link = "https://news.example.org/confirm/abc"
        mailer.send("new@example.org", "New Reader", link)
        mailer.send("zoe@example.org", "Zoë Ñúñez", link)  # the standard library's encoding
    assert server.handler.counts() == Counter(["new@example.org", "zoe@example.org"])
    for received in server.handler.messages:
        assert signature_tags(received.data)["a"] == "rsa-sha256"
        assert verifies(received.data, dns_record(key))
        assert not verifies(
            received.data.replace(b"/confirm/abc", b"/confirm/abd"), dns_record(key)
        )


_PIECE = st.lists(
    st.sampled_from([" ", "\t", "a", "é", ".", "\n", "<p>", "  ", " \n", "\n."]), max_size=20
).map("".join)


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(_PIECE, min_size=3, max_size=3),
    long_line=st.booleans(),
    seven_bit=st.booleans(),
    token_length=st.integers(1, 200),
)
def test_the_body_hash_of_pieces_equals_the_whole_bodys(
    pieces: list[str], long_line: bool, seven_bit: bool, token_length: int
) -> None:
    """Whitespace runs, trailing spaces and tabs right before and after the reader's links, in
    8bit, 7bit and quoted-printable parts: canonicalising the fixed pieces once is exact."""
    from composer.delivery.dkim import DkimSigner
    from composer.delivery.message import MessageTemplate
    from composer.project import load_project
    from composer.render import PREFERENCES_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER

    before, between, after = pieces
    pad = "données  \t " * (120 if long_line else 1)
    text = f"{before}{UNSUBSCRIBE_PLACEHOLDER}{between}{PREFERENCES_PLACEHOLDER}{after}{pad}"
    html = f"<p>{pad}{before}</p><a href='{UNSUBSCRIBE_PLACEHOLDER}'>{between}</a>{after}  "
    newsletter = load_project(DELIVERY_FIXTURE).newsletter
    built = HandMade("hand", "Hello  \tthere", html, text)
    template = MessageTemplate(built, newsletter, "main", seven_bit=seven_bit)
    key = _ED_KEY
    url = "https://news.example.org/unsubscribe/" + "t" * token_length
    message = template.personalize(
        "x@example.org", "X  Y", url, dkim=DkimSigner(DOMAIN, SELECTOR, key)
    )
    assert verifies(message, dns_record(key)), message


def test_merged_subjects_and_bodies_and_each_readers_list_id_verify(tmp_path: Path) -> None:
    """Merge values (spaces and all) in the Subject and the body, and a send to two lists (each
    reader's List-Id): every message is signed over what that reader got."""
    key = new_key("ed25519")
    project = make_project(tmp_path, READERS, transport="smtp", extra_settings=DKIM_SETTINGS)
    issue = project / "issues" / "x.yaml"
    text = issue.read_text(encoding="utf-8")
    text = text.replace(
        'subject: "Test Bulletin — Vol. 1: Grüße & <news>"',
        'subject: "Vol. 1 for {{ name | default(\\"you\\") }}"',
    ).replace(
        "A short introduction", 'Dear {{ name | default("colleague") }},  a short introduction'
    )
    issue.write_text(text, encoding="utf-8")
    (project / "subscribers" / "partners.csv").write_text(
        'email,name\npartner@example.org,"Ana   Petrović  de  Souza"\nzoe@example.org,Zoë\n',
        encoding="utf-8",
    )
    with smtp_server(Recording()) as server:
        env = {"COMPOSE_SMTP_HOST": "127.0.0.1", "COMPOSE_SMTP_PORT": str(server.port)}
        result = send(
            project, "--list", "partners", **env, **key_env(pem_of(key), "inline", tmp_path)
        )
    assert result.code == 0, result.stderr
    record = dns_record(key)
    messages = {m.rcpt_tos[0]: m.data for m in server.handler.messages}
    assert len(messages) == len(READERS) + 1
    assert b"List-Id: Test Bulletin <partners.example.org>" in messages["partner@example.org"]
    assert b"Dear Ana" in messages["partner@example.org"]
    assert b"Subject: Vol. 1 for you" in messages["reader0002@example.org"]
    for message in messages.values():
        assert verifies(message, record), message[:1500]
