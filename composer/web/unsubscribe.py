"""RFC 8058 one-click unsubscribe: GET asks, POST suppresses the address the signed token names."""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from composer.audience.membership import lift_suppression
from composer.audience.suppressions import add_suppressions, preload_suppressions
from composer.project import Project
from composer.render.i18n import N_
from composer.web.pages import render_page
from composer.web.readers import PAGE_HEADERS, ReaderSite, csrf_field, mask_address, read_form

# RFC 8058 section 3.1: the POST body a mail client sends for one-click unsubscription.
ONE_CLICK_KEY = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"
MAX_BODY_BYTES = 16 * 1024

__all__ = ["PAGE_HEADERS", "UnsubscribeEndpoints", "mask_address", "token_digest"]
ONE_CLICK_FORM = "one-click"  # the form recorded in consent.csv for an RFC 8058 unsubscribe


def token_digest(token: str) -> str:
    """A short, stable fingerprint of a token, for logs that must not reveal the address."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def unsubscribe_reason(list_name: str) -> str:
    """The reason recorded in suppressions.csv for an unsubscribe through our link."""
    return f"unsubscribed (link, list {list_name})"


async def asks_one_click(request: Request) -> bool:
    """Whether the POST body is `List-Unsubscribe=One-Click`, as a form or (leniently) bare."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form(max_files=0, max_fields=16) as form:
            return form.get(ONE_CLICK_KEY) == ONE_CLICK_VALUE
    # Some senders omit the Content-Type; the exact RFC 8058 body still means the same thing.
    body = (await request.body()).decode("utf-8", "replace").strip()
    return parse_qs(body).get(ONE_CLICK_KEY) == [ONE_CLICK_VALUE]


class UnsubscribeEndpoints:
    """The GET and POST handlers for `…/unsubscribe/<token>`, bound to one project and secret."""

    def __init__(self, project: Project, secret: bytes, site: ReaderSite | None = None) -> None:
        self._project = project
        self._site = site or ReaderSite(project, secret)
        self._context = {"newsletter": project.newsletter.name}
        # Reading 200,000 suppressions takes ~0.2 s: not on the first reader's click.
        preload_suppressions(project)

    async def confirm(self, request: Request) -> Response:
        """GET: ask for confirmation and change nothing (link scanners fetch every URL)."""
        decoded = self._decode(request)
        if isinstance(decoded, Response):
            return decoded
        list_name, email = decoded
        page = render_page(
            "unsubscribe-confirm.html",
            language=await self._language(request, list_name, email),
            masked=mask_address(email),
            preferences=self._site.preferences_url(list_name, email),
            **self._context,
        )
        return HTMLResponse(page, headers=PAGE_HEADERS)

    async def unsubscribe(self, request: Request) -> Response:
        """POST: the one-click body or the confirmation form; suppress and answer 200."""
        decoded = self._decode(request)
        if isinstance(decoded, Response):
            return decoded
        list_name, email = decoded
        if not await asks_one_click(request):
            request.state.log_note = "no one-click body"
            return self._site.error(
                request,
                400,
                N_("Not unsubscribed"),
                N_("The request did not ask to unsubscribe. Use the button on the page."),
                language=await self._language(request, list_name, email),
            )
        today = dt.datetime.now(dt.UTC).date().isoformat()
        entry = (email, unsubscribe_reason(list_name), today)
        added = await run_in_threadpool(add_suppressions, self._project, [entry])
        if added:
            record = self._site.record(request, email, list_name, "unsubscribe", ONE_CLICK_FORM)
            await self._site.write_records([record])
        note = "suppressed" if added else "already suppressed"
        request.state.log_note = f"{note} {mask_address(email)}"
        return await self._done(request, list_name, email, resubscribed=False)

    async def resubscribe(self, request: Request) -> Response:
        """POST `…/unsubscribe/<token>/resubscribe`: the undo the done page offers; lifts the
        suppression and records it."""
        decoded = self._decode(request)
        if isinstance(decoded, Response):
            return decoded
        form = await read_form(request)
        if form is None or not self._site.csrf.verify(request, csrf_field(form)):
            return self._site.forged(request)
        list_name, email = decoded
        lifted = await run_in_threadpool(lift_suppression, self._project, email)
        if lifted:
            record = self._site.record(request, email, list_name, "resubscribe", "unsubscribe-undo")
            await self._site.write_records([record])
        request.state.log_note = f"{'resubscribed' if lifted else 'not suppressed'} " + (
            mask_address(email)
        )
        return await self._done(request, list_name, email, resubscribed=True)

    async def _language(self, request: Request, list_name: str, email: str) -> str:
        """The reader's language as their list row has it, else as their browser asks."""
        known = await run_in_threadpool(self._site.recorded_language, list_name, email)
        return self._site.language(request, known)

    async def _done(
        self, request: Request, list_name: str, email: str, *, resubscribed: bool
    ) -> Response:
        # The undo posts to this URL's own path (a proxy may mount us under any prefix).
        path = request.url.path.rstrip("/")
        undo = path if path.endswith("/resubscribe") else f"{path}/resubscribe"
        return self._site.page(
            request,
            "unsubscribe-done.html",
            language=await self._language(request, list_name, email),
            masked=mask_address(email),
            resubscribed=resubscribed,
            undo=undo,
            preferences=self._site.preferences_url(list_name, email),
        )

    def _decode(self, request: Request) -> tuple[str, str] | Response:
        return self._site.reader_of(
            request,
            N_("This unsubscribe link is not valid"),
            N_(
                "The link may have been cut or changed. Use the complete link from the "
                "newsletter, or reply to the newsletter to be removed by hand."
            ),
        )
