"""Sign-up, double opt-in, preferences and consent records over real HTTP (uvicorn + httpx)."""

from __future__ import annotations

import csv
import email
import hashlib
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import policy
from pathlib import Path

import httpx
import pytest

from composer.audience.consent import COLUMNS, text_sha256
from composer.audience.suppressions import add_suppressions, load_suppressed
from composer.delivery.tokens import make_token
from composer.project import Project, load_project
from composer.web.app import create_app
from composer.web.signed import BadToken, ExpiredToken, make_signed, read_signed
from composer.web.signup import MAX_AGE_SECONDS, PURPOSE
from tests.conftest import run_compose
from tests.test_serve import ServerThread

SECRET = b"signup-test-secret"
CONSENT = "I agree to receive the Signup Test Bulletin and know I can unsubscribe at any time."
NEWSLETTER_YAML = """\
name: Signup Test Bulletin
organization: Composer Tests
language: en
archive_url: https://news.example.org/archive/
public_url: {public_url}
postal_address: "1 Test Street, 1000 Testville"
from: {{name: Signup Test Bulletin, email: bulletin@example.org}}
pillars:
  I: {{title: "Law enforcement, border security and related topics"}}
  II: {{title: Organized crime and illicit financial flows}}
  III: {{title: Drug use prevention and treatment}}
signup:
  lists: [newsletter, events]
  interests: true
  consent: "{consent}"
transport:
{transport}
"""
OUTBOX = "  kind: outbox"
# httpx.Client() builds an SSL context (~75 ms of CPU) unless given one: these talk plain HTTP.
TLS = ssl.create_default_context()


def client(timeout: float = 30) -> httpx.Client:
    """An HTTP client with a cookie jar of its own (one browser)."""
    return httpx.Client(verify=TLS, timeout=timeout)


def write_project(root: Path, public_url: str, transport: str = OUTBOX) -> Project:
    """A newsletter project for the reader's side, with a `newsletter` list of one reader."""
    (root / "subscribers").mkdir(parents=True, exist_ok=True)
    (root / "newsletter.yaml").write_text(
        NEWSLETTER_YAML.format(public_url=public_url, consent=CONSENT, transport=transport),
        encoding="utf-8",
    )
    (root / "subscribers" / "newsletter.csv").write_text(
        "email,name\nknown@example.org,Known Reader\n", encoding="utf-8"
    )
    return load_project(root)


class ReaderServer(ServerThread):
    """A project whose public_url is a uvicorn server on a free port, in a background thread."""

    def __init__(self, root: Path, *, rate: str = "100000/minute", transport: str = OUTBOX) -> None:
        super().__init__()  # bound first: the project's public_url names the port
        self.project = write_project(root, f"{self.base}/", transport)
        self.serve(create_app(self.project, root / "build", SECRET, signup_rate=rate))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ReaderServer]:
    with ReaderServer(tmp_path / "project") as running:
        yield running


# -- helpers ---------------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def heading(page: httpx.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", page.text)
    assert found, page.text
    return found.group(1)


def outbox_message(project: Project, address: str) -> email.message.EmailMessage:
    """The confirmation e-mail written to the outbox for `address`."""
    path = project.root / "outbox" / "confirmations" / f"{address.lower()}.eml"
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def confirm_link(message: email.message.EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(r"(http://\S+/confirm/\S+)", body.get_content())
    assert found, body.get_content()
    return found.group(1)


def sign_up(client: httpx.Client, base: str, address: str, **fields: object) -> httpx.Response:
    """GET the form, then POST it filled in like a person would."""
    form = client.get(f"{base}/subscribe")
    assert form.status_code == 200
    data: dict[str, object] = {
        "email": address,
        "name": "",
        "lists": ["newsletter"],
        "consent": "yes",
        "website": "",
        "csrf": csrf_of(form),
    }
    data.update(fields)
    data = {key: value for key, value in data.items() if value is not None}
    return client.post(f"{base}/subscribe", data=data)


def confirm(client: httpx.Client, link: str) -> httpx.Response:
    page = client.get(link)
    assert page.status_code == 200, page.text
    return client.post(link, data={"csrf": csrf_of(page)})


def list_rows(project: Project, name: str) -> list[dict[str, str]]:
    path = project.subscribers_dir / f"{name}.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def consent_rows(project: Project) -> list[dict[str, str]]:
    path = project.subscribers_dir / "consent.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == COLUMNS
    assert all(len(row) == len(COLUMNS) for row in rows), "a torn or short line"
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]


