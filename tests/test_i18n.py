"""The theme's languages: complete catalogues, the compiled .mo matching its .po, the issue and the
reader's pages in Serbian (Latin) and Albanian, and how a page picks its language."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from composer.build import build_issue
from composer.delivery.tokens import make_token
from composer.project import load_project
from composer.render import i18n, templates
from tests.conftest import REPO
from tests.test_signup import (
    SECRET,
    ReaderServer,
    client,
    confirm_link,
    csrf_of,
    heading,
    outbox_message,
    sign_up,
)

LOCALE_DIR = REPO / "composer" / "theme" / "locale"
LANGUAGES = {"sr-Latn": "sr_Latn", "sq": "sq"}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def source_messages() -> set[str]:
    """Every message the package's code and templates mark, extracted as tools/i18n.py does."""
    from babel.messages.frontend import parse_mapping_cfg

    with (REPO / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(REPO / "composer", method_map, options_map, KEYWORDS)
    return {message if isinstance(message, str) else message[0] for _, _, message, *_ in found}


def _singular(message_id: str | tuple[str, ...] | list[str]) -> str:
    """A message's id as extraction names it (a plural message by its singular)."""
    return message_id if isinstance(message_id, str) else message_id[0]


def _key(value: str | tuple[str, ...] | list[str]) -> str | tuple[str, ...]:
    return value if isinstance(value, str) else tuple(value)


def _complete(translation: str | tuple[str, ...] | list[str]) -> bool:
    """Translated: the string, or every plural form of it."""
    return bool(translation) if isinstance(translation, str) else all(translation)


def catalogue(folder: str) -> Catalog:
    path = LOCALE_DIR / folder / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        return read_po(po, locale=folder)


@pytest.mark.parametrize("folder", LANGUAGES.values())
def test_every_message_is_translated_and_none_is_fuzzy(folder: str) -> None:
    cat = catalogue(folder)
    wanted = source_messages()
    assert len(wanted) > 90  # the extraction itself works (babel.cfg's patterns match)
    entries = {_singular(m.id): m for m in cat if m.id}
    missing = sorted(wanted - set(entries))
    assert not missing, f"{folder}: not in messages.po (run tools/i18n.py update): {missing}"
    untranslated = sorted(i for i in wanted if not _complete(entries[i].string))
    assert not untranslated, f"{folder}: untranslated: {untranslated}"
    fuzzy = sorted(i for i in wanted if entries[i].fuzzy)
    assert not fuzzy, f"{folder}: fuzzy (check, then remove the flag): {fuzzy}"
    # python-format placeholders must be the same in the translation as in the source.
    problems = [(m.id, [str(e) for e in errors]) for m, errors in cat.check()]
    assert not problems, problems


@pytest.mark.parametrize("folder", LANGUAGES.values())
def test_the_compiled_catalogue_matches_its_source(folder: str) -> None:
    """The .mo files are committed: each must say what its .po says (tools/i18n.py compile)."""
    with (LOCALE_DIR / folder / "LC_MESSAGES" / "messages.mo").open("rb") as mo:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(mo) if m.id}
    written = {_key(m.id): _key(m.string) for m in catalogue(folder) if m.id and not m.fuzzy}
    assert compiled == written, "run `python tools/i18n.py compile` and commit the .mo"


@pytest.mark.parametrize(
    ("asked", "resolved"),
    [
        ("sr-Latn", "sr-Latn"),
        ("sr-latn-RS", "sr-Latn"),
        ("sr_Latn", "sr-Latn"),
        ("sr", "sr-Latn"),  # no Cyrillic catalogue: Serbian readers read Latin too
        ("SQ", "sq"),
        ("sq-AL", "sq"),
        ("en-GB", "en"),
        ("de", "en"),  # no catalogue: the source language
        ("", "en"),
        ("not a tag!", "en"),
    ],
)
def test_a_language_tag_resolves_to_a_catalogue_or_english(asked: str, resolved: str) -> None:
    assert i18n.resolve_language(asked) == resolved


def test_accept_language_is_read_by_weight() -> None:
    header = "de-DE,de;q=0.9, sq;q=0.8, sr-Latn-RS;q=0.85, en;q=0, *;q=0.1"
    assert i18n.accept_language(header) == ["de-DE", "de", "sr-Latn-RS", "sq"]
    assert i18n.negotiate(i18n.accept_language(header)) == "sr-Latn"
    assert i18n.negotiate(i18n.accept_language("fr, it")) is None
    assert i18n.accept_language("en;q=nonsense, sq") == ["sq"]


