"""The `compose serve` application: routes, the request log, and the app factory."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from composer.delivery.sent import SentIssues
from composer.project import STATE_DIR, Project
from composer.render.i18n import N_, accept_language, negotiate, resolve_language
from composer.web.archive import Archive, ArchivedIssue, atom_feed
from composer.web.clicks import ClickEndpoint
from composer.web.pages import render_page, translate
from composer.web.preferences import PreferencesEndpoints
from composer.web.readers import FORM_MAX_BYTES, PAGE_HEADERS, ReaderSite, mask_address
from composer.web.signup import SignupEndpoints
from composer.web.unsubscribe import MAX_BODY_BYTES, UnsubscribeEndpoints, token_digest
from composer.web.webhook import MAX_BODY_BYTES as WEBHOOK_MAX_BYTES
from composer.web.webhook import WebhookEndpoint

ACCESS_LOGGER = "composer.web.access"
_TOKEN_IN_PATH = re.compile(r"(/(?:unsubscribe|confirm|preferences|c)/)([^/]+)")
_ADDRESS_IN_PATH = re.compile(r"[^/\s@]+@[^/\s@]+")
HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
ARCHIVE_HEADERS = {"Cache-Control": "public, max-age=300"}
# The index is written in the reader's language (Accept-Language): caches keep one per language.
INDEX_HEADERS = {**ARCHIVE_HEADERS, "Vary": "Accept-Language"}


def create_app(
    project: Project,
    build_dir: Path,
    secret: bytes | None = None,
    *,
    signup_rate: str | None = None,
) -> Starlette:
    """The ASGI app serving the reader's pages (sign-up, confirmation, preferences,
    unsubscribe) for `project` and the issues built in `build_dir`.

    `signup_rate` limits sign-ups per client IP (`limits` notation, e.g. "5/minute;20/hour";
    default $COMPOSE_SIGNUP_RATE, else 5/minute;20/hour).
    """
    if secret is None:
        from composer.delivery.tokens import load_secret

        secret = load_secret(project)
    site = ReaderSite(project, secret)
    unsubscribe = UnsubscribeEndpoints(project, secret, site)
    signup = SignupEndpoints(site, signup_rate)
    preferences = PreferencesEndpoints(site)
    archive = ArchiveEndpoints(project, build_dir)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", archive.index, methods=["GET"]),
        Route("/feed.xml", archive.feed, methods=["GET"]),
    ]
    # The reader's pages: GET asks or shows, POST (a form of ours, at most 1 MB) changes.
    pages = [
        ("/subscribe", signup.form, signup.subscribe),
        ("/confirm/{token}", signup.ask, signup.confirm),
        ("/preferences/{token}", preferences.show, preferences.save),
        ("/unsubscribe/{token}/resubscribe", None, unsubscribe.resubscribe),
    ]
    for path, show, change in pages:
        for prefixed in (path, f"/{{prefix:path}}{path}"):
            for variant in (prefixed, f"{prefixed}/"):
                if show is not None:
                    routes.append(Route(variant, show, methods=["GET"]))
                routes.append(
                    Route(variant, change, methods=["POST"], max_body_size=FORM_MAX_BYTES)
                )
    # The same handlers under any prefix, so a proxy can forward unsubscribe_url's path as is,
    # and with a trailing slash too: answered in place, since a POST is never redirected.
    for path in ("/unsubscribe/{token}", "/{prefix:path}/unsubscribe/{token}"):
        for variant in (path, f"{path}/"):
            routes += [
                Route(variant, unsubscribe.confirm, methods=["GET"]),
                Route(
                    variant,
                    unsubscribe.unsubscribe,
                    methods=["POST"],
                    max_body_size=MAX_BODY_BYTES,
                ),
            ]
    webhook = WebhookEndpoint(project, secret)
    clicks = ClickEndpoint(project, secret)
    routes += [
        Route(variant, clicks.follow, methods=["GET"])
        for path in ("/c/{token}", "/{prefix:path}/c/{token}")
        for variant in (path, f"{path}/")
    ]
    for path in ("/webhooks/sendgrid", "/{prefix:path}/webhooks/sendgrid"):
        routes.append(
            Route(path, webhook.receive, methods=["POST"], max_body_size=WEBHOOK_MAX_BYTES)
        )
    routes += [
        Route("/{slug}/", archive.issue, methods=["GET"]),
        Route("/{slug}/{edition}/", archive.edition, methods=["GET"]),
        Route("/{slug}", archive.add_slash, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(RequestLog)])
    # Starlette would answer an unmatched path with a redirect to an absolute URL built from the
    # Host header (for a POST too); here a path matches a route as it is, or it is a 404.
    app.router.redirect_slashes = False
    return app


async def healthz(request: Request) -> Response:
    """Liveness probe for the proxy and the tests."""
    return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})


class ArchiveEndpoints:
    """The index, feed and issue pages; the index and feed made once per change of the build."""

    def __init__(self, project: Project, build_dir: Path) -> None:
        self._newsletter = project.newsletter
        self._archive = Archive(build_dir, SentIssues(project.root / STATE_DIR))
        self._not_found_pages: dict[str, bytes] = {}  # by language, made on first use

    def _language(self, request: Request) -> str:
        """The archive's pages are public: the reader's browser picks their language."""
        asked = accept_language(request.headers.get("accept-language"))
        return negotiate(asked) or resolve_language(self._newsletter.language)

    async def index(self, request: Request) -> Response:
        """The list of built issues, newest first, with relative links (works under any prefix)."""
        language = self._language(request)
        page = self._archive.snapshot().derived(
            f"index {language}", partial(self._index_page, language)
        )
        return Response(page, media_type=HTML, headers=INDEX_HEADERS)

    async def feed(self, request: Request) -> Response:
        """The Atom feed of built issues, with absolute links under archive_url."""
        body = self._archive.snapshot().derived("feed", partial(atom_feed, self._newsletter))
        return Response(body, media_type=ATOM, headers=ARCHIVE_HEADERS)

    async def issue(self, request: Request) -> Response:
        """One issue's web version, exactly as `compose build` wrote it."""
        page = self._archive.web_version(request.path_params["slug"])
        if page is None:
            return self._not_found(request)
        return Response(page.body, media_type=HTML, headers=page.headers)

    async def edition(self, request: Request) -> Response:
        """One issue's web version in a translation (`compose build` writes each one)."""
        params = request.path_params
        page = self._archive.web_version(params["slug"], params["edition"])
        if page is None:
            return self._not_found(request)
        return Response(page.body, media_type=HTML, headers=page.headers)

    async def add_slash(self, request: Request) -> Response:
        """`/<slug>` to `/<slug>/`, relative so it stays under a proxy's prefix."""
        slug = request.path_params["slug"]
        if self._archive.issue(slug) is None:
            return self._not_found(request)
        return RedirectResponse(f"{slug}/", status_code=308)

    def _index_page(self, language: str, issues: Sequence[ArchivedIssue]) -> bytes:
        return render_page(
            "archive-index.html",
            language=language,
            newsletter=self._newsletter.name,
            robots="index, follow",
            issues=issues,
        ).encode("utf-8")

    def _not_found(self, request: Request) -> Response:
        language = self._language(request)
        if language not in self._not_found_pages:
            self._not_found_pages[language] = render_page(
                "error.html",
                language=language,
                newsletter=self._newsletter.name,
                heading=translate(language, N_("Not found")),
                message=translate(language, N_("There is no issue at this address.")),
            ).encode("utf-8")
        page = self._not_found_pages[language]
        return Response(page, status_code=404, media_type=HTML, headers=PAGE_HEADERS)


def loggable_path(path: str) -> str:
    """The request path with tokens replaced by their fingerprint and addresses masked."""
    path = _TOKEN_IN_PATH.sub(lambda m: f"{m.group(1)}#{token_digest(m.group(2))}", path)
    return _ADDRESS_IN_PATH.sub(lambda m: mask_address(m.group(0)), path)


class RequestLog:
    """ASGI middleware writing one line per request: method, redacted path, status, time, note."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500  # what the client sees when the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            note = state.get("log_note")
            self.logger.info(
                "%s %s %d %.1fms%s",
                scope["method"],
                loggable_path(scope["path"]),
                status,
                elapsed_ms,
                f" {note}" if note else "",
            )


def log_config(level: str = "INFO") -> dict[str, Any]:
    """Logging for `compose serve`: uvicorn's own lines on stderr, our request lines on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(levelprefix)s %(message)s",
                "use_colors": None,
            },
            "access": {"format": "%(asctime)s %(message)s", "datefmt": "%Y-%m-%dT%H:%M:%S%z"},
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            # uvicorn's access log prints the raw path (tokens included); ours replaces it.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            ACCESS_LOGGER: {"handlers": ["access"], "level": level, "propagate": False},
        },
    }
