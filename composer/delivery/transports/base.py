"""The transport base: one fixed flow (payload -> post -> parse -> outcomes), hooks per transport.

Modelled on django-anymail's backends: the base owns retries, backoff, and the rule that an
option a transport cannot honour is an error; subclasses only say how to talk to their peer.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from composer.delivery.log import FAILED, PENDING, REFUSED, SENT, UNKNOWN, Outcome
from composer.delivery.message import Fill, MessageTemplate
from composer.delivery.settings import Settings
from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.delivery.dkim import DkimSigner
    from composer.delivery.pool import Feed, Pool

MAX_BACKOFF = 300.0

PayloadT = TypeVar("PayloadT")  # what one transport hands its peer for a batch
ResponseT = TypeVar("ResponseT")  # what the peer answers


@dataclass(frozen=True)
class Envelope:
    """One recipient of one message: who it goes to and their personal values."""

    key: str  # the address as the delivery log knows it
    email: str  # the address as written in the list
    name: str
    unsubscribe_url: str
    token: str
    list_name: str = ""  # the list that reaches them: their List-Id ("" for the template's)
    send_at: int | None = None  # --at, for a transport that holds scheduled mail (Unix time)
    fill: Fill | None = None  # their variant and merge values (issue 12); None: the only one


def message_for(
    template: MessageTemplate,
    envelope: Envelope,
    *,
    smtp_data: bool = False,
    dkim: DkimSigner | None = None,
) -> bytes:
    """The message of one envelope: its reader, their links, list, variant and merge values."""
    return template.personalize(
        envelope.email,
        envelope.name,
        envelope.unsubscribe_url,
        token=envelope.token,
        smtp_data=smtp_data,
        list_name=envelope.list_name,
        dkim=dkim,
        fill=envelope.fill,
    )


def backoff(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: exponential backoff with full jitter, or the peer's own
    reset time when it gave one."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_BACKOFF)
    ceiling = min(settings.backoff * (2 ** (attempt - 1)), MAX_BACKOFF)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class TemporaryFailure(Exception):
    """The peer said "not now" (4xx, 429, 5xx from an API, a dropped connection): retry later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """The peer refused these messages for good (5xx for a recipient, a 400 from an API).

    `bounce` says the peer refused the address itself (SMTP 5xx at RCPT, SendGrid naming the
    address): the recipient is then suppressed as a hard bounce. `final` False means the refusal
    is of the request, not of the recipients (SendGrid 400 for the whole body): marked failed,
    and a re-run tries again.
    """

    def __init__(
        self,
        reason: str,
        rejected: dict[int, str] | None = None,
        *,
        bounce: bool = False,
        final: bool = True,
    ) -> None:
        super().__init__(reason)
        # Positions in the batch the peer named; None means the whole batch.
        self.rejected = rejected
        self.bounce = bounce
        self.final = final


class UnknownOutcome(Exception):
    """The peer may or may not have taken the messages (no reply after the whole request went).

    Never retried automatically: a retry could send a second copy. `send --retry-unknown` does.
    """


class BatchTooLarge(Exception):
    """The peer refused the request for its size (HTTP 413): split the batch and try again."""


class FatalTransportError(Exception):
    """Nothing more can go through this transport (bad credentials, no server): stop the send."""


def final_outcome(
    key: str,
    exc: PermanentFailure | UnknownOutcome | TemporaryFailure,
    attempt: int,
    reason: str | None = None,
) -> Outcome:
    """What a failure that ends a recipient's tries records: a refusal (a failed request when
    the refusal is not final), an outcome nobody can know (never resent unasked), or a temporary
    failure given up on after the last retry (a re-run tries again)."""
    if isinstance(exc, PermanentFailure):
        state = REFUSED if exc.final else FAILED
        return Outcome(key, state, reason or str(exc), tries=attempt, bounce=exc.bounce)
    if isinstance(exc, UnknownOutcome):
        reason = f"{exc} (not resent: it may have been delivered)"
        return Outcome(key, UNKNOWN, reason, tries=attempt)
    reason = f"{exc} (gave up after {attempt} attempts; a re-run retries)"
    return Outcome(key, FAILED, reason, tries=attempt)


