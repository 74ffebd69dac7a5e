"""The one e-mail `compose serve` writes itself: a sign-up's confirmation, in the language of
the sign-up page the reader used (the theme's catalogues, docs/languages.md).

It goes through the configured transport's settings (`transport:` in newsletter.yaml, the
environment overriding it, as for `compose send`), but not through the send pipeline, which
renders issues for lists: one small text message is built with the standard library and

- outbox: written to `outbox/confirmations/<address>.eml` (a newer one replaces an older);
- smtp: handed to the SMTP server with smtplib (STARTTLS when offered, login when configured,
  DKIM-signed as issues are when transport.dkim is set);
- sendgrid: posted to the v3 Mail Send API with the official client.
"""

from __future__ import annotations

import secrets
import smtplib
import threading
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from composer.atomic import write_bytes_atomically
from composer.audience.records import address_key
from composer.delivery.dkim import DkimSigner, dkim_signer
from composer.delivery.settings import Settings, resolve_settings
from composer.delivery.smtp_session import LoginInClear, NoStartTLS, connect, start_session
from composer.errors import ComposeError
from composer.project import Project
from composer.render.i18n import DEFAULT_LANGUAGE, N_, resolve_language
from composer.web.pages import translate

__all__ = ["ConfirmationMailer", "ConfirmationTemplate", "MailNotSent"]
CONFIRMATIONS_DIR = "confirmations"
CONFIRM_DAYS = 7
_THIS_MACHINE = ("127.0.0.1", "::1", "localhost")  # where a login may go without TLS


class MailNotSent(RuntimeError):
    """The confirmation could not be handed over (the server refused or could not be reached)."""


class ConfirmationTemplate:
    """The confirmation e-mail of one project in one language: its fixed headers folded once,
    then filled in per reader (a sign-up costs a few string joins, not an EmailMessage)."""

    def __init__(self, project: Project, language: str = DEFAULT_LANGUAGE) -> None:
        news = project.newsletter
        self.language = language
        self.sender = news.from_.email
        self.subject = translate(
            language, N_("Confirm your subscription to %(newsletter)s"), newsletter=news.name
        )
        self._domain = news.from_.email.rpartition("@")[2] or "localhost"
        self._newsletter = news.name
        self._signature = f"-- \n{news.organization or news.name}\n{news.postal_address}\n"
        fold = policy.SMTP.fold
        head = [
            fold("From", formataddr((news.from_.name, news.from_.email))),
            fold("Subject", self.subject),
            fold("Auto-Submitted", "auto-replied"),  # RFC 3834: an answer to the sign-up form
        ]
        if news.reply_to is not None:
            head.append(fold("Reply-To", formataddr((news.reply_to.name, news.reply_to.email))))
        self._head = "".join(head)

    def body(self, email: str, name: str, link: str) -> str:
        """The text of the message, with LF line ends."""
        lang = self.language
        greeting = (
            translate(lang, N_("Hello %(name)s,"), name=name)
            if name
            else translate(lang, N_("Hello,"))
        )
        asked = translate(
            lang,
            N_(
                "someone, probably you, asked to receive %(newsletter)s at %(address)s.\n"
                'To confirm, open this link and press the button "%(button)s":'
            ),
            newsletter=self._newsletter,
            address=email,
            button=translate(lang, "Confirm"),  # the button's own words on the page
        )
        ignore = translate(
            lang,
            N_(
                "The link works for %(days)s days. If you did not ask for this, ignore this "
                "message:\nyou will not be subscribed and we will not write to you again."
            ),
            days=CONFIRM_DAYS,
        )
        return f"{greeting}\n\n{asked}\n\n{link}\n\n{ignore}\n\n{self._signature}"

    def render(self, email: str, name: str, link: str) -> bytes:
        """The whole message as bytes, CRLF line ends."""
        body = self.body(email, name, link)
        message_id = f"<confirm.{secrets.token_hex(12)}@{self._domain}>"
        if not (body.isascii() and email.isascii()):
            return self._render_unicode(email, body, message_id)
        # 7bit keeps the link on one line, as it is (no quoted-printable soft breaks).
        return (
            f"{self._head}To: {email}\r\nDate: {formatdate(usegmt=True)}\r\n"
            f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n'
            "\r\n" + body.replace("\n", "\r\n")
        ).encode("ascii")

    def _render_unicode(self, email: str, body: str, message_id: str) -> bytes:
        """A name or an address beyond ASCII: the standard library encodes it."""
        message = EmailMessage()
        for line in self._head.split("\r\n"):
            if line:
                key, _, value = line.partition(": ")
                message[key] = value
        message["To"] = email
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = message_id
        message.set_content(body, cte="quoted-printable")
        return message.as_bytes(policy=policy.SMTP if email.isascii() else policy.SMTPUTF8)


