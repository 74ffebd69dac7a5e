"""Each translation of an issue has its own web version: built to `<slug>/<language>/`, linked
from that edition's email, and served by `compose serve` like the issue's own."""

from __future__ import annotations

import email
import os
import re
from email.policy import default as default_policy
from pathlib import Path

import httpx

from composer.project import load_project
from composer.web.app import create_app
from tests.conftest import copy_project, run_compose
from tests.test_serve import ServerThread
from tests.test_variants import FIXTURE, SECRET


def lang_of(page: str) -> str:
    found = re.search(r'<html lang="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)


def test_a_translation_is_built_linked_and_served_as_its_own_web_version(tmp_path: Path) -> None:
    project = copy_project(FIXTURE, tmp_path)
    built = run_compose("build", "issues/tailored.yaml", cwd=project, env=SECRET)
    assert built.code == 0, built.stderr
    folder = project / "build" / "tailored"
    serbian = (folder / "sr-Latn" / "web.html").read_text(encoding="utf-8")
    assert lang_of(serbian) == "sr-Latn" and lang_of((folder / "web.html").read_text()) == "en"
    assert "U ovom broju" in serbian and "Kontrola granica" in serbian  # theme and content
    assert not (folder / "sq").exists()  # offered, but this issue has no Albanian translation
    sent = run_compose(
        "send", "issues/tailored.yaml", "--list", "readers", "--yes", cwd=project, env=SECRET
    )
    assert sent.code == 0, sent.stderr
    outbox = project / "outbox" / "tailored"
    ana = email.message_from_bytes(
        (outbox / "ana@example.org.eml").read_bytes(), policy=default_policy
    )
    text = ana.get_body(("plain",)).get_content()
    assert "https://newsletter.example.org/tailored/sr-Latn/" in text  # her edition's page
    dan = (outbox / "dan@example.com.eml").read_text(encoding="utf-8", errors="replace")
    assert "/tailored/sr-Latn/" not in dan and "https://newsletter.example.org/tailored/" in dan
    os.symlink(folder / "sr-Latn", folder / "sq")  # a link is never served
    with ServerThread(create_app(load_project(project), project / "build")) as server:
        page = httpx.get(f"{server.base}/tailored/sr-Latn/")
        assert page.status_code == 200 and lang_of(page.text) == "sr-Latn"
        for missing in (
            "/tailored/sq/",
            "/tailored/de/",
            "/tailored/..%2F..%2Fetc/",
            "/nope/sr-Latn/",
        ):
            assert httpx.get(f"{server.base}{missing}").status_code == 404, missing
