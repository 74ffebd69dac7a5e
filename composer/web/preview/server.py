"""The preview's web app (Starlette under uvicorn, 127.0.0.1 only): page, built files, live events."""

from __future__ import annotations

import errno
import html
import json
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import AsyncIterator, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from composer.build import BuiltIssue
from composer.errors import UsageError
from composer.web.pages import static_page
from composer.web.preview.session import PreviewSession, Snapshot
from composer.web.preview.viewas import View, resolve_view

VIEW_PARAMS = ("lang", "interests", "list", "reader")


def _asks_view(request: Request) -> bool:
    return any(request.query_params.get(name) for name in VIEW_PARAMS)


HOST = "127.0.0.1"
# A page on another site could reach a local server by DNS rebinding: only answer local names.
LOCAL_NAMES = ["127.0.0.1", "localhost"]
KEEPALIVE_SECONDS = 15.0  # a comment line this often notices pages that went away
PORT_TRIES = 20  # without --port, the next free port of this many is used
STARTUP_SECONDS = 5.0
SHUTDOWN_SECONDS = 2  # how long a request still running when the preview stops may finish
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

BUILT_FILES: dict[str, tuple[str, Callable[[BuiltIssue], str]]] = {
    "email.html": (HTML, lambda built: built.email_html),
    "email.txt": (TEXT, lambda built: built.email_txt),
    "web.html": (HTML, lambda built: built.web_html),
}


def create_preview_app(session: PreviewSession) -> Starlette:
    """The preview as an ASGI app; GET and HEAD only, and nothing it answers is ever cached."""
    endpoints = PreviewEndpoints(session)
    routes = [
        Route("/", endpoints.page, methods=["GET"]),
        Route("/state.json", endpoints.state, methods=["GET"]),
        Route("/events", endpoints.events, methods=["GET"]),
        Route("/message.eml", endpoints.message, methods=["GET"]),
        Route("/view.json", endpoints.view, methods=["GET"]),
        Route("/{name}", endpoints.built_file, methods=["GET"]),
    ]
    middleware = [
        Middleware(Uncached),
        Middleware(TrustedHostMiddleware, allowed_hosts=LOCAL_NAMES, www_redirect=False),
    ]
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={404: not_found_handler}
    )


def not_found() -> Response:
    return PlainTextResponse("not found\n", status_code=404)


async def not_found_handler(request: Request, exc: Exception) -> Response:
    """Any path the preview does not know."""
    return not_found()


class PreviewEndpoints:
    """The handlers, reading the session's latest build on every request."""

    def __init__(self, session: PreviewSession) -> None:
        self._session = session

    async def page(self, request: Request) -> Response:
        """The preview page: a static shell that draws each build announced over /events."""
        # The server never fills it in: all issue text arrives as JSON and is set with
        # textContent, so nothing in an issue can inject markup into the page.
        return Response(static_page("preview.html"), media_type=HTML)

    async def state(self, request: Request) -> Response:
        """What the page shows of the latest build, as JSON."""
        return Response(json.dumps(self._session.current.state()), media_type="application/json")

    async def events(self, request: Request) -> Response:
        """Server-sent events: the current state at once, then each new build's state."""
        # Set whole: Starlette would add a charset to a text/* media type.
        headers = {"Content-Type": "text/event-stream"}
        if request.method == "HEAD":
            return Response(headers=headers)
        return StreamingResponse(self._stream(), headers=headers)

    async def _stream(self) -> AsyncIterator[bytes]:
        session = self._session
        yield b"retry: 1000\n\n"  # reconnect within a second after a restart
        version = -1
        while not session.closed:
            snap = (
                session.current
                if version < 0
                else await session.wait_newer(version, KEEPALIVE_SECONDS)
            )
            if snap is None:
                yield b": still here\n\n"
                continue
            version = snap.version
            yield f"data: {json.dumps(snap.state())}\n\n".encode()

    async def built_file(self, request: Request) -> Response:
        """`/email.html`, `/email.txt`, `/web.html` of the latest build, as build writes them."""
        name = request.path_params["name"]
        if name not in BUILT_FILES:
            return not_found()
        snap = self._session.current
        if snap.built is None:
            return build_failed(name, snap)
        kind, part = BUILT_FILES[name]
        if not _asks_view(request):
            return Response(part(snap.built), media_type=kind)
        try:  # "view as": a variant, or a reader of a list (reading the list takes a moment)
            view = await run_in_threadpool(self._view, snap, request)
        except ValueError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=404)
        return Response(view.part(name), media_type=kind)

    async def view(self, request: Request) -> Response:
        """What the inbox line shows for a "view as" choice: subject, preheader, which variant."""
        snap = self._session.current
        if snap.built is None:
            return build_failed("view.json", snap)
        try:
            view = await run_in_threadpool(self._view, snap, request)
        except ValueError as exc:
            return Response(json.dumps({"error": str(exc)}), media_type="application/json")
        data = {"subject": view.subject, "preheader": view.preheader, "label": view.label}
        return Response(json.dumps(data), media_type="application/json")

    @staticmethod
    def _view(snap: Snapshot, request: Request) -> View:
        if snap.variants is None or snap.project is None:
            raise ValueError("this build has no variants")
        return resolve_view(snap.project, snap.variants, dict(request.query_params))

    async def message(self, request: Request) -> Response:
        """The sample MIME message, as plain text so the browser shows it instead of saving it."""
        snap = self._session.current
        if snap.built is None:
            return build_failed("message.eml", snap)
        try:
            data = await run_in_threadpool(sample_message, snap)
        except (ValueError, UnicodeError) as exc:
            return PlainTextResponse(f"{exc}\n", status_code=500)
        return Response(data, media_type=TEXT)


