"""A local HTTP server that speaks SendGrid's v3 API, strictly, for tests and benchmarks.

Usage::

    from doubles.sendgrid_api import SendGridDouble

    with SendGridDouble(api_key="SG.test") as sendgrid:      # serves on http://127.0.0.1:<free port>
        env = {"SENDGRID_API_KEY": "SG.test", "COMPOSE_SENDGRID_HOST": sendgrid.url}
        ...                                                  # run `compose send --transport sendgrid`
        sendgrid.recipients()        # addresses of every accepted personalization, in order
        sendgrid.rendered(address)   # (text, html) that address got, substitutions applied
        sendgrid.requests            # every request: RecordedRequest(method, path, query, headers, body)

Constructor: ``SendGridDouble(api_key="SG.test-key", *, unsubscribes=(), bounces=(),
spam_reports=(), group_suppressions=None, invalid_addresses=(), page_max=500,
keep_payloads=True)`` (benchmarks pass ``keep_payloads=False`` and read ``delivered``).
The suppression arguments are what the suppression endpoints serve: each an iterable of
addresses or of dicts ``{"email", "created" (unix), "reason"?, "status"?, "ip"?}``;
``group_suppressions`` maps an ASM group id to its addresses. ``invalid_addresses`` are refused
by mail/send as SendGrid refuses malformed ones.

Failure injection: ``fail_next(status, count=1, reset_after=1.0)`` answers the next ``count``
mail/send requests with 429 (with ``X-RateLimit-Reset`` ``reset_after`` seconds ahead), 500, 401,
or 400; ``delay = seconds`` slows every mail/send answer (for timeout tests);
``fail_when = callable(payload) -> int | None`` decides per request.

Ambiguous outcomes and size limits: ``slow_202 = seconds`` accepts each request (it is delivered)
and only then waits that long before answering 202, as SendGrid under load does; a client that
gives up first cannot know; ``reset_after_accept = count`` accepts the next ``count`` requests
and drops the connection without answering; ``too_large_over = n`` answers 413 (Payload Too
Large) to requests with more than ``n`` personalizations, before looking at them.

Checks, as SendGrid documents them for ``POST /v3/mail/send``: Bearer key (401 otherwise); at most
1000 personalizations and 1000 recipients (to+cc+bcc); each address once per request; valid
addresses; ``from``; a subject; content with text/plain before text/html; no reserved headers;
string header, substitution and custom_args values; at most 10 categories; an integer
``asm.group_id``. Accepted: ``202`` with ``X-Message-Id``. Refused: ``400`` with
``{"errors": [{"message", "field", "help"}]}``.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id", "x-sg-eid", "received", "dkim-signature", "Content-Type",
        "Content-Transfer-Encoding", "To", "From", "Subject", "Reply-To", "CC", "BCC",
    )
)  # fmt: skip
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
SEND_AT_HORIZON = 72 * 3600  # seconds a send_at may lie ahead
HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
_ADDRESS = re.compile(r"^[^@\s\"<>(),;:\\\[\]]+@[^@\s\"<>(),;:\\\[\]]+\.[^@\s\"<>(),;:\\\[\]]+$")
_GROUP_PATH = re.compile(r"^/v3/asm/groups/(\d+)/suppressions$")
_SUPPRESSION_PATHS = {
    "/v3/suppression/unsubscribes": "unsubscribes",
    "/v3/suppression/bounces": "bounces",
    "/v3/suppression/spam_reports": "spam_reports",
}


@dataclass
class RecordedRequest:
    """One request as the double received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: object
    status: int = 0


@dataclass
class Accepted:
    """One accepted mail/send request."""

    message_id: str
    payload: dict


def _error(message: str, field_name: str | None = None, help_anchor: str = "") -> dict:
    return {
        "message": message,
        "field": field_name,
        "help": HELP + help_anchor if help_anchor else None,
    }


def _suppression_rows(items: Iterable[object]) -> list[dict]:
    rows = []
    for n, item in enumerate(items):
        row = {"email": item, "created": 1_700_000_000 + n} if isinstance(item, str) else dict(item)
        rows.append(row)
    return rows