class Channel(ABC, Generic[PayloadT, ResponseT]):
    """One worker's line to the peer (an SMTP connection, an HTTP client), reused across batches."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.settings = transport.settings
        self.template = transport.template

    def deliver(self, batch: Sequence[Envelope], stop: threading.Event) -> list[Outcome]:
        """Deliver one batch: the fixed flow, with retries; returns one outcome per envelope."""
        outcomes: dict[str, Outcome] = {}
        parts = [list(batch)]  # halved when the peer says a request is too large
        split = False
        while parts:
            part = parts.pop()
            if split and stop.is_set():
                # Stopping between the halves of a split batch: the rest wait for the next run.
                for envelope in part:
                    outcomes[envelope.key] = Outcome(envelope.key, PENDING, "not sent: stopped")
                continue
            try:
                self._deliver_part(part, stop, outcomes)
            except BatchTooLarge as exc:
                left = [e for e in part if e.key not in outcomes]
                if len(left) > 1:
                    half = len(left) // 2
                    parts += [left[half:], left[:half]]
                    split = True
                else:
                    for envelope in left:  # one message alone is too large: not the reader's fault
                        outcomes[envelope.key] = Outcome(envelope.key, FAILED, str(exc))
        return [outcomes[envelope.key] for envelope in batch]

    def _deliver_part(
        self, part: list[Envelope], stop: threading.Event, outcomes: dict[str, Outcome]
    ) -> None:
        remaining = part
        attempt = 0
        while remaining:
            attempt += 1
            try:
                payload = self.build_payload(remaining)
                response = self.post(payload)
                for envelope, provider_id in zip(
                    remaining, self.parse_response(response, remaining), strict=True
                ):
                    outcomes[envelope.key] = Outcome(
                        envelope.key, SENT, provider_id=provider_id, tries=attempt
                    )
                remaining = []
            except PermanentFailure as exc:
                if exc.rejected is None:
                    for envelope in remaining:
                        outcomes[envelope.key] = final_outcome(envelope.key, exc, attempt)
                    remaining = []
                else:
                    # Drop the recipients the peer named and try the rest again at once.
                    for index, reason in exc.rejected.items():
                        key = remaining[index].key
                        outcomes[key] = final_outcome(key, exc, attempt, reason)
                    remaining = [e for i, e in enumerate(remaining) if i not in exc.rejected]
                    attempt -= 1
            except UnknownOutcome as exc:
                for envelope in remaining:
                    outcomes[envelope.key] = final_outcome(envelope.key, exc, attempt)
                remaining = []
            except TemporaryFailure as exc:
                if attempt >= self.settings.retries:
                    for envelope in remaining:
                        outcomes[envelope.key] = final_outcome(envelope.key, exc, attempt)
                    remaining = []
                elif stop.is_set() or stop.wait(backoff(self.settings, attempt, exc.retry_after)):
                    # Stopping (Ctrl-C): leave these pending for the next run rather than wait.
                    for envelope in remaining:
                        outcomes[envelope.key] = Outcome(
                            envelope.key, PENDING, str(exc), tries=attempt
                        )
                    remaining = []

    @abstractmethod
    def build_payload(self, batch: Sequence[Envelope]) -> PayloadT:
        """What the peer is sent for these recipients."""

    @abstractmethod
    def post(self, payload: PayloadT) -> ResponseT:
        """Hand the payload to the peer; raise TemporaryFailure, PermanentFailure, UnknownOutcome."""

    @abstractmethod
    def parse_response(self, response: ResponseT, batch: Sequence[Envelope]) -> list[str | None]:
        """The provider's id for each accepted message (raise if the response is a refusal)."""

    def close(self) -> None:
        """Release the connection, politely when possible."""


class Transport(ABC):
    """A way of delivering messages; the runner opens one channel per worker."""

    name: ClassVar[str]
    supported_options: ClassVar[frozenset[str]] = frozenset()
    # True: `send --at` hands each message over now with its send_at, and the service holds it;
    # False: the send waits until the time, then delivers.
    schedules_itself: ClassVar[bool] = False

    def __init__(self, settings: Settings, template: MessageTemplate, issue: str) -> None:
        self.settings = settings
        self.template = template
        self.issue = issue
        unsupported = sorted(set(settings.delivery_options()) - self.supported_options)
        if unsupported:
            raise UsageError(
                f"the {self.name} transport cannot honour transport.{', transport.'.join(unsupported)} "
                "in newsletter.yaml; remove it or use a transport that supports it "
                "(asm_group_id and categories are SendGrid features)"
            )

    @property
    def concurrency(self) -> int:
        """How many channels work at once."""
        return self.settings.concurrency

    @property
    def batch_size(self) -> int:
        """Recipients per payload."""
        return 1

    def open_channel(self) -> Channel[Any, Any]:
        """A new channel for one worker (a transport without a pool)."""
        raise NotImplementedError(f"the {self.name} transport sends through open_pool()")

    def open_pool(self, feed: Feed) -> Pool | None:
        """All of a send's connections driven by one thread (composer/delivery/pool.py), or
        None: one channel a worker thread."""
        return None

    def describe(self) -> str:
        """Where messages go, for the confirmation prompt (never a secret)."""
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
