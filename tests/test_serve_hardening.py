"""`compose serve` against hostile requests and build folders: no redirect of a POST, no URL
from the Host header, no symbolic link followed, and an archive cache a rebuild always refreshes.
"""

from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.routing import Route

from composer.audience.suppressions import load_suppressed
from composer.delivery.tokens import make_token
from composer.project import Project, load_project
from composer.web.app import create_app
from composer.web.archive import Archive, read_web_version
from tests.conftest import copy_project, mark_sent, run_compose
from tests.test_serve import FIXTURE, ONE_CLICK, ServerThread

SECRET = b"a test secret of thirty-two bytes"
EVIL_HOST = {"Host": "evil.example"}
ATOM = {"a": "http://www.w3.org/2005/Atom"}
SECRET_TEXT = "root:x:0:0:not for the web"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load_project(copy_project(FIXTURE, tmp_path))


def serve(project: Project, build_dir: Path | None = None) -> ServerThread:
    """A server for `project`'s build folder (or `build_dir`), with a fixed token secret."""
    return ServerThread(create_app(project, build_dir or project.root / "build", secret=SECRET))


@pytest.fixture
def server(project: Project) -> Iterator[ServerThread]:
    with serve(project) as running:
        yield running


def token(email: str) -> str:
    return make_token(SECRET, "main", email)


def app_routes(project: Project) -> list[Route]:
    """Every route of the app, as Starlette holds them."""
    app = create_app(project, project.root / "build", secret=SECRET)
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert len(routes) == len(app.routes)
    return routes


def concrete(path: str, token_value: str) -> str:
    """A route's path with its parameters filled: a valid token, a prefix, a built slug."""
    values = {"token": token_value, "prefix": "newsletter", "slug": "vol-36"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def with_and_without_slash(path: str) -> list[str]:
    bare = path.rstrip("/")
    return [bare or "/", f"{bare}/"] if bare else ["/"]


# 1. A POST is never redirected, and no URL is ever built from the Host header.


@pytest.mark.parametrize("prefix", ["", "/newsletter", "/x/y"])
def test_trailing_slash_on_a_token_route_answers_in_place(
    server: ServerThread, project: Project, prefix: str
) -> None:
    email = f"slash{len(prefix)}@example.org"
    url = f"{server.base}{prefix}/unsubscribe/{token(email)}/"
    page = httpx.get(url, headers=EVIL_HOST, follow_redirects=False)
    assert page.status_code == 200
    assert '<form method="post">' in page.text  # posts back to this very URL, slash and all
    assert email not in load_suppressed(project)
    done = httpx.post(url, data=ONE_CLICK, headers=EVIL_HOST, follow_redirects=False)
    assert done.status_code == 200
    assert "location" not in done.headers
    assert "unsubscribed" in done.text.lower()
    assert email in load_suppressed(project)


def test_every_token_route_also_takes_a_trailing_slash(project: Project) -> None:
    routes = {(route.path, frozenset(route.methods or ())) for route in app_routes(project)}
    with_token = [(path, methods) for path, methods in routes if "{token}" in path]
    assert with_token
    for path, methods in with_token:
        twin = path[:-1] if path.endswith("/") else f"{path}/"
        assert (twin, methods) in routes, f"{path} has no twin {twin}"


def test_no_post_to_any_route_is_redirected(server: ServerThread, project: Project) -> None:
    paths = {concrete(route.path, token("post@example.org")) for route in app_routes(project)}
    paths |= {"/healthz", "/feed.xml", "/vol-99", "/no/such/path", "/unsubscribe"}
    tried = 0
    for path in sorted(paths):
        for variant in with_and_without_slash(path):
            for body in ({"data": ONE_CLICK}, {"content": b""}):
                response = httpx.post(
                    f"{server.base}{variant}", headers=EVIL_HOST, follow_redirects=False, **body
                )
                tried += 1
                assert not 300 <= response.status_code < 400, (variant, response.status_code)
                assert "location" not in response.headers, variant
    assert tried >= 20


def test_no_get_redirects_to_a_url_from_the_host_header(
    server: ServerThread, project: Project
) -> None:
    paths = {concrete(route.path, token("get@example.org")) for route in app_routes(project)}
    paths |= {"/healthz", "/feed.xml", "/vol-99", "/2022-05", "/no/such/path"}
    redirects = set()
    for path in sorted(paths):
        for variant in with_and_without_slash(path):
            response = httpx.get(f"{server.base}{variant}", headers=EVIL_HOST)
            if response.is_redirect:
                location = response.headers["location"]
                parts = urlsplit(location)
                assert not parts.scheme and not parts.netloc, (variant, location)
                assert not location.startswith("/"), (variant, location)  # relative: keeps prefix
                redirects.add((variant, response.status_code, location))
    assert redirects == {("/2022-05", 308, "2022-05/"), ("/vol-36", 308, "vol-36/")}


# 2. Symbolic links in the build folder are never followed.


@pytest.fixture
def hostile_build(project: Project, tmp_path: Path) -> Path:
    """The fixture's build folder plus links that point out of it and within it."""
    if os.name != "posix":
        pytest.skip("needs symbolic links and FIFOs")
    build = project.root / "build"
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text(f"{SECRET_TEXT}\n", encoding="utf-8")
    secret_meta = outside / "meta.json"
    secret_meta.write_text('{"subject": "SECRET SUBJECT", "date": "2030-01-01"}', "utf-8")
    elsewhere = outside / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "web.html").write_text(f"<p>{SECRET_TEXT}</p>", encoding="utf-8")
    shutil.copy(secret_meta, elsewhere / "meta.json")

    (build / "evil").mkdir()
    (build / "evil" / "web.html").symlink_to(secret)  # the reported attack
    (build / "evil" / "meta.json").symlink_to(secret_meta)
    (build / "linked-folder").symlink_to(elsewhere, target_is_directory=True)
    (build / "inner-link").symlink_to(build / "vol-36", target_is_directory=True)
    (build / "relative-link").symlink_to(Path("..") / ".." / "outside" / "elsewhere")
    (build / "link-meta").mkdir()  # a real page whose meta.json is a link: read as no meta
    (build / "link-meta" / "web.html").write_text("<p>real page</p>", encoding="utf-8")
    (build / "link-meta" / "meta.json").symlink_to(secret_meta)
    os.mkfifo(build / "vol-36-fifo")  # not a folder: never an issue, never opened
    return build


