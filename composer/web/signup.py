"""Sign-up with double opt-in: `/subscribe` asks and mails a link, `/confirm/<token>` adds.

Nothing about an address is looked up when it signs up: a new, a known and a suppressed address
get the same page, the same status and the same e-mail (no enumeration). The confirmation link
carries the whole sign-up, sealed and dated (composer/web/signed.py); only its POST, which a
person makes with a button, adds the reader to the lists. A link is used once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

from email_validator import EmailNotValidError, validate_email
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from composer.audience.consent import ConsentRecord, append_consent, text_sha256
from composer.audience.membership import Change, change_list, lift_suppression
from composer.audience.suppressions import is_suppressed
from composer.issue.model import SignupSettings
from composer.render.i18n import N_
from composer.web.claims import ClaimLedger
from composer.web.mailer import CONFIRM_DAYS, ConfirmationMailer, MailNotSent
from composer.web.readers import ReaderSite, chosen, csrf_field, mask_address, read_form, text_field
from composer.web.signed import BadToken, ExpiredToken, make_signed, read_signed

PURPOSE = "confirm"
MAX_AGE_SECONDS = CONFIRM_DAYS * 24 * 3600
RATE_ENV = "COMPOSE_SIGNUP_RATE"
DEFAULT_RATE = "5/minute;20/hour"  # per client IP: a person signs up once, a flood is no person
HONEYPOT = "website"
logger = logging.getLogger("composer.web.signup")


@dataclass(frozen=True)
class SignUp:
    """What a sign-up asked for: carried, sealed, in its confirmation link."""

    email: str
    name: str
    lists: list[str]
    interests: list[str]
    consent_sha: str
    form: str
    language: str = ""  # the sign-up page's language: the confirmation pages keep it

    def data(self) -> dict[str, object]:
        """The sign-up as the token's JSON payload (short keys: the link stays short)."""
        return {
            "e": self.email,
            "n": self.name,
            "l": self.lists,
            "i": self.interests,
            "c": self.consent_sha,
            "f": self.form,
            "g": self.language,
        }

    @classmethod
    def from_data(cls, data: object) -> SignUp:
        """The sign-up a token's payload holds; BadToken when it is not one."""
        if not isinstance(data, dict):
            raise BadToken("token is malformed")
        try:
            return cls(
                email=str(data["e"]),
                name=str(data["n"]),
                lists=[str(v) for v in data["l"]],
                interests=[str(v) for v in data["i"]],
                consent_sha=str(data["c"]),
                form=str(data["f"]),
                language=str(data.get("g", "")),  # links made before languages carry none
            )
        except (KeyError, TypeError):
            raise BadToken("token is malformed") from None