def snapshot(project: Project) -> dict[str, bytes]:
    """Every file of the project's subscribers/ and outbox/, to see that nothing changed."""
    found = {}
    for folder in (project.subscribers_dir, project.root / "outbox"):
        if folder.exists():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    found[str(path.relative_to(project.root))] = path.read_bytes()
    return found


# -- the whole journey -----------------------------------------------------------------------


def test_sign_up_confirm_and_consent_records(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        sent = sign_up(
            browser, served.base, "Reader@Example.org", name="Rea Der",
            lists=["newsletter", "events"], interests=["I", "III"],
        )  # fmt: skip
        assert sent.status_code == 200
        assert heading(sent) == "Check your inbox"
        assert "reader@example.org" not in {
            r["email"].lower() for r in list_rows(project, "newsletter")
        }
        message = outbox_message(project, "reader@example.org")
        assert message["To"] == "Reader@example.org"
        assert message["Subject"] == "Confirm your subscription to Signup Test Bulletin"
        link = confirm_link(message)
        assert link.startswith(f"{served.base}/confirm/")
        assert "reader" not in link.lower()  # the address is sealed inside the token
        done = confirm(browser, link)
    assert done.status_code == 200
    assert heading(done) == "You are subscribed"
    for name in ("newsletter", "events"):
        (row,) = [r for r in list_rows(project, name) if r["email"].lower() == "reader@example.org"]
        assert row["name"] == "Rea Der"
        assert row["interests"] == "I;III"
    records = consent_rows(project)
    assert [(r["list"], r["action"]) for r in records] == [
        ("newsletter", "subscribe"),
        ("events", "subscribe"),
        ("newsletter", "confirm"),
        ("events", "confirm"),
    ]
    for record in records:
        assert record["consent_text_sha256"] == hashlib.sha256(CONSENT.encode()).hexdigest()
        assert record["consent_text_sha256"] == text_sha256(CONSENT)
        assert record["form"] == "signup"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["at"])
        assert re.fullmatch(r"[0-9a-f]{32}", record["ip_hash"])
        assert "127.0.0.1" not in record.values()
        assert record["user_agent"].startswith("python-httpx/")


def test_a_sign_up_on_another_editions_page_gets_that_edition(tmp_path: Path) -> None:
    editions = OUTBOX + "\nlanguages: [en, sq]"
    with ReaderServer(tmp_path / "project", transport=editions) as served:
        for address, accept in (("besa@example.org", "sq"), ("ann@example.org", "en-GB")):
            with client() as browser:
                browser.headers["Accept-Language"] = accept
                assert sign_up(browser, served.base, address).status_code == 200
                done = confirm(browser, confirm_link(outbox_message(served.project, address)))
                assert done.status_code == 200
        rows = {r["email"]: r for r in list_rows(served.project, "newsletter")}
    assert rows["besa@example.org"]["language"] == "sq"  # the Albanian edition
    assert rows["ann@example.org"]["language"] == ""  # the default edition, as without a column
    assert rows["known@example.org"]["language"] == ""