def sample_message(snap: Snapshot) -> bytes:
    """The snapshot's sample message, made (once) in a worker thread: MIME takes a while."""
    return snap.message_eml


def build_failed(name: str, snap: Snapshot) -> Response:
    """503 with the problems that stopped the build, as a page or as text like the file asked."""
    problems = "\n".join(snap.problems)
    if name.endswith(".html"):
        page = f"<!doctype html><title>Build failed</title><pre>{html.escape(problems)}</pre>"
        return Response(page, status_code=503, media_type=HTML)
    return Response(f"{problems}\n", status_code=503, media_type=TEXT)


class Uncached:
    """ASGI middleware: every answer changes with each edit, so none is cached or sniffed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_uncached(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = "no-store"
                headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self.app(scope, receive, send_uncached)


class _Uvicorn(uvicorn.Server):
    """uvicorn that ends the live event streams as it stops, instead of waiting for the pages."""

    def __init__(self, config: uvicorn.Config, session: PreviewSession) -> None:
        super().__init__(config)
        self._session = session

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._session.close()
        await super().shutdown(sockets)


class PreviewServer:
    """The preview app under uvicorn, on a socket already bound to 127.0.0.1."""

    def __init__(self, session: PreviewSession, sock: socket.socket) -> None:
        self.session = session
        self._socket = sock
        self._port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            create_preview_app(session),
            lifespan="off",
            log_config=None,  # no logging setup of its own; its errors reach ours
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        )
        self._server = _Uvicorn(config, session)
        self._thread: threading.Thread | None = None
        self._foreground = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._port}/"

    def serve_forever(self) -> None:
        """Answer requests in this thread until close(); Ctrl-C stops it, then raises as usual."""
        self._foreground = threading.current_thread() is not self._thread
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._foreground = False

    def serve_in_thread(self) -> threading.Thread:
        """Serve from a background thread (tests, embedding) once it answers; stop with close()."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="preview-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return self._thread

    def close(self) -> None:
        """Stop answering, end the event streams, free the port."""
        self.session.close()
        self._server.should_exit = True
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=SHUTDOWN_SECONDS + 3)
        if not self._foreground:  # else uvicorn, still stopping in its own thread, closes it
            self._socket.close()


def listen(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def bind(session: PreviewSession, port: int, exact: bool) -> PreviewServer:
    """A server on `port`; unless `exact`, the next free port when it is taken."""
    tries = 1 if exact or port == 0 else PORT_TRIES
    last = min(port + tries, 65536) - 1
    for candidate in range(port, last + 1):
        try:
            return PreviewServer(session, listen(candidate))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise UsageError(f"cannot listen on {HOST}:{candidate}: {exc.strerror}") from None
    ports = f"port {port}" if last == port else f"ports {port}-{last}"
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
