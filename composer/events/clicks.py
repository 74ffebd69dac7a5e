"""Click tracking, privacy first: links of an issue's HTML part rewritten once per issue.

With `tracking.clicks` each http(s) link of the HTML part points to `<public_url>c/<token>`,
the token carrying the issue and the original URL sealed with the project's secret (AES-SIV,
web/signed.py), so `/c/<token>` can only ever redirect where we linked: a changed character is
a 404, and nothing but http(s) is ever a target. The same token for every reader: only
aggregate counts per link can be kept, unless `tracking.per_recipient`: then each link also
carries the reader's delivery id (`?r=`, a keyed hash that names no address; events/ids.py),
filled in per message, so the report can count readers per link. The plain-text part is left
alone (readable URLs).
`tracking.utm` parameters are added to links into the organisation's own `website`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from composer.issue.model import Newsletter
from composer.render import READER_PLACEHOLDER
from composer.web.signed import BadToken, make_signed, read_signed

PURPOSE = "click"
# A link in a mail stays clickable for as long as anyone keeps the mail.
MAX_AGE_SECONDS = 100 * 365 * 86400
_LINK = re.compile(r"""(<a\b[^>]*?\shref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_PLACEHOLDER_HOST = ".compose.invalid"  # the unsubscribe and preferences slots: personal links


def track_links(html_text: str, slug: str, newsletter: Newsletter, secret: bytes) -> str:
    """The HTML part with UTM parameters added and, when clicks are on, links via /c/<token>."""
    tracking = newsletter.tracking
    if not tracking.clicks and not tracking.utm:
        return html_text
    site = _host(newsletter.website or "")
    utm = {str(key): value for key, value in tracking.utm.items()}
    base = newsletter.public_base + "c/"
    done: dict[str, str] = {}  # the same link twice gets the same token

    def rewrite(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3)).strip()
        if not _trackable(url):
            return match.group(0)
        if url not in done:
            target = add_utm(url, utm, slug) if site and _host(url) == site else url
            if tracking.clicks:
                # Dated 0, never expiring: the same issue built again gives the same links.
                target = base + make_signed(secret, PURPOSE, {"i": slug, "u": target}, now=0)
                if tracking.per_recipient:  # the reader's delivery id, filled in when sending
                    target += "?r=" + READER_PLACEHOLDER
            done[url] = target
        quote = match.group(2)
        return f"{match.group(1)}{quote}{html.escape(done[url], quote=True)}{quote}"

    return _LINK.sub(rewrite, html_text)


def add_utm(url: str, utm: Mapping[str, str], slug: str) -> str:
    """`url` with utm_* parameters (campaign: the issue slug), keeping any it already has."""
    if not utm:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    wanted = {"campaign": slug, **utm}
    query += [(f"utm_{k}", v) for k, v in wanted.items() if f"utm_{k}" not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def read_click(secret: bytes, token: str) -> tuple[str, str] | None:
    """(issue, URL) of an authentic click token whose target is http(s); else None."""
    try:
        data, _ = read_signed(secret, PURPOSE, token, MAX_AGE_SECONDS, now=0)
    except BadToken:
        return None
    if not isinstance(data, dict):
        return None
    issue, url = data.get("i"), data.get("u")
    if not isinstance(issue, str) or not isinstance(url, str) or not _trackable(url):
        return None
    return issue, url


def _trackable(url: str) -> bool:
    """Only absolute http(s) links that are not a reader's personal link are tracked (and so
    `javascript:`, `data:`, `mailto:` are never a redirect target)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return False
    if any(ch in url for ch in "\r\n\t\x00"):
        return False
    return not (parts.hostname or "").endswith(_PLACEHOLDER_HOST)


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")
