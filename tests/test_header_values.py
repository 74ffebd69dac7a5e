"""Nothing from newsletter.yaml or an issue reaches a header unchecked: each is refused at load time.

The adversarial run put a real `Bcc:` header into messages through `list_id`; every value that
becomes part of a header (List-Id, List-Unsubscribe, From, Reply-To, Subject, the preheader) is
now checked for line breaks of every kind, with file, line and column.
"""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from tests.conftest import run_compose

# Every character that some mail or web software treats as the end of a line.
LINE_BREAKS = {
    "CRLF": "\\r\\n",
    "LF": "\\n",
    "CR": "\\r",
    "NUL": "\\0",
    "NEL": "\\x85",
    "LINE SEPARATOR": "\\u2028",
    "PARAGRAPH SEPARATOR": "\\u2029",
    "VT": "\\v",
}


def set_line(path: Path, prefix: str, replacement: str) -> int:
    """Replace the line of `path` starting with `prefix`, or add it; returns its line number."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith(prefix):
            lines[number - 1] = replacement
            break
    else:
        lines.append(replacement)
        number = len(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return number


def validate(root: Path) -> tuple[int, list[str]]:
    result = run_compose("validate", "issues/small.yaml", cwd=root)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result.code, result.stderr.splitlines()


@pytest.mark.parametrize("kind", sorted(LINE_BREAKS))
def test_list_id_with_a_line_break_is_refused(small_project: Path, kind: str) -> None:
    forged = f'list_id: "example.org>{LINE_BREAKS[kind]}Bcc: victim@example.com"'
    line = set_line(small_project / "newsletter.yaml", "list_id:", forged)
    code, lines = validate(small_project)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(f"newsletter.yaml:{line}:10: list_id: must be")


@pytest.mark.parametrize("kind", ["CRLF", "NEL", "LINE SEPARATOR", "PARAGRAPH SEPARATOR"])
@pytest.mark.parametrize(
    ("prefix", "template", "column"),
    [
        ("from:", 'from: {{name: "UNODC{}Bcc: v@example.com", email: newsletter@example.org}}', 14),
        (
            "reply_to:",
            'reply_to: {{name: Team, email: "team@example.org{}Bcc: v@example.com"}}',
            31,
        ),
        ("unsubscribe_mailto:", 'unsubscribe_mailto: "u@example.org{}Bcc: v@example.com"', 21),
    ],
    ids=["from-name", "reply-to-address", "unsubscribe-mailto"],
)
def test_header_values_of_the_masthead_are_one_line(
    small_project: Path, kind: str, prefix: str, template: str, column: int
) -> None:
    line = set_line(small_project / "newsletter.yaml", prefix, template.format(LINE_BREAKS[kind]))
    code, lines = validate(small_project)
    assert code == 1
    assert lines and all(entry.startswith(f"newsletter.yaml:{line}:") for entry in lines)
    assert any(f"newsletter.yaml:{line}:{column}:" in entry for entry in lines), lines


@pytest.mark.parametrize("field", ["subject", "preheader"])
@pytest.mark.parametrize("kind", ["CRLF", "NEL", "LINE SEPARATOR"])
def test_subject_and_preheader_are_one_line(small_project: Path, field: str, kind: str) -> None:
    issue = small_project / "issues" / "small.yaml"
    line = set_line(issue, f"{field}:", f'{field}: "News{LINE_BREAKS[kind]}Bcc: v@example.com"')
    code, lines = validate(small_project)
    assert code == 1
    assert lines == [
        (
            f"issues/small.yaml:{line}:{len(field) + 3}: {field}: must be one line without "
            "control characters"
        )
    ]


def test_a_link_url_with_a_line_break_is_refused(small_project: Path) -> None:
    issue = small_project / "issues" / "small.yaml"
    set_line(
        issue,
        "        links:",
        '        links: [{text: Report, url: "https://www.unodc.org/a\\r\\nX: y"}]',
    )
    code, lines = validate(small_project)
    assert code == 1 and len(lines) == 1
    assert "contains a line break or control character (U+000D)" in lines[0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://newsletter.example.org/unsubscribe/", "must use https://"),
        ('https://newsletter.example.org/un"subscribe/', 'contains the character "'),
        ("https://newsletter.example.org/un subscribe/", "contains a space"),
    ],
    ids=["http", "quote", "space"],
)
def test_unsubscribe_url_must_be_a_clean_https_url(
    small_project: Path, value: str, message: str
) -> None:
    line = set_line(
        small_project / "newsletter.yaml", "unsubscribe_url:", f"unsubscribe_url: '{value}'"
    )
    code, lines = validate(small_project)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(f"newsletter.yaml:{line}:18: unsubscribe_url: ")
    assert message in lines[0]


def test_an_http_archive_url_without_unsubscribe_url_is_refused(small_project: Path) -> None:
    config = small_project / "newsletter.yaml"
    line = set_line(config, "archive_url:", "archive_url: http://newsletter.example.org/")
    set_line(config, "unsubscribe_url:", "")
    code, lines = validate(small_project)
    assert code == 1
    assert lines == [
        (
            f"newsletter.yaml:{line}:14: archive_url: unsubscribe links must use https:// (RFC 8058 "
            "one-click unsubscribe); they hang off archive_url unless unsubscribe_url is given"
        )
    ]


def test_an_idn_sender_domain_is_encoded_not_a_crash(small_project: Path, tmp_path: Path) -> None:
    set_line(
        small_project / "newsletter.yaml",
        "from:",
        "from: {name: UNODC South Eastern Europe, email: newsletter@bücher.example}",
    )
    result = run_compose("build", "issues/small.yaml", "--out", tmp_path, cwd=small_project)
    assert result.code == 0, result.stderr
    raw = (tmp_path / "small" / "message.eml").read_bytes()
    assert raw.partition(b"\r\n\r\n")[0].isascii()  # the headers; the body may be 8-bit
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["From"].addresses[0].domain == "xn--bcher-kva.example"
    assert message["Message-ID"].endswith("@xn--bcher-kva.example>")


def test_a_non_ascii_sender_local_part_is_refused(small_project: Path) -> None:
    line = set_line(
        small_project / "newsletter.yaml",
        "from:",
        "from: {name: UNODC, email: bülten@example.org}",
    )
    code, lines = validate(small_project)
    assert code == 1
    assert lines == [
        (
            f"newsletter.yaml:{line}:28: from: the part before @ must be ASCII; most mail servers "
            "refuse others"
        )
    ]