LINKED = ["evil", "linked-folder", "inner-link", "relative-link", "vol-36-fifo"]


def test_links_in_the_build_folder_are_not_served(project: Project, hostile_build: Path) -> None:
    assert (hostile_build / "evil" / "web.html").read_text().startswith(SECRET_TEXT)
    mark_sent(project.root, "link-meta")  # a real page, public: only its meta.json is a link
    with serve(project) as server:
        for slug in LINKED:
            for path in (f"/{slug}/", f"/{slug}"):
                response = httpx.get(f"{server.base}{path}", follow_redirects=False)
                assert response.status_code == 404, path
                assert SECRET_TEXT not in response.text
        real = httpx.get(f"{server.base}/link-meta/")
        assert real.status_code == 200
        assert real.text == "<p>real page</p>"
        assert httpx.get(f"{server.base}/vol-36/").status_code == 200  # the target still is

        index = httpx.get(f"{server.base}/").text
        feed = httpx.get(f"{server.base}/feed.xml").content
    for slug in LINKED:
        assert f'href="{slug}/"' not in index
        assert f"/{slug}/" not in feed.decode()
    assert 'href="link-meta/"' in index  # listed under its folder name, its linked meta unread
    assert "SECRET" not in index and b"SECRET" not in feed
    entries = ET.fromstring(feed).findall("a:entry", ATOM)
    # vol-36 and 2022-05 (published), link-meta (sent); draft-no-meta was neither: a draft.
    assert len(entries) == 3


def test_a_linked_build_folder_itself_is_fine(project: Project, tmp_path: Path) -> None:
    """The build folder may be a link (a deploy's `current`); what lies in it may not."""
    link = tmp_path / "current"
    link.symlink_to(project.root / "build", target_is_directory=True)
    with serve(project, link) as server:
        assert httpx.get(f"{server.base}/vol-36/").status_code == 200
        assert 'href="vol-36/"' in httpx.get(f"{server.base}/").text


def test_a_web_version_swapped_for_a_link_after_the_check_is_not_read(
    project: Project, tmp_path: Path
) -> None:
    build = project.root / "build"
    issue = Archive(build).issue("vol-36")
    assert issue is not None
    page = read_web_version(issue)
    assert page is not None and page.body == (build / "vol-36" / "web.html").read_bytes()
    secret = tmp_path / "secret.html"
    secret.write_text(SECRET_TEXT, encoding="utf-8")
    (build / "vol-36" / "web.html").unlink()
    (build / "vol-36" / "web.html").symlink_to(secret)
    assert read_web_version(issue) is None
    assert Archive(build).issue("vol-36") is None


# 3. The archive is read once per change of the build folder, and every change shows.


def subject_in(feed: bytes, slug: str) -> str | None:
    for entry in ET.fromstring(feed).findall("a:entry", ATOM):
        link = entry.find("a:link", ATOM)
        if link is not None and link.get("href", "").endswith(f"/{slug}/"):
            return entry.findtext("a:title", namespaces=ATOM)
    return None


