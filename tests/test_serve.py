"""`compose serve` over real HTTP: one-click unsubscribe, forged tokens, concurrency, the log."""

from __future__ import annotations

import csv
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from composer.audience.suppressions import load_suppressed
from composer.delivery.tokens import load_secret, make_token
from composer.project import Project, load_project
from composer.web.app import ACCESS_LOGGER, create_app
from tests.conftest import copy_project

FIXTURE = Path(__file__).parent / "fixtures" / "serve" / "project"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


class ServerThread:
    """uvicorn serving an app on a socket bound to a free port, in a background thread."""

    def __init__(self, app: object | None = None) -> None:
        """Bind now; serve `app`, or the app given to serve() once the port is known."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        if app is not None:
            self.serve(app)

    def serve(self, app: object) -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        wait_healthy(self.base)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        assert not self.thread.is_alive(), "server did not stop"


def wait_healthy(base: str, timeout: float = 15.0) -> None:
    """Poll /healthz until it answers 200, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{base}/healthz never answered")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv("COMPOSE_SECRET", raising=False)
    root = copy_project(FIXTURE, tmp_path)
    return load_project(root)


@pytest.fixture
def server(project: Project) -> Iterator[ServerThread]:
    with ServerThread(create_app(project, project.root / "build")) as running:
        yield running


def unsubscribe_url(server: ServerThread, project: Project, email: str) -> str:
    """The personal link for `email`, with unsubscribe_url's path prefix, on the test server."""
    token = make_token(load_secret(project), "main", email)
    prefix = urlsplit(project.newsletter.unsubscribe_base).path
    assert prefix == "/newsletter/unsubscribe/"
    return f"{server.base}{prefix}{token}"


def suppression_file_rows(project: Project) -> list[dict[str, str]]:
    path = project.subscribers_dir / "suppressions.csv"
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_healthz(server: ServerThread) -> None:
    response = httpx.get(f"{server.base}/healthz")
    assert response.status_code == 200
    assert response.text.strip() == "ok"


def test_get_asks_and_changes_nothing(server: ServerThread, project: Project) -> None:
    url = unsubscribe_url(server, project, "reader@example.org")
    for _ in range(3):  # link scanners fetch a URL more than once
        response = httpx.get(url)
        assert response.status_code == 200
        assert '<form method="post">' in response.text
        assert "<button" in response.text
        assert "r***@example.org" in response.text
        assert "reader@example.org" not in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "reader@example.org" not in load_suppressed(project)
    assert suppression_file_rows(project) == []


def test_one_click_post_unsubscribes(server: ServerThread, project: Project) -> None:
    url = unsubscribe_url(server, project, "Reader@Example.org")
    response = httpx.post(url, data=ONE_CLICK, follow_redirects=False)
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "unsubscribed" in response.text.lower()
    assert "reader@example.org" in {e.lower() for e in load_suppressed(project)}
    rows = suppression_file_rows(project)
    assert len(rows) == 1
    assert rows[0]["reason"].startswith("unsubscribed")
    assert rows[0]["date"][:4].isdigit()


def test_one_click_post_as_multipart(server: ServerThread, project: Project) -> None:
    """RFC 8058 allows the body as multipart/form-data as well as urlencoded."""
    url = unsubscribe_url(server, project, "multi@example.org")
    response = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert "multi@example.org" in load_suppressed(project)


def test_bare_one_click_body_without_content_type(server: ServerThread, project: Project) -> None:
    url = unsubscribe_url(server, project, "bare@example.org")
    response = httpx.post(url, content=b"List-Unsubscribe=One-Click")
    assert response.status_code == 200
    assert "bare@example.org" in load_suppressed(project)


def test_the_page_form_unsubscribes_without_a_prefix(
    server: ServerThread, project: Project
) -> None:
    token = make_token(load_secret(project), "main", "form@example.org")
    url = f"{server.base}/unsubscribe/{token}"
    page = httpx.get(url)
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    response = httpx.post(url, data=ONE_CLICK)  # what the browser sends from the page's form
    assert response.status_code == 200
    assert "form@example.org" in load_suppressed(project)


