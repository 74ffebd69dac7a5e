"""Pull SendGrid's suppressions (unsubscribes, group unsubscribes, bounces, spam reports) locally."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from composer.audience.suppressions import add_suppressions, utc_today
from composer.errors import ComposeError
from composer.project import Project

API_KEY_ENV = "SENDGRID_API_KEY"
PAGE_SIZE = 500  # the largest page SendGrid's suppression endpoints hand out
_REASON_MAX = 200


class SyncFailed(ComposeError):
    """SendGrid could not be reached or refused a request; nothing was written."""


@dataclass(frozen=True)
class SourceCount:
    """How many addresses one SendGrid list held."""

    source: str
    fetched: int


@dataclass
class SyncReport:
    """What a sync fetched from each source and how many addresses were new locally."""

    host: str
    sources: list[SourceCount] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    added: int = 0


# One entry to record: (email, reason, ISO date), as composer.audience.suppressions takes them.
Entry = tuple[str, str, str]


def sync_suppressions(project: Project, environ: Mapping[str, str] | None = None) -> SyncReport:
    """Fetch every SendGrid suppression list, then record all new addresses in one write."""
    import sendgrid

    from composer.delivery.settings import keep_out_of_logs, resolve_settings

    settings = resolve_settings(
        project.root, project.newsletter.transport, kind="sendgrid", env=environ
    )
    assert settings.host is not None and settings.api_key is not None
    host = settings.host.rstrip("/")
    report = SyncReport(host)
    keep_out_of_logs(settings.api_key)
    client = sendgrid.SendGridAPIClient(settings.api_key.get_secret_value(), host=host).client
    fetch = _Fetcher(host, settings.timeout)
    sources: list[tuple[str, Callable[[], Iterator[Entry]]]] = [
        ("global unsubscribes", lambda: _unsubscribes(fetch, client.suppression.unsubscribes)),
        ("bounces", lambda: _bounces(fetch, client.suppression.bounces)),
        ("spam reports", lambda: _spam_reports(fetch, client.suppression.spam_reports)),
    ]
    group = settings.asm_group_id
    if group is None:
        report.skipped.append("group unsubscribes (no transport.asm_group_id in newsletter.yaml)")
    else:
        endpoint = client.asm.groups._(str(group)).suppressions
        sources.insert(1, (f"group {group} unsubscribes", lambda: _group(fetch, endpoint, group)))

    entries: dict[str, Entry] = {}
    for name, pull in sources:
        fetched = 0
        for entry in pull():
            fetched += 1
            entries.setdefault(entry[0].lower(), entry)
        report.sources.append(SourceCount(name, fetched))
    report.added = add_suppressions(project, list(entries.values())) if entries else 0
    return report


class _Fetcher:
    """Pages through one SendGrid list endpoint, turning client failures into SyncFailed."""

    def __init__(self, host: str, timeout: float) -> None:
        self.host = host
        self.timeout = timeout

    def pages(self, endpoint: Any, label: str) -> Iterator[list[Any]]:
        """Each page of `endpoint` (limit/offset) until an empty or repeated page."""
        from python_http_client.exceptions import HTTPError

        offset = 0
        seen: set[str] = set()
        while True:
            params = {"limit": PAGE_SIZE, "offset": offset}
            try:
                response = endpoint.get(query_params=params, timeout=self.timeout)
            except HTTPError as exc:
                raise SyncFailed(_http_message(exc, label)) from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise SyncFailed(
                    f"cannot reach SendGrid at {self.host} ({label}): {reason}"
                ) from None
            try:
                page = json.loads(response.body or b"[]")
            except ValueError:
                raise SyncFailed(f"SendGrid sent a reply that is not JSON for {label}") from None
            if not isinstance(page, list):
                raise SyncFailed(f"SendGrid sent an unexpected reply for {label} (not a list)")
            # Stop at an empty page, not a short one: a server may clamp `limit` below ours.
            # An endpoint that ignores offset (group suppressions) repeats itself: stop then too.
            keys = {json.dumps(item, sort_keys=True) for item in page}
            if not keys - seen:
                return
            seen |= keys
            yield page
            offset += len(page)


def _http_message(exc: Any, label: str) -> str:
    status = getattr(exc, "status_code", "?")
    detail = ""
    try:
        errors = json.loads(exc.body or b"{}").get("errors") or []
        detail = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        pass
    hint = ""
    if status in (401, 403):
        hint = f" (check that {API_KEY_ENV} is valid and may read suppressions)"
    text = f"SendGrid refused {label}: HTTP {status}{hint}"
    return f"{text}: {detail}" if detail else text


def _unsubscribes(fetch: _Fetcher, endpoint: Any) -> Iterator[Entry]:
    for page in fetch.pages(endpoint, "global unsubscribes"):
        for item in page:
            if email := _email(item):
                yield email, "unsubscribed (SendGrid global)", _date(item)


def _group(fetch: _Fetcher, endpoint: Any, group: int) -> Iterator[Entry]:
    today = _date({})
    for page in fetch.pages(endpoint, f"suppression group {group}"):
        for item in page:
            if email := _email(item):
                yield email, f"unsubscribed (SendGrid group {group})", _date(item, today)


def _bounces(fetch: _Fetcher, endpoint: Any) -> Iterator[Entry]:
    for page in fetch.pages(endpoint, "bounces"):
        for item in page:
            if email := _email(item):
                status = str(item.get("status") or "").strip()
                detail = str(item.get("reason") or "").strip()
                source = f"SendGrid {status}" if status else "SendGrid"
                reason = f"bounced ({source}: {detail})" if detail else f"bounced ({source})"
                yield email, _one_line(reason), _date(item)


def _spam_reports(fetch: _Fetcher, endpoint: Any) -> Iterator[Entry]:
    for page in fetch.pages(endpoint, "spam reports"):
        for item in page:
            if email := _email(item):
                yield email, "complained (SendGrid spam report)", _date(item)


def _email(item: object) -> str | None:
    """The address of one list item: a bare string (groups) or an object with `email`."""
    value = item.get("email") if isinstance(item, dict) else item
    if not isinstance(value, str) or "@" not in value:
        return None
    return value.strip() or None


def _date(item: object, default: str | None = None) -> str:
    created = item.get("created") if isinstance(item, dict) else None
    if isinstance(created, int | float) and created > 0:
        return dt.datetime.fromtimestamp(created, tz=dt.UTC).date().isoformat()
    return default or utc_today()


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 1] + "…"