def validate_mail_send(payload: object, invalid: frozenset[str] = frozenset()) -> list[dict]:
    """Every problem SendGrid would report for this mail/send body (empty when it is fine)."""
    if not isinstance(payload, dict):
        return [_error("Bad Request", None)]
    errors: list[dict] = []
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error("You must have at least one personalization.", "personalizations"))
        personalizations = []
    if len(personalizations) > MAX_PERSONALIZATIONS:
        errors.append(_error(
            f"The personalization block is limited to 1000 personalizations per API request. "
            f"You have provided {len(personalizations)} personalizations.", "personalizations",
            "#message.personalizations"))  # fmt: skip
    seen: set[str] = set()
    recipients = 0
    for i, p in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(p, dict) or not p.get("to"):
            errors.append(_error("The to array is required for all personalization objects, "
                                 "and must have at least one email object with a valid email "
                                 "address.", f"{where}.to"))  # fmt: skip
            continue
        for kind in ("to", "cc", "bcc"):
            for j, person in enumerate(p.get(kind) or []):
                recipients += 1
                email = person.get("email", "") if isinstance(person, dict) else ""
                if not _ADDRESS.match(email) or email.lower() in invalid:
                    errors.append(_error("Does not contain a valid address.",
                                         f"{where}.{kind}.{j}.email"))  # fmt: skip
                elif email.lower() in seen:
                    errors.append(_error("Each email address in the personalization block "
                                         "should be unique between to, cc, and bcc. We found "
                                         f"the first duplicate instance of [{email}] in the "
                                         f"personalizations.{i}.{kind} field.",
                                         f"{where}.{kind}"))  # fmt: skip
                seen.add(email.lower())
        errors.extend(_header_errors(p.get("headers"), f"{where}.headers"))
        subs = p.get("substitutions") or {}
        if any(not isinstance(v, str) for v in subs.values()):
            errors.append(_error("Substitutions must be strings.", f"{where}.substitutions"))
        if len(json.dumps(subs)) > 10000:
            errors.append(_error("Substitutions exceed 10000 bytes.", f"{where}.substitutions"))
        for owner, label in ((p, where), (payload, "")):
            errors.extend(_send_at_errors(owner.get("send_at"), f"{label}.send_at".lstrip(".")))
        if not payload.get("subject") and not p.get("subject"):
            errors.append(_error("The subject is required. You can get around this requirement "
                                 "if you use a template with a subject defined or if every "
                                 "personalization has a subject defined.", "subject"))  # fmt: skip
    if recipients > MAX_RECIPIENTS:
        errors.append(_error("There is a limit of 1000 total recipients (to + cc + bcc) per request.",
                             "personalizations"))  # fmt: skip
    sender = payload.get("from")
    if not isinstance(sender, dict) or not _ADDRESS.match(sender.get("email", "")):
        errors.append(_error("The from object must be provided for every email send. It is an "
                             "object that requires the email parameter, but may also contain "
                             "a name parameter.", "from.email"))  # fmt: skip
    errors.extend(_content_errors(payload.get("content")))
    errors.extend(_header_errors(payload.get("headers"), "headers"))
    categories = payload.get("categories") or []
    if len(categories) > 10 or any(not isinstance(c, str) or len(c) > 255 for c in categories):
        errors.append(_error("Too many categories or a category is not a string of at most "
                             "255 characters.", "categories"))  # fmt: skip
    args = payload.get("custom_args") or {}
    if any(not isinstance(v, str) for v in args.values()):
        errors.append(_error("Custom args must be strings.", "custom_args"))
    asm = payload.get("asm")
    if asm is not None and not isinstance((asm or {}).get("group_id"), int):
        errors.append(_error("The asm group_id must be an integer.", "asm.group_id"))
    return errors


def _content_errors(content: object) -> list[dict]:
    if not isinstance(content, list) or not content:
        return [_error("Unless a valid template_id is provided, the content parameter is required. "
                       "There must be at least one defined content block.", "content")]  # fmt: skip
    errors = []
    types = [c.get("type") if isinstance(c, dict) else None for c in content]
    for i, c in enumerate(content):
        if not isinstance(c, dict) or not c.get("type") or not isinstance(c.get("value"), str) \
                or not c["value"]:  # fmt: skip
            errors.append(_error("The content value must be a string at least one character "
                                 "in length.", f"content.{i}.value"))  # fmt: skip
    if (
        "text/plain" in types
        and types.index("text/plain") != 0
        or (
            "text/html" in types
            and "text/plain" in types
            and types.index("text/html") < types.index("text/plain")
        )
    ):
        errors.append(_error("If present, text/plain and text/html may only be provided in the "
                             "following order: text/plain, text/html.", "content.0.type"))  # fmt: skip
    return errors


