"""SendGrid's v3 Mail Send API through the official client: up to 1000 recipients a request."""

from __future__ import annotations

import html
import http.client
import json
import re
import time
import urllib.error
from collections.abc import Sequence
from typing import NoReturn, Protocol, TypedDict

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from composer.delivery.message import MessageTemplate, clean_name, list_id
from composer.delivery.settings import SENDGRID_MAX_BATCH, Settings, keep_out_of_logs
from composer.delivery.transports.base import (
    BatchTooLarge,
    Channel,
    Envelope,
    FatalTransportError,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
)
from composer.errors import UsageError
from composer.events.ids import delivery_id
from composer.issue import merge
from composer.render import PREFERENCES_PLACEHOLDER, READER_PLACEHOLDER

# Substitution tags: one per context, since SendGrid fills text and HTML alike.
URL_TEXT_TAG = "-composeUnsubscribeText-"
URL_HTML_TAG = "-composeUnsubscribeHtml-"
PREFS_TEXT_TAG = "-composePreferencesText-"
PREFS_HTML_TAG = "-composePreferencesHtml-"
READER_TAG = "-composeReader-"  # tracking.per_recipient: the delivery id in each click link
# Issue 12: merge field n is substituted per personalization like the links, plain in the text
# part and escaped in the HTML part; a subject with fields is set per personalization.
MERGE_TEXT_TAG = "-composeMerge{}Text-"
MERGE_HTML_TAG = "-composeMerge{}Html-"
MAX_CATEGORIES = 10
_PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)\b")

# The v3 Mail Send request body, as far as this transport fills it ("from" is a keyword).
MailSend = TypedDict(
    "MailSend",
    {
        "from": dict[str, str],
        "reply_to": dict[str, str],
        "subject": str,
        "content": list[dict[str, str]],
        "headers": dict[str, str],
        "custom_args": dict[str, str],
        "categories": list[str],
        "asm": dict[str, int],
        "tracking_settings": dict[str, dict[str, bool]],
        "personalizations": list[dict[str, object]],
    },
    total=False,
)


class MailSendResponse(Protocol):
    """What the SendGrid client returns for an accepted request."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> HeaderLookup | None: ...


class HeaderLookup(Protocol):
    """Response headers (an http.client.HTTPMessage): looked up by name."""

    def get(self, name: str) -> str | None: ...


def sendgrid_errors(body: bytes | str | None) -> list[dict[str, str]]:
    """The `errors` list of a SendGrid error body, or one entry holding the raw text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        errors = json.loads(body or "")["errors"]
        return [e for e in errors if isinstance(e, dict)]
    except (ValueError, KeyError, TypeError):
        return [{"message": (body or "no details").strip()[:300]}]


def _describe(status: int, errors: list[dict[str, str]]) -> str:
    parts = [
        f"{e.get('message', '')}" + (f" ({e['field']})" if e.get("field") else "") for e in errors
    ]
    return f"SendGrid {status}: " + "; ".join(parts)