def test_a_rebuild_shows_on_the_next_request(small_project: Path) -> None:
    issue_file = small_project / "issues" / "small.yaml"
    issue_file.write_text("published: true\n" + issue_file.read_text("utf-8"), "utf-8")
    assert run_compose("build", "issues/small.yaml", cwd=small_project).code == 0
    project = load_project(small_project)
    with serve(project) as server:
        first_index = httpx.get(f"{server.base}/")
        first_feed = httpx.get(f"{server.base}/feed.xml").content
        assert "Šibenik and beyond" in first_index.text
        assert subject_in(first_feed, "small") is not None
        assert httpx.get(f"{server.base}/").content == first_index.content

        text = issue_file.read_text(encoding="utf-8")
        issue_file.write_text(text.replace("Šibenik and beyond", "Rebuilt at once"), "utf-8")
        assert run_compose("build", "issues/small.yaml", cwd=small_project).code == 0

        index = httpx.get(f"{server.base}/")
        assert "Rebuilt at once" in index.text
        assert "Šibenik and beyond" not in index.text
        assert index.headers["cache-control"] == first_index.headers["cache-control"]
        feed = httpx.get(f"{server.base}/feed.xml").content
        assert "Rebuilt at once" in (subject_in(feed, "small") or "")
        built = (small_project / "build" / "small" / "web.html").read_bytes()
        assert httpx.get(f"{server.base}/small/").content == built


def test_added_and_removed_issues_show_on_the_next_request(
    server: ServerThread, project: Project
) -> None:
    build = project.root / "build"
    assert 'href="copy/"' not in httpx.get(f"{server.base}/").text
    shutil.copytree(build / "vol-36", build / "copy")
    assert 'href="copy/"' in httpx.get(f"{server.base}/").text
    assert httpx.get(f"{server.base}/copy/").status_code == 200
    assert subject_in(httpx.get(f"{server.base}/feed.xml").content, "copy") is not None

    (build / "copy" / "meta.json").unlink()  # a file removed inside an issue folder:
    # without meta.json (and never sent) the copy no longer says it is published
    assert subject_in(httpx.get(f"{server.base}/feed.xml").content, "copy") is None
    shutil.rmtree(build / "copy")
    assert 'href="copy/"' not in httpx.get(f"{server.base}/").text
    assert httpx.get(f"{server.base}/copy/").status_code == 404
    assert subject_in(httpx.get(f"{server.base}/feed.xml").content, "copy") is None


def test_repeated_reads_touch_the_disk_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted at the functions that read meta.json and make the pages, over real HTTP."""
    from composer.web import app as web_app
    from composer.web import archive as web_archive

    meta_reads: Counter[str] = Counter()
    pages: Counter[str] = Counter()
    read_meta, render_page, atom_feed = (
        web_archive._read_meta,
        web_app.render_page,
        web_app.atom_feed,
    )

    def counted_read_meta(path: Path) -> dict[str, object]:
        meta_reads[path.parent.name] += 1
        return read_meta(path)

    def counted_render_page(name: str, **context: Any) -> str:
        pages[name] += 1
        return render_page(name, **context)

    def counted_atom_feed(*args: Any) -> bytes:
        pages["feed"] += 1
        return atom_feed(*args)

    monkeypatch.setattr(web_archive, "_read_meta", counted_read_meta)
    monkeypatch.setattr(web_app, "render_page", counted_render_page)
    monkeypatch.setattr(web_app, "atom_feed", counted_atom_feed)
    with serve(project) as server:
        for _ in range(5):
            assert httpx.get(f"{server.base}/").status_code == 200
            assert httpx.get(f"{server.base}/feed.xml").status_code == 200
            assert httpx.get(f"{server.base}/vol-36/").status_code == 200
    assert meta_reads == {"vol-36": 1, "2022-05": 1}
    assert pages["archive-index.html"] == 1
    assert pages["feed"] == 1


def test_the_archive_reads_and_renders_once_per_change(project: Project) -> None:
    build = project.root / "build"
    archive = Archive(build)
    first = archive.snapshot()
    assert archive.snapshot() is first  # nothing changed: nothing read again
    made: list[int] = []

    def make(issues: tuple[object, ...]) -> bytes:
        made.append(len(issues))
        return b"page"

    assert first.derived("page", make) == first.derived("page", make) == b"page"
    assert made == [2]  # vol-36 and 2022-05 are published; the others are drafts
    shutil.copytree(build / "vol-36", build / "another")
    second = archive.snapshot()
    assert second is not first
    assert second.derived("page", make) == b"page"
    assert made == [2, 3]
    unchanged = [i for i in first.issues if i.slug != "another"]
    assert all(second.by_slug[i.slug] is i for i in unchanged)  # unchanged issues not re-read
