"""The preview server over real HTTP, its file watcher, and `compose preview` as a process."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from composer.web.preview import Preview, open_preview, server
from composer.web.preview.watcher import FileWatcher
from tests.conftest import NO_STATE, override_theme_file, run_compose

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "preview" / "project"
REPO = Path(__file__).resolve().parent.parent
ISSUE = "issues/clean.yaml"
TIMEOUT = 10.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The preview fixture project with its own copy of the theme, all safe to edit."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target, ignore=NO_STATE)
    override_theme_file(target, "partials/macros.mjml.j2")
    return target


@pytest.fixture
def preview(root: Path) -> Iterator[Preview]:
    with open_preview(root, root / ISSUE) as running:
        yield running.start()


def wait_for(condition: Callable[[], object], what: str) -> None:
    """Poll `condition` briefly until it holds; fail naming `what` after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def state(preview: Preview) -> dict[str, object]:
    return httpx.get(preview.url + "state.json").json()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_serves_the_page_and_every_built_file(preview: Preview) -> None:
    built = preview.session.current.built
    with httpx.Client(base_url=preview.url) as client:
        page = client.get("/")
        assert page.status_code == 200 and "EventSource" in page.text
        html = client.get("/email.html?v=1")
        assert html.headers["content-type"] == "text/html; charset=utf-8"
        assert html.text == built.email_html
        assert html.headers["cache-control"] == "no-store"
        assert html.headers["x-content-type-options"] == "nosniff"
        assert client.get("/email.txt").text == built.email_txt
        assert client.get("/web.html").text == built.web_html
        message = client.get("/message.eml")
        assert message.status_code == 200
        assert "multipart/alternative" in message.text and "List-Unsubscribe" in message.text
        assert client.head("/email.html").headers["content-length"] == str(len(html.content))
        assert client.get("/nothing").status_code == 404


def test_answers_only_to_local_host_names(preview: Preview) -> None:
    assert preview.url.startswith("http://127.0.0.1:")
    assert httpx.get(preview.url, headers={"Host": "localhost"}).status_code == 200
    # DNS rebinding: a page of another site whose name now points at 127.0.0.1 gets nothing.
    rebound = httpx.get(preview.url + "email.html", headers={"Host": "attacker.example:80"})
    assert rebound.status_code == 400 and rebound.text == "Invalid host header"
    assert rebound.headers["cache-control"] == "no-store"


def test_a_broken_issue_is_reported_and_the_server_recovers(preview: Preview) -> None:
    issue = preview.session.issue_path
    edit(issue, "pillar: II", "pillar: IX")
    wait_for(lambda: not state(preview)["ok"], "the failed build")
    problems = state(preview)["problems"]
    assert len(problems) == 1 and re.search(
        r"clean\.yaml:\d+:\d+: unknown pillar 'IX'", problems[0]
    )
    failed = httpx.get(preview.url + "email.html")
    assert failed.status_code == 503 and "unknown pillar" in failed.text
    assert httpx.get(preview.url + "message.eml").status_code == 503

    edit(issue, "pillar: IX", "pillar: II")
    wait_for(lambda: state(preview)["ok"], "the build after the fix")
    assert httpx.get(preview.url + "email.html").status_code == 200


def test_masthead_and_template_errors_point_at_their_line(preview: Preview) -> None:
    root = preview.session.root
    edit(root / "newsletter.yaml", "language: en", "language: en\nlanguge: en")
    wait_for(lambda: not state(preview)["ok"], "the masthead error")
    assert re.search(
        r"newsletter\.yaml:5:\d+: unknown key 'languge'", state(preview)["problems"][0]
    )
    edit(root / "newsletter.yaml", "\nlanguge: en", "")
    wait_for(lambda: state(preview)["ok"], "the fixed masthead")

    macros = root / "templates" / "partials" / "macros.mjml.j2"
    edit(macros, "{{ art.dateline }}", "{{ art.dateline | no_such_filter }}")
    wait_for(lambda: not state(preview)["ok"], "the template error")
    assert re.search(r"macros\.mjml\.j2:\d+: template error: ", state(preview)["problems"][0])


