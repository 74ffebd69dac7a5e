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
from composer.audience.records import EMAIL, address_key, open_table
from composer.delivery.tokens import TEST_COPY, InvalidToken, make_token, read_token
from composer.errors import ComposeError
from composer.project import Project, display_path
from composer.render.i18n import N_, accept_language, negotiate, resolve_language
from composer.web.csrf import FIELD, CsrfGuard
from composer.web.pages import render_page, translate

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
LANGUAGE = "language"  # the list column naming a reader's language (a BCP 47 tag)


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
        self.context = {"newsletter": news.name}
        self.default_language = news.language

    def language(self, request: Request, known: str | None = None) -> str:
        """The language of the page for this reader: the one their list row names (`known`),
        else the best of their browser's Accept-Language that the theme has a catalogue for,
        else the newsletter's default."""
        asked = [known] if known else []
        asked += accept_language(request.headers.get("accept-language"))
        return negotiate(asked) or resolve_language(self.default_language)

    def page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        *,
        language: str | None = None,
        **context: Any,
    ) -> Response:
        """A page of ours; when it holds a form, with a CSRF token in the form and the cookie."""
        token = self.csrf.token_for(request)
        lang = language or self.language(request)
        body = render_page(template, language=lang, csrf=token, **self.context, **context)
        response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
        return self.csrf.attach(response, token)

    def error(
        self,
        request: Request,
        status: int,
        heading: str,
        message: str,
        *,
        language: str | None = None,
        **params: object,
    ) -> Response:
        """A plain page saying what went wrong and what to do; `heading` and `message` are
        catalogue messages (marked N_), `params` fill the message's `%(name)s`."""
        lang = language or self.language(request)
        page = render_page(
            "error.html",
            language=lang,
            heading=translate(lang, heading),
            message=translate(lang, message, **params),
            **self.context,
        )
        return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)

    def reader_of(self, request: Request, title: str, detail: str) -> tuple[str, str] | Response:
        """The (list, address) the link's token names; else the page to answer with: a 400
        saying `title` and `detail` for a bad token, or the test copy's page."""
        try:
            list_name, email = read_token(self.secret, request.path_params["token"])
        except InvalidToken:
            request.state.log_note = "invalid token"
            return self.error(request, 400, title, detail)
        if list_name == TEST_COPY:
            return self.test_copy(request, email)
        return list_name, email

    def test_copy(self, request: Request, email: str) -> Response:
        """The answer to a link from a `send --test` copy: what a reader would get, no change."""
        request.state.log_note = "test copy: nothing changed"
        return self.error(
            request,
            200,
            N_("This link is from a test copy"),
            N_(
                "In the issue itself, this link lets the reader (%(address)s) unsubscribe or "
                "change what they receive. A test copy's link changes nothing."
            ),
            address=mask_address(email),
        )

    def forged(self, request: Request) -> Response:
        """The answer to a POST whose CSRF token is missing or not ours."""
        request.state.log_note = "csrf refused"
        return self.error(
            request,
            403,
            N_("This form has expired"),
            N_("Go back, reload the page and send the form again."),
        )

    def recorded_language(self, list_name: str, email: str) -> str | None:
        """The `language` cell of the reader's row in `list_name`, when the list has that column
        (read in a worker thread: it scans the list)."""
        path = self.project.subscribers_dir / f"{list_name}.csv"
        if not path.is_file():
            return None
        key = address_key(email)
        try:
            with open_table(path, display_path(path)) as table:
                if LANGUAGE not in table.columns:
                    return None  # most lists: no scan at all
                ei, li = table.position(EMAIL), table.position(LANGUAGE)
                for _, row in table.rows():
                    if row and address_key(row[ei]) == key:
                        return row[li].strip() or None
        except ComposeError:
            return None  # a list that cannot be read gives the page no language; send says why
        return None

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