class SendGridChannel(Channel[MailSend, MailSendResponse]):
    """One API client; requests are independent, so channels only add parallel requests."""

    def __init__(self, transport: SendGridTransport) -> None:
        super().__init__(transport)
        self.base_payloads = transport.base_payloads
        self.templates = transport.templates
        keep_out_of_logs(transport.api_key)
        self.client = SendGridAPIClient(
            api_key=transport.api_key.get_secret_value(), host=self.settings.host
        )

    def __repr__(self) -> str:
        return f"<SendGridChannel {self.settings.host}>"

    def build_payload(self, batch: Sequence[Envelope]) -> MailSend:
        # One variant a request (the runner batches them so): one body, substitutions per reader.
        variant = batch[0].fill.variant if batch and batch[0].fill is not None else 0
        payload = self.base_payloads[variant].copy()
        template = self.templates[variant]
        payload["personalizations"] = [self._personalization(e, template) for e in batch]
        return payload

    def _personalization(self, envelope: Envelope, template: MessageTemplate) -> dict[str, object]:
        name = clean_name(envelope.name)
        url = envelope.unsubscribe_url
        to: dict[str, str] = {"email": envelope.email}
        if name:
            to["name"] = name
        prefs = template.newsletter.preferences_link(envelope.token)
        substitutions = {
            URL_TEXT_TAG: url,
            URL_HTML_TAG: html.escape(url, quote=True),
            PREFS_TEXT_TAG: prefs,
            PREFS_HTML_TAG: html.escape(prefs, quote=True),
        }
        unsubscribe = template.list_unsubscribe(url, envelope.token, fold=False)
        headers = {"List-Unsubscribe": unsubscribe}
        # The delivery id comes back in every event of this message: matched without guessing.
        custom_args = {"delivery": delivery_id(envelope.token, self.transport.issue)}
        if template.per_reader:
            substitutions[READER_TAG] = custom_args["delivery"]
        personalization: dict[str, object] = {
            "to": [to],
            "substitutions": substitutions,
            "custom_args": custom_args,
        }
        if envelope.list_name and envelope.list_name != template.list_name:
            # A send to several lists: this reader's list, not the first one's.
            headers["List-Id"] = list_id(template.newsletter, envelope.list_name)
            custom_args["list"] = envelope.list_name
        personalization["headers"] = headers
        if envelope.send_at is not None:
            personalization["send_at"] = envelope.send_at
        fields = template.merge_fields
        if fields:
            values = template.merge_values(envelope.fill)
            for n, value in enumerate(values):
                substitutions[MERGE_TEXT_TAG.format(n)] = value
                substitutions[MERGE_HTML_TAG.format(n)] = html.escape(value, quote=True)
            if merge.MARKER.search(template.subject):
                personalization["subject"] = merge.fill(template.subject, values)
        return personalization

    def post(self, payload: MailSend) -> MailSendResponse:
        try:
            return self.client.client.mail.send.post(
                request_body=payload, timeout=self.settings.timeout
            )
        except http_errors.HTTPError as exc:
            self._raise(exc, payload)
        except urllib.error.URLError as exc:  # while connecting or sending: nothing was taken
            raise TemporaryFailure(
                f"SendGrid unreachable at {self.settings.host}: {exc.reason}"
            ) from None
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            # The whole request went; the answer did not come (a slow 202, a reset after
            # accepting): SendGrid may be delivering it now, so sending again could duplicate.
            raise UnknownOutcome(
                f"SendGrid did not answer at {self.settings.host} after the request was sent "
                f"({str(exc) or type(exc).__name__}, timeout {self.settings.timeout:g} s)"
            ) from None

    def _raise(self, exc: http_errors.HTTPError, payload: MailSend) -> NoReturn:
        status = exc.status_code
        errors = sendgrid_errors(exc.body)
        reason = _describe(status, errors)
        if status in (401, 403):
            raise FatalTransportError(
                f"{reason}; check the SENDGRID_API_KEY environment variable "
                "(it needs the Mail Send permission)"
            ) from None
        if status == 413:
            raise BatchTooLarge(reason) from None
        if status == 429:
            raise TemporaryFailure(reason, retry_after=self._reset_delay(exc)) from None
        if status >= 500:
            raise TemporaryFailure(reason) from None
        rejected: dict[int, str] = {}
        for error in errors:
            match = _PERSONALIZATION_FIELD.match(error.get("field") or "")
            if match is None:  # the request as a whole: ours to fix, not the readers'
                raise PermanentFailure(reason, final=False) from None
            rejected[int(match.group(1))] = _describe(status, [error])
        count = len(payload.get("personalizations", []))
        if not rejected or any(index >= count for index in rejected):
            raise PermanentFailure(reason, final=False) from None
        # An address SendGrid calls invalid is a hard bounce; anything else about a
        # personalization (a duplicate, a header) is final for it but says nothing of the address.
        bounce = all((e.get("field") or "").endswith(".email") for e in errors)
        raise PermanentFailure(reason, rejected, bounce=bounce) from None

    @staticmethod
    def _reset_delay(exc: http_errors.HTTPError) -> float | None:
        headers = exc.headers or {}
        reset = headers.get("X-RateLimit-Reset") if hasattr(headers, "get") else None
        try:
            return max(0.0, float(reset) - time.time()) + 0.05 if reset else None
        except ValueError:
            return None

    def parse_response(
        self, response: MailSendResponse, batch: Sequence[Envelope]
    ) -> list[str | None]:
        status = response.status_code
        if not 200 <= status < 300:
            raise PermanentFailure(f"SendGrid answered {status}, expected 202", final=False)
        headers = response.headers
        message_id = headers.get("X-Message-Id") if headers is not None else None
        return [message_id] * len(batch)