def test_the_form_shows_the_consent_sentence_lists_and_pillars(served: ReaderServer) -> None:
    page = httpx.get(f"{served.base}/subscribe")
    assert page.status_code == 200
    assert CONSENT in page.text
    assert 'name="website"' in page.text
    assert "Organized crime and illicit financial flows" in page.text
    assert re.search(r'value="newsletter" checked', page.text)
    assert "compose_csrf" in page.headers["set-cookie"]
    assert "samesite=strict" in page.headers["set-cookie"].lower()
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_confirming_twice_changes_nothing(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        sign_up(browser, served.base, "twice@example.org")
        link = confirm_link(outbox_message(project, "twice@example.org"))
        assert heading(confirm(browser, link)) == "You are subscribed"
        before = snapshot(project)
        again = confirm(browser, link)
    assert again.status_code == 200
    assert heading(again) == "You had already confirmed"
    assert snapshot(project) == before


def test_tampered_and_expired_links_get_a_clear_400(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        sign_up(browser, served.base, "late@example.org")
        link = confirm_link(outbox_message(project, "late@example.org"))
        token = link.rsplit("/", 1)[1]
        flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        for bad in (flipped, token[:-4], "x", token + "A"):
            response = browser.get(f"{served.base}/confirm/{bad}")
            assert response.status_code == 400
            assert heading(response) == "This confirmation link is not valid"
        old = make_signed(
            SECRET, PURPOSE,
            {"e": "late@example.org", "n": "", "l": ["newsletter"], "i": [], "c": "", "f": "signup"},
            now=time.time() - MAX_AGE_SECONDS - 60,
        )  # fmt: skip
        expired = browser.get(f"{served.base}/confirm/{old}")
        assert expired.status_code == 400
        assert heading(expired) == "This confirmation link has expired"
        page = browser.get(link)
        before = snapshot(project)
        posted = browser.post(f"{served.base}/confirm/{old}", data={"csrf": csrf_of(page)})
        assert posted.status_code == 400
        # An unsubscribe token is not a confirmation token, nor the other way round.
        other = make_token(SECRET, "newsletter", "late@example.org")
        assert browser.get(f"{served.base}/confirm/{other}").status_code == 400
        assert browser.get(f"{served.base}/preferences/{token}").status_code == 400
    assert snapshot(project) == before


def test_signed_tokens_round_trip_and_expire() -> None:
    token = make_signed(SECRET, "confirm", {"e": "a@example.org"}, now=1_000_000)
    assert read_signed(SECRET, "confirm", token, 60, now=1_000_030) == (
        {"e": "a@example.org"},
        1_000_000,
    )
    with pytest.raises(ExpiredToken):
        read_signed(SECRET, "confirm", token, 60, now=1_000_061)
    with pytest.raises(BadToken):
        read_signed(SECRET, "other", token, 60, now=1_000_030)
    with pytest.raises(BadToken):
        read_signed(b"another secret", "confirm", token, 60, now=1_000_030)
    with pytest.raises(BadToken):  # dated in the future: not a clock step, a forgery
        read_signed(SECRET, "confirm", token, 60, now=1_000_000 - 3600)


def test_confirming_needs_our_csrf_token(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        sign_up(browser, served.base, "csrf@example.org")
        link = confirm_link(outbox_message(project, "csrf@example.org"))
        before = snapshot(project)
        assert browser.post(link, data={}).status_code == 403
        assert browser.post(link, data={"csrf": "forged"}).status_code == 403
    # Another browser: its own valid token, but not the cookie that goes with this page's.
    with client() as other:
        token = csrf_of(other.get(link))
    with client() as browser:
        browser.get(link)
        assert browser.post(link, data={"csrf": token}).status_code == 403
    assert snapshot(project) == before
    with client() as browser:
        assert (
            browser.post(
                f"{served.base}/subscribe",
                data={
                    "email": "x@example.org",
                    "consent": "yes",
                    "lists": "newsletter",
                    "csrf": "bad",
                },
            ).status_code
            == 403
        )


def test_a_filled_honeypot_gets_the_same_page_and_no_email(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        bot = sign_up(browser, served.base, "bot@example.org", website="https://spam.example")
        person = sign_up(browser, served.base, "person@example.org")
    assert bot.status_code == person.status_code == 200
    assert bot.text == person.text
    assert not (project.root / "outbox" / "confirmations" / "bot@example.org.eml").exists()
    assert {r["email"] for r in consent_rows(project)} == {"person@example.org"}


def test_a_missing_consent_or_bad_address_shows_the_form_again(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        no_consent = sign_up(browser, served.base, "shy@example.org", consent=None)
        assert no_consent.status_code == 400
        assert "Please tick the box" in no_consent.text
        assert 'value="shy@example.org"' in no_consent.text
        bad = sign_up(browser, served.base, "not an address")
        assert bad.status_code == 400
        assert "valid e-mail address" in bad.text
        no_list = sign_up(browser, served.base, "nolist@example.org", lists=["secret-list"])
        assert no_list.status_code == 400
    assert not (project.root / "outbox").exists()
    assert consent_rows(project) == []


def test_no_enumeration_new_known_and_suppressed_look_the_same(served: ReaderServer) -> None:
    project = served.project
    add_suppressions(project, [("gone@example.org", "unsubscribed (link, list newsletter)", "")])
    answers = []
    for address in ("brand.new@example.org", "known@example.org", "gone@example.org"):
        with client() as browser:
            response = sign_up(browser, served.base, address)
        answers.append((response.status_code, response.text))
        assert outbox_message(project, address)["To"] == address  # each gets the same e-mail
    assert answers[0] == answers[1] == answers[2]
    assert "gone@example.org" in load_suppressed(project)  # not re-added until it confirms


def test_a_suppressed_reader_who_confirms_is_resubscribed(served: ReaderServer) -> None:
    project = served.project
    add_suppressions(project, [("back@example.org", "unsubscribed (link, list newsletter)", "")])
    with client() as browser:
        sign_up(browser, served.base, "back@example.org")
        assert heading(
            confirm(browser, confirm_link(outbox_message(project, "back@example.org")))
        ) == ("You are subscribed")
    assert "back@example.org" not in load_suppressed(project)
    actions = [(r["list"], r["action"]) for r in consent_rows(project)]
    assert actions == [
        ("newsletter", "subscribe"),
        ("newsletter", "resubscribe"),
        ("newsletter", "confirm"),
    ]


def test_sign_ups_are_rate_limited_per_client(tmp_path: Path) -> None:
    with ReaderServer(tmp_path / "project", rate="2/minute") as served, client() as browser:
        codes = [sign_up(browser, served.base, f"r{n}@example.org").status_code for n in range(3)]
        assert codes == [200, 200, 429]
        assert not (
            served.project.root / "outbox" / "confirmations" / "r2@example.org.eml"
        ).exists()


def test_an_embedded_form_without_csrf_is_accepted(served: ReaderServer) -> None:
    """The copy-paste snippet of docs/readers.md, posted from another site."""
    response = httpx.post(
        f"{served.base}/subscribe",
        data={"email": "embed@example.org", "consent": "yes", "website": ""},
    )
    assert response.status_code == 200
    assert heading(response) == "Check your inbox"
    records = consent_rows(served.project)
    assert [(r["list"], r["form"]) for r in records] == [("newsletter", "embed")]


@pytest.mark.parametrize("route", ["/subscribe", "/confirm/{token}", "/preferences/{token}",
                                   "/unsubscribe/{token}/resubscribe"])  # fmt: skip
def test_oversized_bodies_are_refused(served: ReaderServer, route: str) -> None:
    token = make_token(SECRET, "newsletter", "known@example.org")
    body = b"email=a%40example.org&pad=" + b"x" * (1024 * 1024)
    response = httpx.post(
        served.base + route.format(token=token),
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


def test_get_never_changes_anything(served: ReaderServer) -> None:
    project = served.project
    with client() as browser:
        sign_up(browser, served.base, "look@example.org")
    link = confirm_link(outbox_message(project, "look@example.org"))
    token = make_token(SECRET, "newsletter", "known@example.org")
    before = snapshot(project)
    urls = [
        f"{served.base}/subscribe?email=scan%40example.org&consent=yes&lists=newsletter",
        link,
        f"{served.base}/preferences/{token}?action=unsubscribe-all&lists=events",
        f"{served.base}/unsubscribe/{token}?List-Unsubscribe=One-Click",
        f"{served.base}/unsubscribe/{token}/resubscribe",
    ]
    for _ in range(2):  # scanners fetch a link more than once
        for url in urls:
            assert httpx.get(url).status_code in (200, 405)
            assert httpx.head(url).status_code in (200, 405)
    assert snapshot(project) == before


def test_preferences_change_lists_interests_and_unsubscribe_from_everything(
    served: ReaderServer,
) -> None:
    project = served.project
    token = make_token(SECRET, "newsletter", "known@example.org")
    url = f"{served.base}/preferences/{token}"
    with client() as browser:
        page = browser.get(url)
        assert page.status_code == 200
        assert re.search(r'value="newsletter" checked', page.text)
        assert not re.search(r'value="events" checked', page.text)
        saved = browser.post(
            url,
            data={"csrf": csrf_of(page), "lists": ["events"], "interests": ["II"],
                  "language": "en", "action": "save"},
        )  # fmt: skip
        assert saved.status_code == 200
        assert "Saved." in saved.text
        (row,) = list_rows(project, "events")
        assert (row["email"], row["name"], row["interests"]) == (
            "known@example.org", "Known Reader", "II",
        )  # fmt: skip
        (row,) = list_rows(project, "newsletter")
        assert row["status"] == "unsubscribed"  # the row stays: an old import never re-adds
        gone = browser.post(url, data={"csrf": csrf_of(saved), "action": "unsubscribe-all"})
        assert gone.status_code == 200
        assert "known@example.org" in load_suppressed(project)
    actions = [(r["list"], r["action"], r["form"]) for r in consent_rows(project)]
    assert actions == [
        ("newsletter", "unsubscribe", "preferences"),
        ("events", "preferences", "preferences"),
        ("events", "unsubscribe", "preferences"),
    ]


def test_unsubscribe_is_recorded_and_can_be_undone(served: ReaderServer) -> None:
    project = served.project
    token = make_token(SECRET, "newsletter", "known@example.org")
    url = f"{served.base}/unsubscribe/{token}"
    with client() as browser:
        ask = browser.get(url)
        assert f"{served.base}/preferences/{token}" in ask.text
        done = browser.post(url, data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        assert "known@example.org" in load_suppressed(project)
        undo = re.search(r'action="([^"]+)"', done.text)
        assert undo and undo.group(1) == f"/unsubscribe/{token}/resubscribe"
        assert browser.post(f"{served.base}{undo.group(1)}", data={}).status_code == 403
        again = browser.post(f"{served.base}{undo.group(1)}", data={"csrf": csrf_of(done)})
        assert again.status_code == 200
        assert heading(again) == "You are subscribed again"
    assert "known@example.org" not in load_suppressed(project)
    actions = [(r["list"], r["action"], r["form"]) for r in consent_rows(project)]
    assert actions == [
        ("newsletter", "unsubscribe", "one-click"),
        ("newsletter", "resubscribe", "unsubscribe-undo"),
    ]


# -- no lost writes --------------------------------------------------------------------------


def test_500_sign_ups_and_confirmations_during_an_import(served: ReaderServer) -> None:
    """Readers confirm while `compose subscribers import` (another process) merges
    spreadsheets into the same list: every write of both is there, once, and whole."""
    project = served.project
    addresses = [f"reader{n:03d}@example.org" for n in range(500)]
    sheets = []
    for part in range(4):
        sheet = project.root / f"sheet-{part}.csv"
        rows = [f"imported{part}.{n:04d}@example.org,Serbia\n" for n in range(1000)]
        sheet.write_text("email,country\n" + "".join(rows), encoding="utf-8")
        sheets.append(sheet)
    imported = [f"imported{part}.{n:04d}@example.org" for part in range(4) for n in range(1000)]
    done = threading.Event()
    runs: list[int] = []

    def keep_importing() -> None:
        """Import the sheets one after another, again and again, until the readers are done."""
        while not done.is_set() or len(runs) < len(sheets):
            sheet = sheets[len(runs) % len(sheets)]
            result = run_compose(
                "--project", project.root, "subscribers", "import", sheet, "--list", "newsletter",
                process=True,
            )  # fmt: skip
            assert result.code == 0, result.stderr
            runs.append(result.code)

    def journey(address: str) -> tuple[int, int]:
        with client(60) as browser:
            sent = sign_up(browser, served.base, address, lists=["newsletter", "events"])
            done_page = confirm(browser, confirm_link(outbox_message(project, address)))
            return sent.status_code, done_page.status_code

    importer = threading.Thread(target=keep_importing)
    importer.start()
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(journey, addresses))
    finally:
        done.set()
        importer.join()
    assert results == [(200, 200)] * 500
    newsletter = Counter(r["email"] for r in list_rows(project, "newsletter"))
    for address in [*addresses, *imported, "known@example.org"]:
        assert newsletter[address] == 1, address
    assert len(newsletter) == 1 + 500 + 4000
    events = Counter(r["email"] for r in list_rows(project, "events"))
    assert events == Counter(addresses)
    records = consent_rows(project)  # every line whole: eight fields
    expected = Counter((a, name, action) for a in addresses for name in ("newsletter", "events")
                       for action in ("subscribe", "confirm"))  # fmt: skip
    assert Counter((r["email"], r["list"], r["action"]) for r in records) == expected


def test_the_request_log_hides_addresses_and_tokens(
    served: ReaderServer, caplog: pytest.LogCaptureFixture
) -> None:
    project = served.project
    with caplog.at_level("INFO", logger="composer.web.access"), client() as browser:
        sign_up(browser, served.base, "private.person@example.org")
        link = confirm_link(outbox_message(project, "private.person@example.org"))
        confirm(browser, link)
        token = make_token(SECRET, "newsletter", "private.person@example.org")
        browser.get(f"{served.base}/preferences/{token}")
    lines = [r.getMessage() for r in caplog.records if r.name == "composer.web.access"]
    assert any("confirmed p***@example.org" in line for line in lines), lines
    text = "\n".join(lines)
    assert "private.person" not in text
    assert link.rsplit("/", 1)[1] not in text
    assert token not in text


def test_the_confirmation_goes_through_sendgrid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.doubles.sendgrid_api import SendGridDouble

    with SendGridDouble(api_key="SG.test") as sendgrid:
        monkeypatch.setenv("SENDGRID_API_KEY", "SG.test")
        monkeypatch.setenv("COMPOSE_SENDGRID_HOST", sendgrid.url)
        transport = "  kind: sendgrid"
        with ReaderServer(tmp_path / "project", transport=transport) as served, client() as browser:
            sent = sign_up(browser, served.base, "grid@example.org")
            assert sent.status_code == 200
            assert sendgrid.recipients() == ["grid@example.org"]
            payload, _ = sendgrid.personalization("grid@example.org")
            assert payload["subject"] == "Confirm your subscription to Signup Test Bulletin"
            (content,) = payload["content"]
            assert content["type"] == "text/plain"
            link = re.search(r"(http://\S+/confirm/\S+)", content["value"])
            assert link
            assert heading(confirm(browser, link.group(1))) == "You are subscribed"


def test_a_transport_that_cannot_send_gets_503_and_no_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    with (
        ReaderServer(tmp_path / "project", transport="  kind: sendgrid") as served,
        client() as browser,
    ):
        response = sign_up(browser, served.base, "nokey@example.org")
        assert response.status_code == 503
        assert heading(response) == "We could not send the e-mail"
    assert consent_rows(served.project) == []