def test_a_bug_in_the_build_is_shown_not_fatal(
    preview: Preview, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("composer.web.preview.session.build_issue", explode)
    snapshot = preview.session.rebuild()
    assert (
        not snapshot.ok
        and "internal error while building: RuntimeError: boom" in snapshot.problems[0]
    )
    assert httpx.get(preview.url).status_code == 200


def test_events_push_each_new_build(preview: Preview) -> None:
    seen: queue.Queue[dict[str, object]] = queue.Queue()

    def listen() -> None:
        with httpx.stream("GET", preview.url + "events", timeout=TIMEOUT) as response:
            assert response.headers["content-type"] == "text/event-stream"
            for line in response.iter_lines():
                if line.startswith("data: "):
                    seen.put(json.loads(line[6:]))

    threading.Thread(target=listen, daemon=True).start()
    first = seen.get(timeout=TIMEOUT)
    assert first["version"] == 1 and first["ok"] is True
    assert first["subject"] == "Preview Bulletin: news of May 2024"
    edit(preview.session.issue_path, "news of May 2024", "news of June 2024")
    second = seen.get(timeout=TIMEOUT)
    assert second["version"] == 2 and second["subject"] == "Preview Bulletin: news of June 2024"


def test_events_keep_alive_and_end_when_the_preview_closes(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "KEEPALIVE_SECONDS", 0.1)
    lines: queue.Queue[str | None] = queue.Queue()
    running = open_preview(root, root / ISSUE).start()
    port = int(running.url.rsplit(":", 1)[1].strip("/"))

    def listen() -> None:
        with httpx.stream("GET", running.url + "events", timeout=TIMEOUT) as response:
            for line in response.iter_lines():
                lines.put(line)
        lines.put(None)  # the server ended the stream

    threading.Thread(target=listen, daemon=True).start()
    assert lines.get(timeout=TIMEOUT) == "retry: 1000"
    seen = [lines.get(timeout=TIMEOUT) for _ in range(6)]
    assert any(line and line.startswith("data: ") for line in seen)
    assert ": still here" in seen
    running.close()
    # An open page must not keep the preview from stopping: the stream ends (a hang times out).
    while lines.get(timeout=TIMEOUT) is not None:
        pass
    with socket.socket() as again:  # the port is free at once
        again.bind(("127.0.0.1", port))


def test_a_taken_port_falls_back_to_the_next_unless_exact(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with open_preview(root, root / ISSUE, port, exact_port=False) as running:
            assert running.url != f"http://127.0.0.1:{port}/"
            assert httpx.get(running.start().url + "state.json").json()["ok"] is True
        with pytest.raises(server.UsageError, match=f"port {port} on 127.0.0.1 in use"):
            open_preview(root, root / ISSUE, port, exact_port=True)


def test_watcher_sees_theme_files_and_ignores_editor_droppings(tmp_path: Path) -> None:
    theme = tmp_path / "theme"
    (theme / "partials").mkdir(parents=True)
    (theme / "partials" / "a.j2").write_text("a")
    issue = tmp_path / "issue.yaml"
    issue.write_text("x")
    calls: list[int] = []
    watcher = FileWatcher(lambda: [issue, theme], lambda: calls.append(1))
    assert not watcher.poll()
    (theme / "partials" / ".a.j2.swp").write_text("swap")
    (theme / "partials" / "a.j2~").write_text("backup")
    assert not watcher.poll()
    (theme / "partials" / "a.j2").write_text("changed")
    assert watcher.poll() and calls == [1]
    (theme / "partials" / "b.j2").write_text("new")
    assert watcher.poll()
    issue.unlink()
    assert watcher.poll() and len(calls) == 3


def test_open_browser_never_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(server.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert server.open_browser("http://127.0.0.1:1/", said.append) is None  # no text browsers

    def broken(url: str) -> bool:
        raise server.webbrowser.Error("no runnable browser")

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(server.webbrowser, "open", broken)
    thread = server.open_browser("http://127.0.0.1:1/", said.append)
    assert thread is not None
    thread.join(TIMEOUT)
    assert said and "could not open a browser" in said[0]


# `compose` with Ctrl-C as a terminal gives it: a shell's background job (CI) starts with it ignored.
COMPOSE_WITH_CTRL_C = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from composer.cli import main; main()"
)


class ComposeProcess:
    """`compose preview` as a user runs it, with its output lines readable as they come."""

    def __init__(self, *args: str | Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", COMPOSE_WITH_CTRL_C, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "DISPLAY": "", "WAYLAND_DISPLAY": ""},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []  # every stdout line, complete once the process ended
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def url(self) -> str:
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                return found.group(0)

    def interrupt(self) -> tuple[int, str]:
        """Press Ctrl-C; the exit code and stderr once the process ended."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=TIMEOUT)
        self._reader.join(TIMEOUT)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


def test_compose_preview_serves_until_ctrl_c(root: Path) -> None:
    run = ComposeProcess("--project", root, "preview", root / ISSUE, "--port", "0", "--no-open")
    try:
        url = run.url()
        assert httpx.get(url + "state.json").json()["ok"] is True
        with httpx.stream("GET", url + "events", timeout=TIMEOUT) as events:  # an open page
            assert events.status_code == 200
            code, stderr = run.interrupt()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == 0, stderr
    assert "Traceback" not in stderr and "interrupted" not in stderr
    assert run.output[-1] == "preview stopped\n"


def test_compose_preview_starts_with_a_broken_masthead(root: Path) -> None:
    edit(root / "newsletter.yaml", "language: en", "language: en\nlanguge: en")
    run = ComposeProcess("--project", root, "preview", root / ISSUE, "--port", "0", "--no-open")
    try:
        data = httpx.get(run.url() + "state.json").json()
        assert data["ok"] is False and "unknown key 'languge'" in data["problems"][0]
    finally:
        code, _ = run.interrupt()
    assert code == 0


def test_compose_preview_refuses_a_taken_port_and_a_missing_file(root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run_compose(
            "--project", root, "preview", root / ISSUE, "--port", port, "--no-open"
        )
    assert result.code == 2
    assert f"port {port} on 127.0.0.1 in use" in result.stderr

    result = run_compose("--project", root, "preview", "nope.yaml")
    assert result.code == 1 and "nope.yaml: no such issue file" in result.stderr
