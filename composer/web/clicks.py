"""GET /c/<token>: a tracked link. 302 to the URL the token carries sealed, and one click counted.

A tampered or unknown token is a 404 (never an open redirect). A click that comes from a known
link scanner (mail gateways that open every link on arrival) is counted apart: by its
User-Agent, by a HEAD request, or by arriving in the first seconds after the send without a
browser's User-Agent.
"""

from __future__ import annotations

import re
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from composer.events.clicks import read_click
from composer.events.deliveries import connect_readonly, log_path
from composer.events.ids import ID_CHARS
from composer.events.store import EventStore
from composer.project import STATE_DIR, Project

SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|urldefense|safelinks|microsoft office|ms-office|"
    r"symantec|forcepoint|trendmicro|sophos|fortinet|cisco|ironport|zscaler|"
    r"headlesschrome|python-requests|python-urllib|curl/|wget/|go-http-client|java/|okhttp|"
    r"bot\b|crawler|spider|preview",
    re.IGNORECASE,
)
SCANNER_WINDOW_SECONDS = 60  # arrivals this soon after the send are suspect
# A delivery id as events/ids.py makes it; anything else in `?r=` is counted as no one's.
_DELIVERY_ID = re.compile(rf"[A-Za-z0-9_-]{{{ID_CHARS}}}")
_SENT_CACHE_SECONDS = 30.0


class ClickEndpoint:
    """Counts and redirects clicks for one project."""

    def __init__(self, project: Project, secret: bytes) -> None:
        self._project = project
        self._secret = secret
        self._enabled = project.newsletter.tracking.clicks
        self._per_recipient = project.newsletter.tracking.per_recipient
        self._store: EventStore | None = None
        self._sent_at: dict[str, tuple[float, float | None]] = {}

    async def follow(self, request: Request) -> Response:
        """GET: 302 to the link's original URL; 404 for anything not a token of ours."""
        found = read_click(self._secret, request.path_params["token"]) if self._enabled else None
        if found is None:
            request.state.log_note = "click: not a link of ours"
            return PlainTextResponse("not found\n", status_code=404)
        issue, url = found
        scanner = await run_in_threadpool(self._is_scanner, request, issue)
        reader = request.query_params.get("r", "")
        known = self._per_recipient and _DELIVERY_ID.fullmatch(reader) is not None
        await run_in_threadpool(self._count, issue, url, scanner, reader if known else None)
        request.state.log_note = "click by a scanner" if scanner else "click"
        return RedirectResponse(
            url,
            status_code=302,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    def _count(self, issue: str, url: str, scanner: bool, reader: str | None) -> None:
        if self._store is None:
            self._store = EventStore.for_state_dir(self._project.state_dir())
        self._store.count_click(issue, url, scanner=scanner, reader=reader)

    def _is_scanner(self, request: Request, issue: str) -> bool:
        agent = request.headers.get("user-agent", "")
        if request.method == "HEAD" or SCANNER_AGENTS.search(agent):
            return True
        sent = self._last_sent(issue)
        early = sent is not None and time.time() - sent < SCANNER_WINDOW_SECONDS
        return early and not agent.startswith("Mozilla/")

    def _last_sent(self, issue: str) -> float | None:
        """When the send of `issue` last delivered a message (from the delivery log)."""
        checked, value = self._sent_at.get(issue, (0.0, None))
        if time.monotonic() - checked < _SENT_CACHE_SECONDS:
            return value
        db = connect_readonly(log_path(self._project.root / STATE_DIR))
        if db is not None:
            try:
                row = db.execute("SELECT max(updated_at) FROM sends WHERE issue=?", (issue,))
                value = row.fetchone()[0]
            finally:
                db.close()
        self._sent_at[issue] = (time.monotonic(), value)
        return value
