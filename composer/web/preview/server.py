"""The preview's HTTP server (stdlib, 127.0.0.1 only): the page, the built files, and live events."""

from __future__ import annotations

import errno
import html
import json
import logging
import os
import sys
import threading
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from composer.errors import UsageError
from composer.preview.page import PAGE_HTML
from composer.preview.session import PreviewSession, Snapshot

logger = logging.getLogger("composer.preview")

HOST = "127.0.0.1"
KEEPALIVE_SECONDS = 15.0  # a comment line this often notices pages that went away
LOCAL_NAMES = {"127.0.0.1", "localhost"}
PORT_TRIES = 20  # without --port, the next free port of this many is used

BUILT_FILES = {
    "/email.html": ("text/html; charset=utf-8", lambda b: b.email_html),
    "/email.txt": ("text/plain; charset=utf-8", lambda b: b.email_txt),
    "/web.html": ("text/html; charset=utf-8", lambda b: b.web_html),
}


class PreviewHandler(BaseHTTPRequestHandler):
    """GET and HEAD only; every answer is uncached, since it changes with each edit."""

    server: PreviewServer
    server_version = "compose-preview"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _answer(self, body: bool) -> None:
        # A page on another site could reach a local server by DNS rebinding: only answer local names.
        host = (urlsplit(f"//{self.headers.get('Host', '')}").hostname or "").lower()
        if host not in LOCAL_NAMES:
            self._send(
                403, "text/plain; charset=utf-8", b"preview answers to 127.0.0.1 only\n", body
            )
            return
        path = urlsplit(self.path).path
        snap = self.server.session.current
        if path == "/":
            self._send(200, "text/html; charset=utf-8", PAGE_HTML.encode(), body)
        elif path == "/state.json":
            self._send(200, "application/json", json.dumps(snap.state()).encode(), body)
        elif path == "/events" and body:
            self._events()
        elif path in BUILT_FILES or path == "/message.eml":
            self._built_file(path, snap, body)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n", body)

    def _built_file(self, path: str, snap: Snapshot, body: bool) -> None:
        if not snap.ok:
            problems = "\n".join(snap.problems)
            if path.endswith(".html"):
                page = (
                    f"<!doctype html><title>Build failed</title><pre>{html.escape(problems)}</pre>"
                )
                self._send(503, "text/html; charset=utf-8", page.encode(), body)
            else:
                self._send(503, "text/plain; charset=utf-8", f"{problems}\n".encode(), body)
            return
        if path == "/message.eml":
            try:
                data = snap.message_eml
            except (ValueError, UnicodeError) as exc:
                self._send(500, "text/plain; charset=utf-8", f"{exc}\n".encode(), body)
                return
            # Plain text, so the browser shows the raw message instead of downloading it.
            self._send(200, "text/plain; charset=utf-8", data, body)
            return
        kind, part = BUILT_FILES[path]
        self._send(200, kind, part(snap.built).encode("utf-8"), body)

    def _send(self, status: int, kind: str, data: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _events(self) -> None:
        """Server-sent events: the current state at once, then each new build's state."""
        session = self.server.session
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        version = -1
        try:
            self.wfile.write(b"retry: 1000\n\n")  # reconnect within a second after a restart
            while not session.closed:
                snap = (
                    session.current
                    if version < 0
                    else session.wait_newer(version, KEEPALIVE_SECONDS)
                )
                if snap is None:
                    self.wfile.write(b": still here\n\n")
                    continue
                version = snap.version
                self.wfile.write(f"data: {json.dumps(snap.state())}\n\n".encode())
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the page was closed or reloaded


class PreviewServer(ThreadingHTTPServer):
    """One thread per connection; threads never keep the process alive after Ctrl-C."""

    daemon_threads = True
    allow_reuse_address = True
    _serving = False

    def __init__(self, session: PreviewSession, port: int) -> None:
        super().__init__((HOST, port), PreviewHandler)
        self.session = session

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving = True
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving = False

    def serve_in_thread(self) -> threading.Thread:
        """Serve from a background thread (tests, embedding); stop with close()."""
        self._serving = True  # so a close() right away still waits for the loop to end
        thread = threading.Thread(target=self.serve_forever, name="preview-server", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Stop answering, end the event streams, free the port."""
        self.session.close()
        if self._serving:
            self.shutdown()
        self.server_close()


def bind(session: PreviewSession, port: int, exact: bool) -> PreviewServer:
    """A server on `port`; unless `exact`, the next free port when it is taken."""
    tries = 1 if exact or port == 0 else PORT_TRIES
    for candidate in range(port, port + tries):
        try:
            return PreviewServer(session, candidate)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise UsageError(f"cannot listen on {HOST}:{candidate}: {exc.strerror}") from None
    last = port + tries - 1
    ports = f"port {port}" if tries == 1 else f"ports {port}-{last}"
    raise UsageError(f"{ports} on {HOST} in use; pass --port N (or --port 0 for any free port)")


def open_browser(url: str, echo: Callable[[str], object]) -> threading.Thread | None:
    """Open `url` in the default browser from a thread; never fail or block when there is none."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return None  # only text browsers are left, and they would take over this terminal

    def attempt() -> None:
        try:
            if not webbrowser.open(url):
                echo("no browser found; open the address above yourself")
        except (webbrowser.Error, OSError) as exc:  # a broken browser setup must not stop us
            echo(f"could not open a browser ({exc}); open the address above yourself")

    thread = threading.Thread(target=attempt, name="preview-browser", daemon=True)
    thread.start()
    return thread
