"""Every reader their own issue: merge fields, tailor, translations, variants rendered once.

The golden message (one tailored, translated, merged message) is regenerated with:
    COMPOSE_UPDATE_GOLDEN=1 python -m pytest tests/test_variants.py
and the diff of tests/golden/variant/ reviewed before committing it.
"""

from __future__ import annotations

import email
import os
import re
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_compose

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "variants" / "project"
GOLDEN = Path(__file__).resolve().parent / "golden" / "variant"
UPDATE = os.environ.get("COMPOSE_UPDATE_GOLDEN") == "1"
SECRET = {"COMPOSE_SECRET": "a-fixed-secret-for-the-variant-tests"}
_VOLATILE = [
    (re.compile(rb"^Date: .*$", re.MULTILINE), b"Date: <date>\r"),
    (re.compile(rb"^Message-ID: <[^>]+>", re.MULTILINE), b"Message-ID: <id>"),
    (re.compile(rb"=_composer_[0-9a-f]+"), b"=_composer_<boundary>"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(FIXTURE, tmp_path)


@pytest.fixture
def sent(project: Path) -> Path:
    """The fixture issue sent to its list through the outbox: one file per reader."""
    result = run_compose(
        "send", "issues/tailored.yaml", "--list", "readers", "--yes", cwd=project, env=SECRET
    )
    assert result.code == 0, result.stderr
    return project / "outbox" / "tailored"


def parsed(path: Path) -> Message:
    return email.message_from_bytes(path.read_bytes(), policy=default_policy)


def part(message: Message, subtype: str) -> str:
    for item in message.walk():
        if item.get_content_type() == f"text/{subtype}":
            payload = item.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode("utf-8").replace("\r\n", "\n")
    raise AssertionError(f"no text/{subtype} part")


# "In this issue" in each edition's language (the theme's strings follow the edition).
TOC_HEADING = re.compile(r"^(?:IN THIS ISSUE|U OVOM BROJU|NË KËTË NUMËR)\n\n", re.MULTILINE)


def toc(text: str) -> list[str]:
    """The section titles of the plain text's table of contents, in order."""
    block = re.split(TOC_HEADING, text, maxsplit=1)[1].split("\n\n", 1)[0]
    return [re.sub(r" \(\d+\)$", "", line[2:]) for line in block.splitlines() if line[:2] == "- "]


def test_golden_message_tailored_translated_merged(sent: Path) -> None:
    data = (sent / "bora@example.org.eml").read_bytes()
    for pattern, replacement in _VOLATILE:
        data = pattern.sub(replacement, data)
    data = data.replace(b"\r\r", b"\r")
    text = part(email.message_from_bytes(data, policy=default_policy), "plain").encode()
    for name, actual in (("message.eml", data), ("email.txt", text)):
        golden = GOLDEN / name
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(actual)
        assert actual == golden.read_bytes(), (
            f"{name} differs from {golden}; if intended, regenerate with "
            "COMPOSE_UPDATE_GOLDEN=1 python -m pytest tests/test_variants.py"
        )


def test_each_reader_gets_their_edition_pillars_and_values(sent: Path) -> None:
    assert sorted(p.name for p in sent.iterdir()) == [
        "ana@example.org.eml",
        "bora@example.org.eml",
        "clara@example.org.eml",
        "dan@example.com.eml",
        "eva@example.com.eml",
    ]
    ana = parsed(sent / "ana@example.org.eml")
    assert ana["Subject"] == "Ana Petrović, vaše vesti UNODC-a"
    assert b"Subject: =?utf-8?" in (sent / "ana@example.org.eml").read_bytes()  # RFC 2047
    text = part(ana, "plain")
    assert toc(text) == ["Kontrola granica", "From the office"]  # only: pillar I + un-pillared
    assert "Dobar dan, Ana Petrović," in text
    assert "sa službenicima iz Serbia koje je obučio UNODC" in " ".join(text.split())
    assert "Još 2 rubrike u veb-verziji: https://newsletter.example.org/tailored/sr-Latn/" in (
        " ".join(text.split())
    )  # her edition's web version, in her language
    # sq has no translation: the default edition; interests II only.
    clara = parsed(sent / "clara@example.org.eml")
    assert clara["Subject"] == "Colleague, your UNODC SEE news"
    assert toc(part(clara, "plain")) == ["Financial flows", "From the office"]
    assert "Dear colleague," in part(clara, "plain")
    # No interests: the issue as written, in English.
    dan = part(parsed(sent / "dan@example.com.eml"), "plain")
    assert toc(dan) == ["Border control", "Financial flows", "Prevention", "From the office"]
    assert "more section" not in dan
    eva = part(parsed(sent / "eva@example.com.eml"), "plain")
    assert toc(eva) == ["Border control", "Prevention", "From the office"]  # the issue's order


def test_values_are_escaped_in_html_and_plain_in_text(sent: Path) -> None:
    bora = parsed(sent / "bora@example.org.eml")
    html = part(bora, "html")
    assert "Dobar dan, Bora &lt;b&gt;Kovač&lt;/b&gt; &amp; Co," in html
    assert "<b>Kovač</b>" not in html
    assert "Customs &quot;Directorate&quot;" in html  # in the preheader
    assert "Dobar dan, Bora <b>Kovač</b> & Co," in part(bora, "plain")
    assert bora["Subject"] == "Bora <b>Kovač</b> & Co, vaše vesti UNODC-a"
    assert "zqMERGE" not in html + part(bora, "plain")


def test_dry_run_lists_the_variants_with_readers_and_sizes(project: Path) -> None:
    result = run_compose(
        "send", "issues/tailored.yaml", "--list", "readers", "--dry-run", cwd=project, env=SECRET
    )
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("  variant ")]
    assert [line.split(":")[0].strip() for line in lines] == [
        "variant en, as written",
        "variant en, I+III",
        "variant en, II",
        "variant sr-Latn, I",
        "variant sr-Latn, I+II",
    ]
    assert all(re.search(r": 1 reader, full, email.html \d+\.\d KB$", line) for line in lines)
    assert not (project / "outbox").exists()


def test_a_field_no_list_has_is_refused_before_anything_is_sent(project: Path) -> None:
    issue = project / "issues" / "tailored.yaml"
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "Here is the news", "Here is the news for {{ ministry }}"
        ),
        encoding="utf-8",
    )
    result = run_compose(
        "send", "issues/tailored.yaml", "--list", "readers", "--yes", cwd=project, env=SECRET
    )
    assert result.code == 1
    assert "merge field 'ministry'" in result.stderr
    assert "list 'readers'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / "outbox").exists()