def test_repeated_posts_are_idempotent(server: ServerThread, project: Project) -> None:
    url = unsubscribe_url(server, project, "twice@example.org")
    statuses = [httpx.post(url, data=ONE_CLICK).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    emails = [row["email"].lower() for row in suppression_file_rows(project)]
    assert emails == ["twice@example.org"]


def test_post_without_one_click_body_changes_nothing(
    server: ServerThread, project: Project
) -> None:
    url = unsubscribe_url(server, project, "empty@example.org")
    assert httpx.post(url).status_code == 400
    assert httpx.post(url, data={"List-Unsubscribe": "Yes"}).status_code == 400
    assert httpx.post(url, files={"List-Unsubscribe": ("x.txt", b"One-Click")}).status_code == 400
    assert httpx.post(url, content=b"Unsubscribe please").status_code == 400
    assert suppression_file_rows(project) == []


def test_forged_tokens_are_refused(server: ServerThread, project: Project) -> None:
    good = unsubscribe_url(server, project, "victim@example.org")
    base, token = good.rsplit("/", 1)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    other_secret = make_token(b"not the project's secret", "main", "victim@example.org")
    for forged in (flipped, token[:-4], other_secret, "not-a-token", "x" * 2000):
        for method in ("GET", "POST"):
            response = httpx.request(method, f"{base}/{forged}", data=ONE_CLICK)
            assert response.status_code in (400, 404), (forged, method)
    assert suppression_file_rows(project) == []
    assert "victim@example.org" not in load_suppressed(project)


def test_fifty_parallel_posts_are_all_recorded(server: ServerThread, project: Project) -> None:
    emails = [f"reader{n:02d}@example.org" for n in range(50)]
    urls = [unsubscribe_url(server, project, email) for email in emails]
    urls += urls[:10]  # the same link clicked twice at once must not give two rows

    def post(url: str) -> int:
        with httpx.Client(timeout=30) as client:
            return client.post(url, data=ONE_CLICK).status_code

    with ThreadPoolExecutor(max_workers=60) as pool:
        statuses = list(pool.map(post, urls))
    assert statuses == [200] * len(urls)
    rows = suppression_file_rows(project)
    assert sorted(row["email"].lower() for row in rows) == sorted(emails)
    assert all(row["reason"] and row["date"] for row in rows), "a torn or partial row"
    text = (project.subscribers_dir / "suppressions.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "email,reason,date"
    assert len(text.splitlines()) == 51


def test_request_log_hides_addresses_and_tokens(
    server: ServerThread, project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    url = unsubscribe_url(server, project, "private.person@example.org")
    token = url.rsplit("/", 1)[1]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        httpx.get(url)
        httpx.post(url, data=ONE_CLICK)
        httpx.get(f"{server.base}/private.person@example.org")
        # The line is written once the response has gone out, so it may trail the client.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
            if len(lines) >= 3:
                break
            time.sleep(0.02)
    assert len(lines) == 3, lines
    assert lines[0].startswith("GET /newsletter/unsubscribe/#")
    assert " 200 " in lines[1] and "suppressed p***@example.org" in lines[1]
    for line in lines:
        assert "private.person" not in line
        assert token not in line


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to the server process")
def test_compose_serve_command(project: Project) -> None:
    """The real command: starts, answers, logs to stdout, stops on SIGINT."""
    import signal
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from composer.cli import main; main()"]
    command += ["--project", str(project.root), "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        token = make_token(load_secret(project), "main", "cli.reader@example.org")
        response = httpx.post(f"{base}/x/y/unsubscribe/{token}", data=ONE_CLICK)
        assert response.status_code == 200
        assert httpx.get(f"{base}/vol-36/").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "cli.reader@example.org" in load_suppressed(project)
    assert "POST /x/y/unsubscribe/#" in out
    assert "cli.reader" not in out + err
    assert token not in out + err


def test_archive_index_lists_built_issues_newest_first(server: ServerThread) -> None:
    response = httpx.get(f"{server.base}/")
    assert response.status_code == 200
    page = response.text
    assert 'href="2022-05/"' in page and 'href="vol-36/"' in page
    # A build that was never sent and says nothing about `published` is a draft: never public.
    assert 'href="draft-no-meta/"' not in page
    assert "no-web" not in page  # a build without web.html is not an issue page
    assert page.index('href="2022-05/"') < page.index('href="vol-36/"')
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert 'type="application/atom+xml"' in page


def test_archive_serves_each_web_version(server: ServerThread, project: Project) -> None:
    response = httpx.get(f"{server.base}/vol-36/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == (project.root / "build" / "vol-36" / "web.html").read_bytes()
    redirect = httpx.get(f"{server.base}/vol-36", follow_redirects=False)
    assert redirect.status_code == 308
    assert redirect.headers["location"] == "vol-36/"


def test_archive_refuses_unknown_and_escaping_paths(server: ServerThread) -> None:
    for path in ("/vol-99/", "/no-web/", "/..%2Fnewsletter.yaml/", "/.compose/", "/%2E%2E/"):
        assert httpx.get(f"{server.base}{path}").status_code == 404, path


def test_atom_feed_links_to_archive_url(server: ServerThread, project: Project) -> None:
    import xml.etree.ElementTree as ET

    response = httpx.get(f"{server.base}/feed.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.fromstring(response.content)
    assert feed.findtext("a:title", namespaces=ns) == "Serve Test Bulletin"
    assert feed.findtext("a:id", namespaces=ns) == "https://news.example.org/archive/"
    assert feed.findtext("a:updated", namespaces=ns) is not None
    entries = feed.findall("a:entry", ns)
    links = [e.find("a:link", ns).get("href") for e in entries]
    assert "https://news.example.org/archive/vol-36/" in links
    assert "https://news.example.org/archive/2022-05/" in links
    assert len(entries) == 2  # draft-no-meta was neither sent nor published
    by_id = {e.findtext("a:id", namespaces=ns): e for e in entries}
    vol36 = by_id["https://news.example.org/archive/vol-36/"]
    assert vol36.findtext("a:title", namespaces=ns) == "UNODC in SEE — Newsletter Vol. 36"
    assert vol36.findtext("a:updated", namespaces=ns) == "2021-01-15T00:00:00Z"
    assert vol36.findtext("a:summary", namespaces=ns).startswith("Border control & anti")
