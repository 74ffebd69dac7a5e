"""`compose report` after a real send (SendGrid v3 double) and a batch of signed webhook events:
the terminal table, --json, and the --html page opened in Chromium (light and dark, 375 px and
desktop, axe-clean, WCAG AA text contrast, nothing fetched).

The screenshots in docs/ (docs/report*.png) are regenerated only on request:

    COMPOSE_UPDATE_SCREENSHOT=1 python -m pytest -p no:cacheprovider tests/test_events_report.py
"""

from __future__ import annotations

import email
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from doubles.delivery_project import make_project, run, send
from doubles.sendgrid_api import SendGridDouble
from doubles.sendgrid_events import WebhookSigner
from playwright.sync_api import Browser

from composer.events.sendgrid_events import PUBLIC_KEY_ENV
from composer.project import load_project
from composer.web.app import create_app
from tests.axe import describe, serious_violations
from tests.browser import offline_page, text_contrasts
from tests.conftest import REPO
from tests.test_events_webhook import KEY, Sent
from tests.test_serve import ServerThread

READERS = [(f"reader{i:02d}@example.org", f"Reader {i}") for i in range(40)]
UPDATE = bool(os.environ.get("COMPOSE_UPDATE_SCREENSHOT"))
VIEWPORTS = {"mobile": {"width": 375, "height": 740}, "desktop": {"width": 1100, "height": 800}}
LINKS = ["https://www.example.org/reports/2026-organised-crime", "https://www.example.org/events"]


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("report"), READERS, transport="sendgrid")
    signer = WebhookSigner()
    with SendGridDouble(api_key=KEY) as double:
        assert send(root, SENDGRID_API_KEY=KEY, COMPOSE_SENDGRID_HOST=double.url).code == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PUBLIC_KEY_ENV, signer.public_key)
        app = create_app(load_project(root), root / "build")
    with ServerThread(app) as server:
        sent = Sent(root, double, signer, server.base)
        start = int(time.time()) - 6 * 3600
        events = []
        for i, (address, _) in enumerate(READERS):
            at = start + (i % 6) * 3600 + i
            if i == 0:
                events.append(sent.event(address, event="bounce", type="bounce", status="5.1.1",
                                         reason="550 5.1.1 user unknown", timestamp=at))  # fmt: skip
                continue
            if i == 1:
                events.append(sent.event(address, event="bounce", type="blocked",
                                         reason="421 4.7.0 try later", timestamp=at))  # fmt: skip
                continue
            events.append(sent.event(address, event="delivered", timestamp=at))
            if i == 2:
                events.append(sent.event(address, event="spamreport", timestamp=at + 60))
            if i == 3:
                events.append(sent.event(address, event="unsubscribe", timestamp=at + 60))
            if i % 3 == 0:
                events.append(
                    sent.event(address, event="click", url=LINKS[i % 2], timestamp=at + 90)
                )
        for n, event in enumerate(events):
            event["sg_event_id"] = f"r-{n}"
        response = sent.post(events)
        assert response.status_code == 200 and response.json()["applied"] == len(events)
    yield root


def test_the_terminal_table_tells_what_happened(reported: Path) -> None:
    result = run(reported, "report", str(reported / "issues" / "x.yaml"))
    assert result.code == 0, result.stderr
    lines = {line.split("  ")[0].strip(): line.split()[-1] for line in result.stdout.splitlines()
             if "  " in line and not line.startswith(" ")}  # fmt: skip
    assert lines["recipients"] == "40" and lines["sent"] == "40"
    assert lines["delivered"] == "38"
    assert lines["bounced (hard)"] == "1" and lines["bounced (soft)"] == "1"
    assert lines["complaints"] == "1" and lines["unsubscribes"] == "1"
    assert lines["clicks"] == "13"
    assert "main" in result.stdout and LINKS[0] in result.stdout
    assert "hard bounces and complaints, suppressed and never retried: 2" in result.stdout