def test_a_subject_too_long_for_some_readers_is_a_warning_naming_one(project: Path) -> None:
    csv = project / "subscribers" / "readers.csv"
    long_name = "Aleksandra Konstantinović-Dragojević de la Montaña y Villalobos"
    csv.write_text(
        csv.read_text(encoding="utf-8") + f"long@example.org,{long_name},,,en,\n",
        encoding="utf-8",
    )
    result = run_compose(
        "send", "issues/tailored.yaml", "--list", "readers", "--dry-run", cwd=project, env=SECRET
    )
    assert result.code == 0, result.stderr
    assert re.search(
        r"warning: subject becomes \d+ characters for some readers .*long@example\.org "
        r"\(subscribers/readers\.csv:7\)",
        result.stderr,
    )


def test_a_translation_of_another_shape_is_reported(project: Path) -> None:
    issue = project / "issues" / "tailored.yaml"
    text = issue.read_text(encoding="utf-8")
    issue.write_text(text.replace("      - {}\n      - {}\n      - {}\n", "      - {}\n"), "utf-8")
    result = run_compose("validate", "issues/tailored.yaml", cwd=project)
    assert result.code == 1
    assert re.match(
        r"issues/tailored\.yaml:\d+:\d+: translation 'sr-Latn' has 2 sections, the original has 4",
        result.stderr,
    )


def test_a_translation_must_be_of_an_offered_language(project: Path) -> None:
    issue = project / "issues" / "tailored.yaml"
    text = issue.read_text(encoding="utf-8").replace("  sr-Latn:\n", "  de:\n")
    issue.write_text(text, encoding="utf-8")
    result = run_compose("validate", "issues/tailored.yaml", cwd=project)
    assert result.code == 1
    assert "translation 'de' is not an edition to add (offered: en, sr-Latn, sq)" in result.stderr


def test_sendgrid_sends_each_variant_in_requests_of_its_own(project: Path) -> None:
    from doubles.sendgrid_api import SendGridDouble

    key = "SG.variant-test-key"
    with SendGridDouble(api_key=key) as double:
        result = run_compose(
            "send", "issues/tailored.yaml", "--list", "readers", "--transport", "sendgrid",
            "--yes", cwd=project, env={**SECRET, "SENDGRID_API_KEY": key,
                                       "COMPOSE_SENDGRID_HOST": double.url},
        )  # fmt: skip
    assert result.code == 0, result.stderr
    requests = [r for r in double.requests if r.path == "/v3/mail/send"]
    assert len({r.body["content"][1]["value"] for r in requests}) == len(requests) > 1
    assert sorted(double.recipients()) == [
        "ana@example.org", "bora@example.org", "clara@example.org", "dan@example.com",
        "eva@example.com",
    ]  # fmt: skip
    # The same editions, pillars and values as the outbox gives them (see the test above).
    text, _ = double.rendered("ana@example.org")
    assert toc(text) == ["Kontrola granica", "From the office"]
    assert "Dobar dan, Ana Petrović," in text
    _, ana = double.personalization("ana@example.org")
    assert ana["subject"] == "Ana Petrović, vaše vesti UNODC-a"
    clara, _ = double.rendered("clara@example.org")
    assert toc(clara) == ["Financial flows", "From the office"]
    dan, _ = double.rendered("dan@example.com")
    assert toc(dan) == ["Border control", "Financial flows", "Prevention", "From the office"]


def test_sendgrid_fills_merge_fields_as_substitutions(project: Path) -> None:
    from doubles.sendgrid_api import SendGridDouble

    (project / "subscribers" / "one.csv").write_text(
        "email,name,country,organization\n"
        "ana@example.org,Ana <Petrović>,Serbia,Ministry\n"
        "dan@example.com,,,\n",
        encoding="utf-8",
    )
    key = "SG.variant-test-key"
    with SendGridDouble(api_key=key) as double:
        result = run_compose(
            "send", "issues/tailored.yaml", "--list", "one", "--transport", "sendgrid", "--yes",
            cwd=project, env={**SECRET, "SENDGRID_API_KEY": key,
                              "COMPOSE_SENDGRID_HOST": double.url},
        )  # fmt: skip
        assert result.code == 0, result.stderr
        _, ana = double.personalization("ana@example.org")
        _, dan = double.personalization("dan@example.com")
        text, body = double.rendered("ana@example.org")
        dan_text, _ = double.rendered("dan@example.com")
    assert ana["subject"] == "Ana <Petrović>, your UNODC SEE news"
    assert dan["subject"] == "Colleague, your UNODC SEE news"
    assert "Dear Ana <Petrović>," in text
    assert "Dear Ana &lt;Petrović&gt;," in body
    assert "officers from Serbia trained" in " ".join(text.split())
    assert "Dear colleague," in dan_text
    assert "-compose" not in text + body and "zqMERGE" not in text + body