def test_dates_follow_the_language() -> None:
    day = dt.date(2021, 1, 15)
    assert templates.long_date(day) == "15 January 2021"  # as UN documents write it
    assert templates.long_date(day, "sr-Latn") == "15. januar 2021."
    assert templates.long_date(day, "sq") == "15 janar 2021"
    assert templates.volume_label("2022-05") == "May 2022"
    assert i18n.month_year(dt.date(2022, 5, 1), "sq") == "maj 2022"


def test_one_environment_per_language_is_kept() -> None:
    folder = REPO / "templates"
    assert templates.environment(folder, "sq") is templates.environment(folder, "sq-AL")
    assert templates.environment(folder, "de") is templates.environment(folder)
    assert templates.environment(folder, "sq") is not templates.environment(folder, "sr-Latn")


ENGLISH_FIXED = [
    "In this issue",
    "View in browser",
    "View this issue in your browser",
    "Preferences",
    "Unsubscribe",
    "Further resources:",
    "Read more",
    "PILLAR I",
    ">Pillar I",
    "Contributes to SDG",
]
EXPECTED = {  # in the email's two parts and in the web version
    "sr-Latn": ["U ovom broju", "Stub I", "Br. 36", "15. januar 2021."],
    "sq": ["Në këtë numër", "Shtylla I", "Nr. 36", "15 janar 2021"],
}
EMAIL_ONLY = {  # the footer's links, which the web version does not have
    "sr-Latn": ["Prikaz u veb-pregledaču", "Podešavanja", "Odjavite se"],
    "sq": ["Shikojeni në shfletues", "Preferencat", "Çregjistrohuni"],
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_issue_is_rendered_in_the_language(language: str, editions: Path) -> None:
    project = load_project(editions)
    issue = editions / "issues" / "vol-36.yaml"
    built = build_issue(project, issue, language=language)
    assert built.language == language
    english = build_issue(project, issue)
    for part in (built.email_html, built.web_html):
        assert f'<html lang="{language}"' in part
    for text in (built.email_html, built.email_txt, built.web_html):
        wanted = EXPECTED[language] + (EMAIL_ONLY[language] if text != built.web_html else [])
        for words in wanted:
            assert words in text or words.upper() in text, (language, words)
        for words in ENGLISH_FIXED:
            assert words not in text, (language, words)
    assert EXPECTED[language][0].upper() in built.email_txt  # IN THIS ISSUE, translated
    sdg = {
        "sr-Latn": "Doprinosi ostvarenju SDG 16.4: ",
        "sq": "Kontribuon në arritjen e SDG 16.4: ",
    }
    may = build_issue(project, editions / "issues" / "2022-05.yaml", language=language)
    assert sdg[language] in may.web_html  # the targets' official wording stays as the UN wrote it
    assert "Contributes to SDG" not in may.web_html + may.email_txt
    # The same issue, the same checks: a translation adds no warning of its own.
    assert [(c.code, c.level) for c in built.checks] == [(c.code, c.level) for c in english.checks]
    digest = build_issue(project, issue, mode="digest", language=language)
    assert {"sr-Latn": "Opširnije", "sq": "Lexoni më shumë"}[language] in digest.email_html
    assert "Read more" not in digest.email_html + digest.email_txt


def test_a_language_the_issue_has_no_edition_in_gets_the_english_issue() -> None:
    project = load_project(REPO)
    may = REPO / "issues" / "2022-05.yaml"  # no translations: every reader reads it in English
    albanian = build_issue(project, may, language="sq")
    assert albanian.language == "en" and albanian.email_html == build_issue(project, may).email_html


def test_an_unknown_language_gets_the_english_issue() -> None:
    project = load_project(REPO)
    issue = REPO / "issues" / "vol-36.yaml"
    german = build_issue(project, issue, language="de")
    english = build_issue(project, issue)
    assert german.language == "en"
    assert german.email_html == english.email_html and german.email_txt == english.email_txt


# -- the reader's pages ------------------------------------------------------------------------


def with_language_column(server: ReaderServer, language: str) -> None:
    (server.project.root / "subscribers" / "newsletter.csv").write_text(
        f"email,name,language\nknown@example.org,Known Reader,{language}\n", encoding="utf-8"
    )


def lang_of(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_pages_follow_accept_language(tmp_path: Path) -> None:
    with ReaderServer(tmp_path / "project") as served, client() as browser:
        base = served.base
        page = browser.get(f"{base}/subscribe", headers={"Accept-Language": "sq-AL,sq;q=0.9"})
        assert lang_of(page) == "sq" and heading(page) == "Abonohuni në Signup Test Bulletin"
        assert "Adresa e email-it" in page.text
        page = browser.get(f"{base}/subscribe", headers={"Accept-Language": "sr-Latn-RS"})
        assert lang_of(page) == "sr-Latn" and heading(page) == "Prijava na Signup Test Bulletin"
        page = browser.get(f"{base}/subscribe", headers={"Accept-Language": "fr, de;q=0.5"})
        assert lang_of(page) == "en" and heading(page) == "Subscribe to Signup Test Bulletin"
        # A form sent back with a mistake says so in the reader's language.
        form = browser.get(f"{base}/subscribe", headers={"Accept-Language": "sq"})
        again = browser.post(
            f"{base}/subscribe",
            data={"email": "not an address", "lists": ["newsletter"], "consent": "yes",
                  "csrf": csrf_of(form)},
            headers={"Accept-Language": "sq"},
        )  # fmt: skip
        assert again.status_code == 400
        assert "Ju lutemi shkruani një adresë email-i të vlefshme." in again.text
        broken = browser.get(f"{base}/confirm/nonsense", headers={"Accept-Language": "sr"})
        assert broken.status_code == 400 and lang_of(broken) == "sr-Latn"
        assert heading(broken) == "Ovaj link za potvrdu nije važeći"
        index = browser.get(f"{base}/", headers={"Accept-Language": "sq"})
        assert lang_of(index) == "sq" and "Ende nuk është publikuar asnjë numër." in index.text
        assert index.headers["vary"] == "Accept-Language"
        missing = browser.get(f"{base}/no-such-issue/", headers={"Accept-Language": "sq"})
        assert missing.status_code == 404 and heading(missing) == "Faqja nuk u gjet"


def test_a_known_reader_gets_the_language_of_their_list_row(tmp_path: Path) -> None:
    with ReaderServer(tmp_path / "project") as served, client() as browser:
        with_language_column(served, "sq")
        token = make_token(SECRET, "newsletter", "known@example.org")
        # Their browser says English; their record says Albanian, and the record wins.
        english = {"Accept-Language": "en"}
        ask = browser.get(f"{served.base}/unsubscribe/{token}", headers=english)
        assert lang_of(ask) == "sq"
        assert heading(ask) == "Dëshironi të çregjistroheni nga Signup Test Bulletin?"
        done = browser.post(
            f"{served.base}/unsubscribe/{token}",
            data={"List-Unsubscribe": "One-Click"},
            headers=english,
        )
        assert done.status_code == 200 and heading(done) == "Jeni çregjistruar"
        prefs = browser.get(f"{served.base}/preferences/{token}", headers=english)
        assert lang_of(prefs) == "sq" and heading(prefs) == "Preferencat tuaja"
        saved = browser.post(
            f"{served.base}/preferences/{token}",
            data={"csrf": csrf_of(prefs), "lists": ["newsletter"], "action": "save"},
            headers=english,
        )
        assert saved.status_code == 200 and "U ruajt." in saved.text
        with_language_column(served, "")  # an empty cell: the browser decides
        prefs = browser.get(f"{served.base}/preferences/{token}", headers={"Accept-Language": "sr"})
        assert lang_of(prefs) == "sr-Latn" and heading(prefs) == "Vaša podešavanja"


def test_the_confirmation_email_is_in_the_language_of_the_sign_up_page(tmp_path: Path) -> None:
    with ReaderServer(tmp_path / "project") as served, client() as browser:
        browser.headers["Accept-Language"] = "sq-AL, en;q=0.5"
        assert sign_up(browser, served.base, "ana@example.org").status_code == 200
        message = outbox_message(served.project, "ana@example.org")
        assert message["Subject"] == "Konfirmoni abonimin tuaj në Signup Test Bulletin"
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        assert text.startswith("Përshëndetje,\n\ndikush, ndoshta ju, kërkoi të marrë")
        assert "shtypni butonin “Konfirmo”:" in text  # the button's words on the page
        # The link opens in whatever browser the mail app has: the pages keep the sign-up's language.
        browser.headers["Accept-Language"] = "en"
        ask = browser.get(confirm_link(message))
        assert lang_of(ask) == "sq" and heading(ask) == "E konfirmoni abonimin?"
        done = browser.post(confirm_link(message), data={"csrf": csrf_of(ask)})
        assert done.status_code == 200 and heading(done) == "Jeni abonuar"
        sign_up(browser, served.base, "bo@example.org")
        english = outbox_message(served.project, "bo@example.org")
        assert english["Subject"] == "Confirm your subscription to Signup Test Bulletin"
