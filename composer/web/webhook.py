"""POST /webhooks/sendgrid: SendGrid's signed Event Webhook, applied once per event."""

from __future__ import annotations

import json
import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from composer.events.apply import Applied, apply_events
from composer.events.deliveries import sent_issues
from composer.events.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadBatch,
    SignatureRejected,
    load_verifier,
    parse_batch,
    sort_events,
    verify,
)
from composer.events.store import EventStore
from composer.project import Project

MAX_BODY_BYTES = 1024 * 1024  # the contract: every webhook body over 1 MB is refused (413)
_SENT_CACHE_SECONDS = 5.0  # a send started a moment ago is seen within this
logger = logging.getLogger("composer.web.webhook")


class WebhookEndpoint:
    """Verifies, sorts and applies SendGrid event batches for one project."""

    def __init__(self, project: Project, secret: bytes, public_key: str | None = None) -> None:
        self._project = project
        self._secret = secret
        self._verifier = load_verifier(public_key)
        self._per_recipient = project.newsletter.tracking.per_recipient
        self._store = EventStore.for_state_dir(project.state_dir())
        self._sent: tuple[float, set[str]] = (0.0, set())

    def _sent_issues(self) -> set[str]:
        checked, issues = self._sent
        if time.monotonic() - checked > _SENT_CACHE_SECONDS:
            issues = sent_issues(self._project.state_dir())
            self._sent = (time.monotonic(), issues)
        return issues

    async def receive(self, request: Request) -> Response:
        """POST: 403 unless signed and fresh; 400 for a body that is not a batch; else 200."""
        body = await request.body()
        try:
            verify(
                self._verifier,
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
            )
        except SignatureRejected as exc:
            request.state.log_note = f"webhook refused: {exc}"
            return PlainTextResponse("forbidden\n", status_code=403)
        try:
            items = parse_batch(body)
        except BadBatch as exc:
            request.state.log_note = f"webhook refused: {exc}"
            return PlainTextResponse(f"{exc}\n", status_code=400)
        applied = await run_in_threadpool(self._apply, items)
        request.state.log_note = (
            f"webhook {applied.applied} applied, {applied.duplicates} repeated, "
            f"{applied.suppressed} suppressed, not kept {applied.not_kept or 0}"
        )
        summary = {
            "received": applied.received,
            "applied": applied.applied,
            "duplicates": applied.duplicates,
            "suppressed": applied.suppressed,
            "not_kept": applied.not_kept,
        }
        return Response(json.dumps(summary) + "\n", media_type="application/json")

    def _apply(self, items: list[dict[str, object]]) -> Applied:
        sorted_ = sort_events(items, self._secret, self._sent_issues(), self._per_recipient)
        return apply_events(self._project, self._store, sorted_.events, sorted_.tallies)
