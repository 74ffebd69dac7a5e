"""What the reader's pages share: the project, its secret, CSRF, pages, links and consent records."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from composer.audience.consent import (
    ConsentRecord,
    append_consent,
    clean_agent,
    ip_hash,
    utc_now,
)
from composer.delivery.tokens import make_token
from composer.project import Project
from composer.web.csrf import FIELD, CsrfGuard
from composer.web.pages import render_page

# Our own small pages: no scripts, no outside resources, forms only back to us, never cached,
# and the token in the URL never leaks through a Referer header.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
FORM_MAX_BYTES = 1024 * 1024  # every form POST: a bigger body is refused with 413
FORM_MAX_FIELDS = 200


def mask_address(email: str) -> str:
    """`jane.doe@example.org` as `j***@example.org`: enough to recognise, not to harvest."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


class ReaderSite:
    """One project's reader-facing pages: rendering, CSRF, links, consent records."""

    def __init__(self, project: Project, secret: bytes) -> None:
        self.project = project
        self.secret = secret
        news = project.newsletter
        self.public_base = news.public_base
        self.csrf = CsrfGuard(secret, secure_cookie=self.public_base.startswith("https://"))
        self.context = {"newsletter": news.name, "language": news.language}

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """A page of ours; when it holds a form, with a CSRF token in the form and the cookie."""
        token = self.csrf.token_for(request)
        body = render_page(template, csrf=token, **self.context, **context)
        response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
        return self.csrf.attach(response, token)

    def error(self, status: int, heading: str, message: str) -> Response:
        """A plain page saying what went wrong and what to do."""
        page = render_page("error.html", heading=heading, message=message, **self.context)
        return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)

    def test_copy(self, request: Request, email: str) -> Response:
        """The answer to a link from a `send --test` copy: what a reader would get, no change."""
        request.state.log_note = "test copy: nothing changed"
        return self.error(
            200,
            "This link is from a test copy",
            f"In the issue itself, this link lets the reader ({mask_address(email)}) unsubscribe "
            "or change what they receive. A test copy's link changes nothing.",
        )

    def forged(self, request: Request) -> Response:
        """The answer to a POST whose CSRF token is missing or not ours."""
        request.state.log_note = "csrf refused"
        return self.error(
            403,
            "This form has expired",
            "Go back, reload the page and send the form again.",
        )

    def preferences_url(self, list_name: str, email: str) -> str:
        """A reader's personal preferences page (the unsubscribe token names them)."""
        return f"{self.public_base}preferences/{make_token(self.secret, list_name, email)}"

    def record(
        self,
        request: Request,
        email: str,
        list_name: str,
        action: str,
        form: str,
        consent_sha: str = "",
    ) -> ConsentRecord:
        """A consent record of `action` by the client of `request` (IP hashed, never kept)."""
        return ConsentRecord(
            email=email,
            list=list_name,
            action=action,
            at=utc_now(),
            ip_hash=ip_hash(self.secret, request.client.host if request.client else None),
            form=form,
            consent_text_sha256=consent_sha,
            user_agent=clean_agent(request.headers.get("user-agent")),
        )

    async def write_records(self, records: list[ConsentRecord]) -> None:
        """Append `records` to consent.csv, off the event loop."""
        if records:
            await run_in_threadpool(append_consent, self.project, records)


async def read_form(request: Request) -> FormData | None:
    """The POST's form fields (no files), or None when the body is not a form we can read."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return None
    try:
        return await request.form(max_files=0, max_fields=FORM_MAX_FIELDS)
    except HTTPException:
        return None


def csrf_field(form: FormData) -> str | None:
    """The CSRF field of a form, if it is text."""
    value = form.get(FIELD)
    return value if isinstance(value, str) else None


def text_field(form: FormData, name: str, limit: int = 320) -> str:
    """A single-line text field, trimmed and cut to `limit` characters ('' when absent)."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:limit]


def chosen(form: FormData, name: str, offered: list[str]) -> list[str]:
    """The values of a multi-choice field that were offered, in the offered order."""
    picked = {v for v in form.getlist(name) if isinstance(v, str)}
    return [value for value in offered if value in picked]
