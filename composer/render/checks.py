"""Checks of a built issue, shared by `compose build`, `compose check` and the preview page."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from composer.issue.model import Issue, Newsletter
from composer.render import UNSUBSCRIBE_PLACEHOLDER
from composer.render.a11y import check_accessibility
from composer.render.clients import check_client_support

Level = Literal["ok", "info", "warning"]

KB = 1024
SUBJECT_MAX = 70  # Gmail and most phone inboxes cut the subject line near here
PREHEADER_MIN = 40  # shorter, and the client fills the preview line with the email's first text
PREHEADER_MAX = 110  # longer is cut off by every client
ROOM_MIN = 0.10  # less than this share of the budget left is worth knowing before adding more
CONTRAST_AA = 4.5  # WCAG 2 AA for normal-size text
# The band text colour of the theme (templates/issue.mjml.j2, `.band` in email.css).
BAND_TEXT = "#ffffff"
_EXAMPLES = 3  # how many offending links or images a message names


@dataclass(frozen=True)
class Check:
    code: str
    level: Level
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class RenderedEmail:
    """What the checks look at: an issue rendered as the email that would be sent."""

    issue: Issue
    newsletter: Newsletter
    mode: Literal["full", "digest"]
    email_html: str
    email_txt: str
    full_size: int  # bytes of the full email: inlined, or raw when that alone was over budget; -1: not rendered

    @property
    def email_size(self) -> int:
        return len(self.email_html.encode("utf-8"))

    @property
    def budget(self) -> int:
        return self.newsletter.max_email_kb * KB


class _EmailScan(HTMLParser):
    """One pass over the email's HTML: link targets, images and the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.text: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append((values["href"] or "").strip())
        elif tag == "img":
            self.images.append(values)
        elif tag in ("style", "script", "title"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


def _scan(html: str) -> _EmailScan:
    scan = _EmailScan()
    scan.feed(html)
    scan.close()
    return scan


def _squash(text: str) -> str:
    """Whitespace runs as single spaces, so wrapped or indented text compares equal."""
    return " ".join(text.split())


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:_EXAMPLES])
    return shown + (f" and {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else "")


def relative_luminance(color: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours, from 1 (none) to 21."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def check_size(built: RenderedEmail) -> Check:
    """Size against max_email_kb; the build's size guard already warns when it is over."""
    size, budget = built.email_size, built.budget
    text = f"email.html {size / KB:.1f} KB of {budget // KB} KB"
    if size > budget:
        return Check(
            "size", "info", f"{text}, {(size - budget) / KB:.1f} KB over; mode {built.mode}"
        )
    text += f", {(budget - size) / KB:.1f} KB left; mode {built.mode}"
    if built.mode == "digest" and built.full_size > 0:
        text += f" (the full text, {built.full_size / KB:.1f} KB, does not fit: teasers are sent)"
    tight = budget - size < ROOM_MIN * budget
    return Check("size", "info" if tight or built.mode == "digest" else "ok", text)


def check_subject(built: RenderedEmail) -> Check:
    """A subject longer than about 70 characters is cut off in the inbox."""
    length = len(built.issue.subject)
    if length > SUBJECT_MAX:
        return Check(
            "subject-long",
            "warning",
            f"subject is {length} characters; inboxes cut it near {SUBJECT_MAX}: "
            "put the words that matter first or shorten it",
        )
    return Check("subject", "ok", f"subject is {length} characters")


def check_preheader(built: RenderedEmail) -> Check:
    """The preheader is the grey line after the subject: 40 to about 110 characters."""
    preheader = (built.issue.preheader or "").strip()
    length = len(preheader)
    if not preheader:
        return Check(
            "preheader-missing",
            "warning",
            "no preheader: the inbox shows the email's first text instead; "
            f"add `preheader:` ({PREHEADER_MIN}-{PREHEADER_MAX} characters) to the issue",
        )
    if length < PREHEADER_MIN:
        return Check(
            "preheader-short",
            "warning",
            f"preheader is {length} characters; under {PREHEADER_MIN} the inbox pads it with "
            "the email's first text",
        )
    if length > PREHEADER_MAX:
        return Check(
            "preheader-long",
            "warning",
            f"preheader is {length} characters; inboxes show about {PREHEADER_MAX}",
        )
    return Check("preheader", "ok", f"preheader is {length} characters")


def check_links(scan: _EmailScan) -> Check:
    """Links over plain http are flagged by mail clients and leak what readers open."""
    insecure = list(dict.fromkeys(h for h in scan.hrefs if h.lower().startswith("http://")))
    if insecure:
        return Check(
            "http-link",
            "warning",
            f"{len(insecure)} link(s) use http:// rather than https://: {_examples(insecure)}",
        )
    web = sum(1 for h in scan.hrefs if h.lower().startswith("https://"))
    return Check("links", "ok", f"all {web} web links use https://" if web else "no web links")


def check_images(scan: _EmailScan) -> Check:
    """Images need width and height attributes, or Outlook shows them at full size."""
    unsized = [
        img.get("src") or "(no src)"
        for img in scan.images
        if not (img.get("width") or "").strip() or not (img.get("height") or "").strip()
    ]
    if unsized:
        return Check(
            "image-size",
            "warning",
            f"{len(unsized)} image(s) without width and height: {_examples(unsized)}; "
            "add `width:` and `height:` to the article's image",
        )
    count = len(scan.images)
    return Check(
        "images", "ok", f"all {count} image(s) have width and height" if count else "no images"
    )


def check_contrast(built: RenderedEmail) -> list[Check]:
    """Each pillar colour must reach WCAG AA contrast with the white band text."""
    failing = []
    for key, pillar in built.newsletter.pillars.items():
        ratio = contrast_ratio(pillar.color, BAND_TEXT)
        if ratio < CONTRAST_AA:
            failing.append(
                Check(
                    "pillar-contrast",
                    "warning",
                    f"pillar {key} colour {pillar.color} has contrast {ratio:.2f}:1 with the band "
                    f"text {BAND_TEXT}, below WCAG AA {CONTRAST_AA}:1; "
                    "choose a darker colour in newsletter.yaml",
                )
            )
    count = len(built.newsletter.pillars)
    return failing or [Check("contrast", "ok", f"all {count} pillar colour(s) reach WCAG AA")]


def check_footer(built: RenderedEmail, scan: _EmailScan) -> list[Check]:
    """The unsubscribe link and the postal address must be in both parts (the law asks)."""
    found = []
    missing_link = [
        part
        for part, present in (
            ("email.html", UNSUBSCRIBE_PLACEHOLDER in scan.hrefs),
            ("email.txt", UNSUBSCRIBE_PLACEHOLDER in built.email_txt),
        )
        if not present
    ]
    if missing_link:
        found.append(
            Check(
                "unsubscribe-missing",
                "warning",
                f"no unsubscribe link in {' and '.join(missing_link)}: the theme must put "
                "`unsubscribe_url` in the footer",
            )
        )
    address = _squash(built.newsletter.postal_address)
    missing_address = [
        part
        for part, text in (("email.html", " ".join(scan.text)), ("email.txt", built.email_txt))
        if address not in _squash(text)
    ]
    if missing_address:
        found.append(
            Check(
                "footer-missing",
                "warning",
                f"the footer's postal address is missing from {' and '.join(missing_address)}",
            )
        )
    return found or [Check("footer", "ok", "footer has the postal address and unsubscribe link")]


def run_checks(built: RenderedEmail) -> list[Check]:
    """Every check of a built issue, in the order the preview panel lists them."""
    scan = _scan(built.email_html)
    return [
        check_size(built),
        check_subject(built),
        check_preheader(built),
        check_links(scan),
        check_images(scan),
        *check_contrast(built),
        *check_footer(built, scan),
        *(Check(*found) for found in check_client_support(built.email_html)),
        *(Check(*found) for found in check_accessibility(built.email_html)),
    ]