class SendGridTransport(Transport):
    """Delivers through SendGrid's Mail Send API."""

    name = "sendgrid"
    schedules_itself = True  # send_at per personalization
    supported_options = frozenset({"asm_group_id", "categories"})

    def __init__(self, settings: Settings, template: MessageTemplate, issue: str) -> None:
        super().__init__(settings, template, issue)
        if settings.api_key is None:  # resolve_settings always sets it
            raise ValueError("the sendgrid transport needs resolved settings with an API key")
        self.api_key = settings.api_key
        if len(settings.categories) > MAX_CATEGORIES:
            raise UsageError(
                f"SendGrid accepts at most {MAX_CATEGORIES} categories; "
                f"transport.categories in newsletter.yaml has {len(settings.categories)}"
            )
        # A send to readers of several variants (editions x interests): one body each.
        variants = getattr(template, "variants", None)
        self.templates: list[MessageTemplate] = list(variants) if variants else [template]
        self.base_payloads = [self._base_payload(t) for t in self.templates]

    @property
    def batch_size(self) -> int:
        return min(self.settings.batch_size or SENDGRID_MAX_BATCH, SENDGRID_MAX_BATCH)

    def _base_payload(self, template: MessageTemplate) -> MailSend:
        news = template.newsletter
        text = template.text.replace(template.unsubscribe_marker, URL_TEXT_TAG).replace(
            PREFERENCES_PLACEHOLDER, PREFS_TEXT_TAG
        )
        body = (
            template.html.replace(template.unsubscribe_marker, URL_HTML_TAG)
            .replace(PREFERENCES_PLACEHOLDER, PREFS_HTML_TAG)
            .replace(READER_PLACEHOLDER, READER_TAG)
        )
        text = merge.MARKER.sub(lambda m: MERGE_TEXT_TAG.format(m.group(1)), text)
        body = merge.MARKER.sub(lambda m: MERGE_HTML_TAG.format(m.group(1)), body)
        payload: MailSend = {
            "from": {"email": news.from_.email, "name": news.from_.name},
            "subject": merge.fill(template.subject, template.merge_values(None)),
            "content": [
                {"type": "text/plain", "value": text},
                {"type": "text/html", "value": body},
            ],
            "headers": {
                "List-Id": template.list_id,
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            "custom_args": {"issue": self.issue, "list": template.list_name},
            # Said, not left to the account's defaults: SendGrid's own click tracking would
            # rewrite every link (ours, when `tracking.clicks`, are counted by compose serve),
            # and its open pixel goes in only when `tracking.opens` asks for it.
            "tracking_settings": {
                "click_tracking": {"enable": False, "enable_text": False},
                "open_tracking": {"enable": news.tracking.opens},
                "subscription_tracking": {"enable": False},  # our own footer and one-click link
            },
        }
        if news.reply_to is not None:
            payload["reply_to"] = {"email": news.reply_to.email, "name": news.reply_to.name}
        if self.settings.categories:
            payload["categories"] = list(self.settings.categories)
        if self.settings.asm_group_id is not None:
            payload["asm"] = {"group_id": self.settings.asm_group_id}
        return payload

    def open_channel(self) -> SendGridChannel:
        return SendGridChannel(self)

    def describe(self) -> str:
        return f"sendgrid {self.settings.host}, {self.batch_size} recipients a request"
