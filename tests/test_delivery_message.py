"""Messages: built once, personalised by joining bytes; RFC 5322/2047/2369/8058 and no injection."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from composer.build import build_issue
from composer.delivery.message import (
    MessageTemplate,
    check_address,
    reflow_html,
    sample_message,
)
from composer.project import load_project
from composer.render import UNSUBSCRIBE_PLACEHOLDER

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "delivery" / "project"
URL = "https://news.example.org/unsubscribe/TOKEN-abc_123"


@pytest.fixture(scope="module")
def project():
    return load_project(FIXTURE)


@pytest.fixture(scope="module")
def built(project):
    return build_issue(project, FIXTURE / "issues" / "x.yaml")


@pytest.fixture(scope="module")
def template(project, built) -> MessageTemplate:
    return MessageTemplate(built, project.newsletter, "main")


@dataclass
class HandMade:
    slug: str
    subject: str
    email_html: str
    email_txt: str


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_structure_and_headers(template: MessageTemplate) -> None:
    data = template.personalize("ana@example.org", "Ana Tester", URL)
    message = parse(data)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert message["From"] == "Test Bulletin <bulletin@example.org>"
    assert message["To"] == "Ana Tester <ana@example.org>"
    assert message["Reply-To"] == "Test Desk <desk@example.org>"
    assert message["Subject"] == "Test Bulletin — Vol. 1: Grüße & <news>"
    assert message["MIME-Version"] == "1.0"
    assert message["Date"].datetime is not None
    assert re.fullmatch(r"<[^<>@\s]+@example\.org>", message["Message-ID"])
    assert message["List-Id"] == "Test Bulletin <main.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith(f"<{URL}>")
    assert "<mailto:unsubscribe@example.org?subject=unsubscribe%20TOKEN-abc_123>" in unsubscribe
    text, html = (p.get_content() for p in parts)
    assert URL in text and URL in html
    assert UNSUBSCRIBE_PLACEHOLDER not in text + html


def test_crlf_only_and_short_lines(template: MessageTemplate) -> None:
    data = template.personalize("ana@example.org", "Ana", URL)
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) < 998
    assert data.endswith(b"--\r\n")


def test_each_call_has_its_own_message_id(template: MessageTemplate) -> None:
    ids = {parse(template.personalize("a@example.org", "", URL))["Message-ID"] for _ in range(50)}
    assert len(ids) == 50


def test_non_ascii_names_are_rfc2047_encoded(template: MessageTemplate) -> None:
    name = "Ðorđe Šćekić — Ωμέγα " * 3
    data = template.personalize("dj@example.org", name, URL)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    to = re.search(rb"^To: (.*?)\r\n(?! )", head, re.DOTALL | re.MULTILINE).group(1).decode()
    decoded = str(make_header(decode_header(to.replace("\r\n", ""))))
    assert decoded == " ".join(name.split()) + " <dj@example.org>"
    assert all(len(line) <= 78 for line in to.split("\r\n"))


def test_names_with_specials_are_quoted(template: MessageTemplate) -> None:
    message = parse(template.personalize("cj@example.org", 'Carol "CJ" Jones, Jr.', URL))
    assert message["To"].addresses[0].display_name == 'Carol "CJ" Jones, Jr.'
    assert message["To"].addresses[0].addr_spec == "cj@example.org"


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nSubject: spoofed",
        "Eve\rX-Evil: 1",
        "Eve\u2028Bcc: victim@example.net",
        "Eve\x00\x1b",
    ],
)
def test_header_injection_through_a_name_is_neutralised(
    template: MessageTemplate, name: str
) -> None:
    data = template.personalize("eve@example.org", name, URL)
    message = parse(data)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == "Test Bulletin — Vol. 1: Grüße & <news>"
    assert len(message["To"].addresses) == 1
    assert b"\n" not in data.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    "address",
    [
        "eve@example.org\r\nBcc: victim@example.net",
        "eve@example.org\nBcc: x@y.z",
        "eve@example.org>, <victim@example.net",
        "eve@example.org, victim@example.net",
        "Eve <eve@example.org>",
        "no-at-sign",
        "",
    ],
)
def test_header_injection_through_an_address_is_refused(
    template: MessageTemplate, address: str
) -> None:
    with pytest.raises(ValueError):
        template.personalize(address, "Eve", URL)
    with pytest.raises(ValueError):
        check_address(address)


@pytest.mark.parametrize(
    "url",
    [URL + "\r\nBcc: x@y.z", URL + ">, <https://evil.example", URL + " x", URL + '"', "https://é"],
)
def test_unsafe_unsubscribe_urls_are_refused(template: MessageTemplate, url: str) -> None:
    with pytest.raises(ValueError):
        template.personalize("ana@example.org", "Ana", url)


def _hand_made(html_body: str, text_body: str) -> HandMade:
    return HandMade("hand", "Hello", html_body, text_body)


def test_values_are_escaped_for_their_context(project) -> None:
    built = _hand_made(
        f'<p>Dear reader,</p><a href="{UNSUBSCRIBE_PLACEHOLDER}">unsubscribe</a>\n',
        f"Dear reader,\nUnsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n",
    )
    template = MessageTemplate(built, project.newsletter, "main")
    url = "https://news.example.org/unsubscribe/T?a=1&b=2"
    message = parse(template.personalize("x@example.org", '<b>Tom</b> & "Jerry"', url))
    text, html = (p.get_content() for p in message.iter_parts())
    assert f"Unsubscribe: {url}" in text
    assert 'href="https://news.example.org/unsubscribe/T?a=1&amp;b=2"' in html


def test_long_lines_fall_back_to_quoted_printable(project) -> None:
    word = "données "
    built = _hand_made(
        "<p>" + word * 400 + f'<a href="{UNSUBSCRIBE_PLACEHOLDER}">x</a></p>\n',
        f"{word * 300}{UNSUBSCRIBE_PLACEHOLDER}\n",
    )
    template = MessageTemplate(built, project.newsletter, "main")
    data = template.personalize("x@example.org", "X", URL)
    assert b"Content-Transfer-Encoding: quoted-printable" in data
    body = data.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    text, html = (p.get_content() for p in parse(data).iter_parts())
    assert text.replace("\r\n", "\n") == word * 300 + URL + "\n"
    assert URL in html and (word * 400) in html


def test_seven_bit_variant_for_servers_without_8bitmime(template: MessageTemplate) -> None:
    eight = template.personalize("ana@example.org", "Ana", URL)
    seven = template.seven_bit().personalize("ana@example.org", "Ana", URL)
    assert not eight.isascii() and seven.isascii()
    assert [p.get_content() for p in parse(eight).iter_parts()] == [
        p.get_content() for p in parse(seven).iter_parts()
    ]


def test_reflowed_html_means_the_same(built) -> None:
    reflowed = reflow_html(built.email_html)
    assert max(len(line) for line in reflowed.split("\n")) < 998
    assert re.sub(r"\s+", " ", reflowed) == re.sub(r"\s+", " ", built.email_html)


def test_sample_message_is_a_complete_message(project, built) -> None:
    message = parse(sample_message(built, project.newsletter))
    assert message["To"] == "Sample Reader <reader@example.org>"
    assert message["List-Id"] == "Test Bulletin <sample.example.org>"
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")


def _stuffed(data: bytes) -> bytes:
    """Dot-stuffing done the plain way, over the whole message (RFC 5321 4.5.2)."""
    body = data.replace(b"\n.", b"\n..")
    return (b"." + body if body.startswith(b".") else body) + b".\r\n"


@pytest.mark.parametrize("long_line", [False, True], ids=["8bit", "quoted-printable"])
@pytest.mark.parametrize("seven_bit", [False, True], ids=["8bitmime", "7bit"])
def test_smtp_data_is_the_message_dot_stuffed_and_ended(
    project, long_line: bool, seven_bit: bool
) -> None:
    # Dots at line starts everywhere: first byte, after values, after soft line breaks in a value.
    pad = "données " * 150 if long_line else "données"
    built = _hand_made(
        f".<p>{pad}</p><a href='{UNSUBSCRIBE_PLACEHOLDER}'>x</a>\n.{UNSUBSCRIBE_PLACEHOLDER}\n..\n",
        f".{UNSUBSCRIBE_PLACEHOLDER}\n.after\n{pad}\n{UNSUBSCRIBE_PLACEHOLDER}.x\n.",
    )
    template = MessageTemplate(built, project.newsletter, "main", seven_bit=seven_bit)
    for n in range(0, 120, 7):
        url = "https://news.example.org/unsubscribe/" + "a" * (30 + n) + "." + "b" * n
        for name in ("Ana", ".Dot", "Ä." * 40):
            plain = template.personalize("x@example.org", name, url, message_id="<m@x>")
            data = template.personalize(
                "x@example.org", name, url, message_id="<m@x>", smtp_data=True
            )
            date = re.compile(rb"^Date: .*\r\n", re.MULTILINE)  # the second may tick between
            assert date.sub(b"", data) == date.sub(b"", _stuffed(plain))
