"""Public URLs over https, a postal address, and a working List-Unsubscribe."""

from __future__ import annotations

from urllib.parse import urlsplit

from composer.doctor.findings import Finding, ok, problem
from composer.issue.model import Newsletter


def _https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme.lower() == "https" and bool(parts.hostname)


def check_urls(newsletter: Newsletter) -> list[Finding]:
    """Findings for the public URLs, the postal address and List-Unsubscribe."""
    found: list[Finding] = []
    # public_url arrived in a later round: older models do not have it.
    public_url: str | None = getattr(newsletter, "public_url", None)
    urls = [("archive_url", newsletter.archive_url)]
    if public_url:
        urls.append(("public_url", public_url))
    for key, url in urls:
        if _https(url):
            found.append(ok(f"{key} {url} is https"))
        else:
            found.append(
                problem(f"{key} {url} is not https; serve it over https and set {key}: https://...")
            )
    found.append(ok(f"postal address is set: {newsletter.postal_address}"))
    base = newsletter.unsubscribe_base
    key = "unsubscribe_url" if newsletter.unsubscribe_url else "unsubscribe_url (from archive_url)"
    if not _https(base):
        found.append(
            problem(
                f"{key} {base} is not https: one-click List-Unsubscribe (RFC 8058), which Gmail "
                "and Yahoo require for bulk mail, needs an https URL"
            )
        )
        return found
    mailto = newsletter.unsubscribe_mailto
    also = f" and mailto:{mailto.removeprefix('mailto:')}" if mailto else ""
    found.append(ok(f"List-Unsubscribe: one-click {base}<token>{also}, with List-Unsubscribe-Post"))
    return found