def _send_at_errors(send_at: object, where: str) -> list[dict]:
    """SendGrid: a Unix timestamp, at most 72 hours ahead."""
    if send_at is None:
        return []
    if not isinstance(send_at, int) or isinstance(send_at, bool):
        return [_error("The send_at parameter must be a Unix timestamp (an integer).", where)]
    if send_at > time.time() + SEND_AT_HORIZON:
        return [_error("The send_at parameter cannot be scheduled more than 72 hours in advance.",
                       where)]  # fmt: skip
    return []


def _header_errors(headers: object, where: str) -> list[dict]:
    if headers is None:
        return []
    if not isinstance(headers, dict):
        return [_error("Headers must be an object.", where)]
    errors = []
    for name, value in headers.items():
        if name.lower() in RESERVED_HEADERS:
            errors.append(_error(f"The header {name} is reserved and cannot be set.", where))
        elif not isinstance(value, str) or "\r" in value or "\n" in value:
            errors.append(_error("Header values must be strings without line breaks.", where))
    return errors


@dataclass
class _Injected:
    status: int
    reset_after: float = 1.0


class SendGridDouble:
    """SendGrid's v3 mail/send and suppression endpoints, on 127.0.0.1, in a thread."""

    def __init__(
        self,
        api_key: str = "SG.test-key",
        *,
        unsubscribes: Iterable[object] = (),
        bounces: Iterable[object] = (),
        spam_reports: Iterable[object] = (),
        group_suppressions: dict[int, Iterable[str]] | None = None,
        invalid_addresses: Iterable[str] = (),
        page_max: int = 500,
        keep_payloads: bool = True,
    ) -> None:
        self.api_key = api_key
        self.suppressions = {
            "unsubscribes": _suppression_rows(unsubscribes),
            "bounces": _suppression_rows(bounces),
            "spam_reports": _suppression_rows(spam_reports),
        }
        self.groups = {k: list(v) for k, v in (group_suppressions or {}).items()}
        self.invalid = frozenset(a.lower() for a in invalid_addresses)
        self.page_max = page_max
        self.keep_payloads = keep_payloads
        self.delivered = 0  # personalizations accepted, kept even when payloads are not
        self.requests: list[RecordedRequest] = []
        self.accepted: list[Accepted] = []
        self.delay = 0.0
        self.fail_when: Callable[[dict], int | None] | None = None
        self.slow_202 = 0.0
        self.reset_after_accept = 0
        self.too_large_over: int | None = None
        self._injected: list[_Injected] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give the client as its host."""
        assert self._server is not None, "start() the double first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SendGridDouble:
        """Serve on a free port of 127.0.0.1."""
        double = self

        class Handler(_Handler):
            owner = double

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, status: int, count: int = 1, reset_after: float = 1.0) -> None:
        """Answer the next `count` mail/send requests with `status` (429, 500, 401, 400...)."""
        with self._lock:
            self._injected.extend(_Injected(status, reset_after) for _ in range(count))

    def recipients(self) -> list[str]:
        """Every address of every accepted personalization, in the order received."""
        with self._lock:
            return [
                to["email"]
                for a in self.accepted
                for p in a.payload["personalizations"]
                for to in p["to"]
            ]

    def personalization(self, email: str) -> tuple[dict, dict]:
        """(request payload, personalization) of the last accepted message to `email`."""
        with self._lock:
            for a in reversed(self.accepted):
                for p in a.payload["personalizations"]:
                    if any(to["email"].lower() == email.lower() for to in p["to"]):
                        return a.payload, p
        raise KeyError(email)

    def rendered(self, email: str) -> tuple[str, str]:
        """The (text, html) bodies `email` got, with their substitutions applied."""
        payload, p = self.personalization(email)
        bodies = []
        for kind in ("text/plain", "text/html"):
            value = next(c["value"] for c in payload["content"] if c["type"] == kind)
            for tag, sub in (p.get("substitutions") or {}).items():
                value = value.replace(tag, sub)
            bodies.append(value)
        return bodies[0], bodies[1]

    def mail_send(self, payload: object) -> tuple[int, dict[str, str], object]:
        """Status, headers and body for one mail/send request."""
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            injected = self._injected.pop(0) if self._injected else None
        status = injected.status if injected else None
        if status is None and self.fail_when is not None and isinstance(payload, dict):
            status = self.fail_when(payload)
        if status == 429:
            reset = int(time.time() + (injected.reset_after if injected else 1.0)) + 1
            headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": str(reset)}  # fmt: skip
            return 429, headers, {"errors": [_error("too many requests")]}
        if status == 401:
            return 401, {}, {"errors": [_error("The provided authorization grant is invalid, "
                                               "expired, or revoked")]}  # fmt: skip
        if status is not None and status >= 500:
            return status, {}, {"errors": [_error("internal error")]}
        if status == 400:
            return 400, {}, {"errors": [_error("Bad Request")]}
        count = len(payload.get("personalizations") or []) if isinstance(payload, dict) else 0
        if self.too_large_over is not None and count > self.too_large_over:
            return 413, {}, {"errors": [_error("The JSON payload you have included in your "
                                               "request is too large.")]}  # fmt: skip
        errors = validate_mail_send(payload, self.invalid)
        if errors:
            return 400, {}, {"errors": errors}
        message_id = secrets.token_urlsafe(16)[:22]
        with self._lock:
            self.delivered += len(payload["personalizations"])  # type: ignore[index]
            if self.keep_payloads:
                self.accepted.append(Accepted(message_id, payload))  # type: ignore[arg-type]
        return 202, {"X-Message-Id": message_id}, None

    def suppression_page(self, kind: str, query: dict[str, list[str]]) -> tuple[int, object]:
        """One page of a global suppression list, by `limit` and `offset`."""
        try:
            limit = int(query.get("limit", [str(self.page_max)])[0])
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            return 400, {"errors": [_error("limit and offset must be integers", "limit")]}
        limit = max(1, min(limit, self.page_max))
        return 200, self.suppressions[kind][offset : offset + limit]


class _Handler(BaseHTTPRequestHandler):
    owner: SendGridDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(
        self, status: int, body: object = None, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: object) -> RecordedRequest:
        parts = urlsplit(self.path)
        kept = body if self.owner.keep_payloads else None
        request = RecordedRequest(
            self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), kept
        )
        with self.owner._lock:
            self.owner.requests.append(request)
        return request

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.owner.api_key}"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body: object = json.loads(raw or b"null")
        except ValueError:
            body = None
        request = self._record(body)
        if request.path != "/v3/mail/send":
            request.status = 404
            return self._answer(404, {"errors": [_error("not found")]})
        if not self._authorized():
            request.status = 401
            return self._answer(401, {"errors": [_error("The provided authorization grant is "
                                                        "invalid, expired, or revoked")]})  # fmt: skip
        status, headers, answer = self.owner.mail_send(body)
        request.status = status
        if status == 202:
            with self.owner._lock:
                reset = self.owner.reset_after_accept > 0
                self.owner.reset_after_accept -= int(reset)
            if reset:  # accepted, then the line breaks before the answer
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return None
            if self.owner.slow_202:
                time.sleep(self.owner.slow_202)
        try:
            self._answer(status, answer, headers)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def do_GET(self) -> None:
        request = self._record(None)
        if not self._authorized():
            request.status = 401
            return self._answer(401, {"errors": [_error("authorization required")]})
        kind = _SUPPRESSION_PATHS.get(request.path)
        if kind is not None:
            status, body = self.owner.suppression_page(kind, request.query)
        elif (match := _GROUP_PATH.match(request.path)) and int(match[1]) in self.owner.groups:
            status, body = 200, list(self.owner.groups[int(match[1])])
        else:
            status, body = 404, {"errors": [_error("resource not found")]}
        request.status = status
        self._answer(status, body)