class ConfirmationMailer:
    """Sends confirmation e-mails for one project; settings resolved at the first send."""

    def __init__(self, project: Project) -> None:
        self._project = project
        self.template = ConfirmationTemplate(project)
        self._templates = {self.template.language: self.template}  # by language, made on use
        self._settings: Settings | None = None
        self._signer: DkimSigner | None = None
        self._mutex = threading.Lock()

    def template_for(self, language: str) -> ConfirmationTemplate:
        """The confirmation in `language` (a resolved tag), built once."""
        with self._mutex:
            if language not in self._templates:
                self._templates[language] = ConfirmationTemplate(self._project, language)
            return self._templates[language]

    @property
    def settings(self) -> Settings:
        with self._mutex:
            if self._settings is None:
                news = self._project.newsletter
                settings = resolve_settings(self._project.root, news.transport)
                if settings.kind == "smtp" and settings.dkim is not None:
                    # Signed like the issues (cli.md); the key is checked at the first send.
                    self._signer = dkim_signer(settings.dkim)
                self._settings = settings
            return self._settings

    def send(self, email: str, name: str, link: str, language: str = DEFAULT_LANGUAGE) -> None:
        """Hand one confirmation in `language` over to the transport; MailNotSent when that fails."""
        try:
            settings = self.settings
        except ComposeError as exc:  # e.g. sendgrid without SENDGRID_API_KEY: say it, once a try
            raise MailNotSent(str(exc)) from None
        template = self.template_for(resolve_language(language))
        if settings.kind == "sendgrid":
            self._to_sendgrid(settings, email, template.subject, template.body(email, name, link))
            return
        data = template.render(email, name, link)
        if settings.kind == "outbox":
            self._to_outbox(settings, email, data)
        else:
            self._to_smtp(settings, email, data)

    def _to_outbox(self, settings: Settings, email: str, data: bytes) -> None:
        from composer.delivery.transports.outbox import outbox_name

        path = settings.outbox_path / CONFIRMATIONS_DIR / outbox_name(address_key(email))
        try:
            # No fsync: an outbox file is a copy for looking at (as `compose send` writes it).
            write_bytes_atomically(path, data, durable=False)
        except OSError as exc:
            raise MailNotSent(f"cannot write {path}: {exc.strerror}") from None

    def _to_smtp(self, settings: Settings, email: str, data: bytes) -> None:
        host, port = settings.host or "localhost", settings.port or 25
        try:
            smtp = connect(host, port, settings.timeout)
            with smtp:  # QUIT on the way out, whatever happens
                try:
                    start_session(smtp, settings, port, clear_login_ok=host in _THIS_MACHINE)
                except NoStartTLS:
                    raise MailNotSent(
                        f"smtp server {host}:{port} does not offer STARTTLS"
                    ) from None
                except LoginInClear:
                    raise MailNotSent(f"refusing to log in to {host} without TLS") from None
                if self._signer is not None:
                    data = self._signer.sign_message(data)
                options = [] if email.isascii() else ["SMTPUTF8"]
                smtp.sendmail(self.template.sender, [email], data, mail_options=options)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSent(f"smtp server {host}:{port}: {exc}") from None

    def _to_sendgrid(self, settings: Settings, email: str, subject: str, body: str) -> None:
        from python_http_client import exceptions as http_errors
        from sendgrid import SendGridAPIClient

        if settings.api_key is None:
            raise MailNotSent("the sendgrid transport has no API key")
        news = self._project.newsletter
        payload = {
            "personalizations": [{"to": [{"email": email}]}],
            "from": {"email": news.from_.email, "name": news.from_.name},
            "subject": subject,
            "content": [{"type": "text/plain", "value": body}],
        }
        client = SendGridAPIClient(api_key=settings.api_key.get_secret_value(), host=settings.host)
        try:
            client.client.mail.send.post(request_body=payload, timeout=settings.timeout)
        except (http_errors.HTTPError, OSError) as exc:
            raise MailNotSent(f"SendGrid refused or could not be reached: {exc}") from None