def test_json_has_the_same_figures(reported: Path) -> None:
    result = run(reported, "report", str(reported / "issues" / "x.yaml"), "--json")
    data = json.loads(result.stdout)
    assert data["summary"]["delivered"] == 38
    assert data["lists"][0]["list"] == "main" and data["lists"][0]["recipients"] == 40
    assert {link["url"]: link["total"] for link in data["links"]} == {LINKS[0]: 6, LINKS[1]: 7}
    assert all(link["unique"] is None for link in data["links"])  # per_recipient is off
    assert sum(data["timeline"]["delivered"].values()) == 38


def test_a_report_of_an_issue_never_sent(reported: Path) -> None:
    result = run(reported, "report", str(reported / "issues" / "never.yaml"))
    assert result.code == 0
    assert result.stdout == "never: not sent, and no events recorded\n"


def test_the_html_report_in_chromium(reported: Path, tmp_path: Path, browser: Browser) -> None:
    out = tmp_path / "report.html"
    result = run(reported, "report", str(reported / "issues" / "x.yaml"), "--html", str(out))
    assert result.code == 0, result.stderr
    page_html = out.read_text(encoding="utf-8")
    assert "<script" not in page_html and 'src="http' not in page_html
    assert page_html.count("<svg") == 4  # two charts, light and dark
    requests: list[str] = []
    with offline_page(browser) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.set_content(page_html)
        assert (
            page.get_by_role("heading", level=1).inner_text()
            == "Test Bulletin — Vol. 1: Grüße & <news>"
        )
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            for size, viewport in VIEWPORTS.items():
                page.set_viewport_size(viewport)  # type: ignore[arg-type]
                found = serious_violations(page)
                assert not found, f"{scheme} {size}:\n{describe(found)}"
                low = [c for c in text_contrasts(page)
                       if float(str(c["ratio"])) < float(str(c["needed"]))]  # fmt: skip
                assert not low, f"{scheme} {size}: low contrast {low}"
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{scheme} {size} scrolls sideways"
                visible = page.locator("figure svg:visible").count()
                assert visible == 2, f"{scheme} {size}: {visible} charts shown"
                if UPDATE and (scheme, size) in (("light", "desktop"), ("dark", "mobile")):
                    suffix = "" if scheme == "light" else "-dark-375"
                    path = REPO / "docs" / f"report{suffix}.png"
                    page.screenshot(path=str(path), full_page=True)
    assert [r for r in requests if not r.startswith(("about:", "data:"))] == []


def test_unsubscribes_through_our_link_go_to_the_last_issue_each_reader_got(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path, [("ana@example.org", "Ana"), ("bo@example.org", "Bo")])
    second = root / "issues" / "y.yaml"
    shutil.copy(root / "issues" / "x.yaml", second)
    second.write_text(second.read_text().replace("volume: 1", "volume: 2"))

    def one_click(issue: str, address: str, base: str) -> None:
        data = (root / "outbox" / issue / f"{address}.eml").read_bytes()
        header = email.message_from_bytes(data)["List-Unsubscribe"]
        url = header.split("<", 1)[1].split(">", 1)[0]
        path = url.split("/unsubscribe/", 1)[1]
        response = httpx.post(f"{base}/unsubscribe/{path}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200, response.text

    assert send(root).code == 0  # x to Ana and Bo
    with ServerThread(create_app(load_project(root), root / "build")) as server:
        time.sleep(1.1)  # consent records are to the second
        one_click("x", "ana@example.org", server.base)  # Ana leaves after x
        assert run(root, "send", str(second), "--list", "main", "--yes").code == 0  # y to Bo
        time.sleep(1.1)
        one_click("y", "bo@example.org", server.base)  # Bo leaves after y: y's, not x's
    for issue, expected in (("x", 1), ("y", 1)):
        result = run(root, "report", str(root / "issues" / f"{issue}.yaml"), "--json")
        assert result.code == 0, result.stderr
        assert json.loads(result.stdout)["link_unsubscribes"] == expected, issue
    text = run(root, "report", str(root / "issues" / "x.yaml")).stdout
    assert "unsubscribes via our link" in text