class SignupEndpoints:
    """GET/POST `/subscribe` and `/confirm/<token>`, bound to one project."""

    def __init__(self, site: ReaderSite, rate: str | None = None) -> None:
        self.site = site
        news = site.project.newsletter
        self.settings: SignupSettings | None = news.signup
        self.pillars = dict(news.pillars)
        # The editions a reader can get, and the one a reader without a `language` gets.
        self.editions = set(news.languages)
        self.default_edition = news.default_language
        self.mailer = ConfirmationMailer(site.project)
        self.claims = ClaimLedger(site.project.state_dir())
        self.limits = parse_many(rate or os.environ.get(RATE_ENV) or DEFAULT_RATE)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    # -- sign-up ---------------------------------------------------------------------------

    def _offered_interests(self) -> dict[str, str]:
        if self.settings is None or not self.settings.interests:
            return {}
        return {key: pillar.title for key, pillar in self.pillars.items()}

    def _form_page(
        self,
        request: Request,
        settings: SignupSettings,
        status: int = 200,
        *,
        error: str = "",
        email: str = "",
        name: str = "",
        lists: list[str] | None = None,
        interests: list[str] | None = None,
    ) -> Response:
        return self.site.page(
            request,
            "subscribe.html",
            status,
            error=error,
            email=email,
            reader_name=name,
            lists=settings.lists,
            chosen_lists=settings.lists[:1] if lists is None else lists,
            interests=self._offered_interests(),
            chosen_interests=interests or [],
            consent=settings.consent,
        )

    def _not_offered(self, request: Request) -> Response:
        return self.site.error(
            request, 404, N_("No sign-up here"), N_("This newsletter has no sign-up form.")
        )

    async def form(self, request: Request) -> Response:
        """GET: the sign-up form."""
        if self.settings is None:
            return self._not_offered(request)
        return self._form_page(request, self.settings)

    async def subscribe(self, request: Request) -> Response:
        """POST: check the form, mail a confirmation link, answer "check your inbox"."""
        settings = self.settings
        if settings is None:
            return self._not_offered(request)
        form = await read_form(request)
        if form is None:
            return self.site.error(
                request, 400, N_("Not a sign-up"), N_("Use the sign-up form to subscribe.")
            )
        if text_field(form, HONEYPOT):
            request.state.log_note = "honeypot"
            return self._sent(request)  # a bot learns nothing
        submitted = csrf_field(form)
        # Our page's form carries a CSRF token; a copy of the form on the organisation's
        # site cannot (see docs/readers.md). Double opt-in protects both: nothing changes
        # until the address's owner presses the button in the e-mail.
        origin = "signup" if submitted is not None else "embed"
        if submitted is not None and not self.site.csrf.verify(request, submitted):
            return self.site.forged(request)
        problem, signup = self._read_signup(form, settings, origin)
        if signup is None:
            return self._form_page(
                request,
                settings,
                400,
                error=problem,
                email=text_field(form, "email"),
                name=text_field(form, "name", 100),
                lists=chosen(form, "lists", settings.lists),
                interests=chosen(form, "interests", list(self._offered_interests())),
            )
        if not self._allowed(request):
            request.state.log_note = "rate limited"
            return self.site.error(
                request,
                429,
                N_("Too many sign-ups"),
                N_("Too many sign-ups came from your network just now. Please try again later."),
            )
        records = [
            self.site.record(request, signup.email, name, "subscribe", origin, signup.consent_sha)
            for name in signup.lists
        ]
        language = self.site.language(request)
        token = make_signed(self.site.secret, PURPOSE, replace(signup, language=language).data())
        link = f"{self.site.public_base}confirm/{token}"
        try:
            await run_in_threadpool(self._mail_and_record, records, signup, link, language)
        except MailNotSent as exc:
            logger.error("confirmation to %s not sent: %s", mask_address(signup.email), exc)
            return self.site.error(
                request,
                503,
                N_("We could not send the e-mail"),
                N_("Something went wrong on our side. Please try again in a few minutes."),
            )
        request.state.log_note = f"confirmation sent {mask_address(signup.email)}"
        return self._sent(request)

    def _mail_and_record(
        self, records: list[ConsentRecord], signup: SignUp, link: str, language: str
    ) -> None:
        """Mail the link in the page's language, then record the sign-up (one trip to a worker
        thread for both): a sign-up whose e-mail could not be sent leaves no record."""
        self.mailer.send(signup.email, signup.name, link, language)
        append_consent(self.site.project, records)

    def _read_signup(
        self, form: FormData, settings: SignupSettings, origin: str
    ) -> tuple[str, SignUp | None]:
        raw = text_field(form, "email")
        try:
            email = validate_email(raw, check_deliverability=False).normalized
        except EmailNotValidError:
            return N_("Please enter a valid e-mail address."), None
        lists = chosen(form, "lists", settings.lists)
        if "lists" not in form:
            lists = settings.lists[:1]  # a copy of the form that offers no choice: the first
        if not lists:
            return N_("Please choose at least one list."), None
        if form.get("consent") is None:
            return N_("Please tick the box to agree: we cannot subscribe you without it."), None
        interests = chosen(form, "interests", list(self._offered_interests()))
        consent = text_sha256(settings.consent)
        name = text_field(form, "name", 100)
        return "", SignUp(email, name, lists, interests, consent, origin)

    def _allowed(self, request: Request) -> bool:
        client = request.client.host if request.client else "unknown"
        return all(self.limiter.hit(item, "signup", client) for item in self.limits)

    def _sent(self, request: Request) -> Response:
        return self.site.page(request, "subscribe-sent.html", days=CONFIRM_DAYS)

    # -- confirmation ----------------------------------------------------------------------

    def _decode(self, request: Request) -> SignUp | Response:
        token = request.path_params["token"]
        try:
            data, _issued = read_signed(self.site.secret, PURPOSE, token, MAX_AGE_SECONDS)
            return SignUp.from_data(data)
        except ExpiredToken:
            request.state.log_note = "expired token"
            return self.site.error(
                request,
                400,
                N_("This confirmation link has expired"),
                N_("Links work for %(days)s days. Sign up again to get a new one."),
                days=CONFIRM_DAYS,
            )
        except BadToken:
            request.state.log_note = "invalid token"
            return self.site.error(
                request,
                400,
                N_("This confirmation link is not valid"),
                N_(
                    "The link may have been cut or changed. Use the complete link from the "
                    "e-mail, or sign up again."
                ),
            )

    async def ask(self, request: Request) -> Response:
        """GET: ask to confirm, changing nothing (mail scanners open every link)."""
        signup = self._decode(request)
        if isinstance(signup, Response):
            return signup
        return self.site.page(
            request,
            "confirm.html",
            language=self.site.language(request, signup.language or None),
            masked=mask_address(signup.email),
            lists=signup.lists,
        )

    async def confirm(self, request: Request) -> Response:
        """POST: add the reader to the chosen lists and record it; a second POST does nothing."""
        signup = self._decode(request)
        if isinstance(signup, Response):
            return signup
        form = await read_form(request)
        if form is None or not self.site.csrf.verify(request, csrf_field(form)):
            return self.site.forged(request)
        token = request.path_params["token"]
        first = await run_in_threadpool(self.claims.claim, token)
        masked = mask_address(signup.email)
        preferences = self.site.preferences_url(signup.lists[0], signup.email)
        language = self.site.language(request, signup.language or None)
        if not first:
            request.state.log_note = f"already confirmed {masked}"
            return self.site.page(
                request, "confirm-done.html", language=language, again=True, lists=signup.lists,
                masked=masked, preferences=preferences,
            )  # fmt: skip
        records = await run_in_threadpool(self._apply, request, signup)
        await self.site.write_records(records)
        request.state.log_note = f"confirmed {masked}"
        return self.site.page(
            request, "confirm-done.html", language=language, again=False, lists=signup.lists,
            masked=masked, preferences=preferences,
        )  # fmt: skip

    def _apply(self, request: Request, signup: SignUp) -> list[ConsentRecord]:
        """Lift a suppression, join the lists; the consent records that say so."""
        project = self.site.project
        records: list[ConsentRecord] = []
        if is_suppressed(project, signup.email) and lift_suppression(project, signup.email):
            records += [
                self.site.record(request, signup.email, name, "resubscribe", "confirm",
                                 signup.consent_sha)
                for name in signup.lists
            ]  # fmt: skip
        cells = [("name", signup.name)] if signup.name else []
        if self._offered_interests():
            cells.append(("interests", ";".join(signup.interests)))
        if signup.language in self.editions and signup.language != self.default_edition:
            # Signed up on the page in another edition's language: that edition is theirs.
            cells.append(("language", signup.language))
        for name in signup.lists:
            change_list(project, name, [Change(signup.email, "join", tuple(cells))])
            records.append(
                self.site.record(request, signup.email, name, "confirm", signup.form,
                                 signup.consent_sha)
            )  # fmt: skip
        return records
