"""Drafts are never public: the archive lists only issues sent to a real list or marked published.

Before, `compose serve` listed an issue in the archive and the feed as soon as it was built.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from composer.project import load_project
from composer.web.app import create_app
from tests.conftest import mark_sent, run_compose
from tests.test_serve import ServerThread

SECRET = b"drafts-test-secret"


def public(server: ServerThread, slug: str) -> tuple[bool, bool, int]:
    """Whether `slug` is in the index, in the feed, and the status of its page."""
    index = httpx.get(f"{server.base}/").text
    feed = httpx.get(f"{server.base}/feed.xml").text
    page = httpx.get(f"{server.base}/{slug}/").status_code
    return f'href="{slug}/"' in index, f"/{slug}/" in feed, page


def with_readers(root: Path) -> Path:
    (root / "subscribers").mkdir(exist_ok=True)
    (root / "subscribers" / "main.csv").write_text("email\nreader@example.org\n", "utf-8")
    return root


def test_a_built_draft_is_not_public(small_project: Path) -> None:
    assert run_compose("build", "issues/small.yaml", cwd=small_project).code == 0
    project = load_project(small_project)
    with ServerThread(create_app(project, small_project / "build", secret=SECRET)) as server:
        assert public(server, "small") == (False, False, 404)


def test_published_true_makes_it_public_before_it_is_sent(small_project: Path) -> None:
    issue = small_project / "issues" / "small.yaml"
    issue.write_text("published: true\n" + issue.read_text("utf-8"), "utf-8")
    assert run_compose("build", "issues/small.yaml", cwd=small_project).code == 0
    project = load_project(small_project)
    with ServerThread(create_app(project, small_project / "build", secret=SECRET)) as server:
        assert public(server, "small") == (True, True, 200)


def test_a_test_copy_publishes_nothing_and_a_real_send_does(small_project: Path) -> None:
    root = with_readers(small_project)
    assert run_compose("build", "issues/small.yaml", cwd=root).code == 0
    project = load_project(root)
    with ServerThread(create_app(project, root / "build", secret=SECRET)) as server:
        tested = run_compose(
            "send", "issues/small.yaml", "--list", "main", "--test", "me@example.org", "--yes",
            cwd=root,
        )  # fmt: skip
        assert tested.code == 0, tested.stderr
        assert public(server, "small") == (False, False, 404)

        sent = run_compose("send", "issues/small.yaml", "--list", "main", "--yes", cwd=root)
        assert sent.code == 0, sent.stderr
        # The running server notices the delivery log within a few seconds (a hang guard only).
        deadline = time.monotonic() + 30
        while public(server, "small") != (True, True, 200):
            assert time.monotonic() < deadline, "the sent issue never became public"
            time.sleep(0.2)


def test_a_sent_issue_without_meta_is_listed_under_its_folder_name(small_project: Path) -> None:
    assert run_compose("build", "issues/small.yaml", cwd=small_project).code == 0
    (small_project / "build" / "small" / "meta.json").unlink()
    mark_sent(small_project, "small")
    project = load_project(small_project)
    with ServerThread(create_app(project, small_project / "build", secret=SECRET)) as server:
        assert public(server, "small") == (True, True, 200)
        assert ">small</a>" in httpx.get(f"{server.base}/").text
