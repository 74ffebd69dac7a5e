"""Accessibility checks a page's HTML can answer alone: heading order, link text, alt text.

What needs a browser (contrast, names computed from CSS, ARIA rules) is axe-core's job in
tests/test_accessibility.py; these run on every build, in `compose check` and the preview.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

Level = Literal["ok", "info", "warning"]  # as composer.render.checks.Level
CheckItem = tuple[str, Level, str]  # (code, level, message); run_checks makes each a Check
_EXAMPLES = 3  # how many offenders a message names

# Link text that says nothing once read out of its sentence, as screen readers list links.
VAGUE_LINK_TEXT = frozenset(
    {
        "click here",
        "click",
        "here",
        "read more",
        "more",
        "learn more",
        "see more",
        "continue reading",
        "continue",
        "details",
        "more info",
        "more information",
        "link",
        "this link",
        "this",
        "go",
        # The same in the theme's other languages (Serbian Latin, Albanian).
        "opširnije",
        "više",
        "saznajte više",
        "kliknite ovde",
        "ovde",
        "lexoni më shumë",
        "më shumë",
        "klikoni këtu",
        "këtu",
    }
)
_TRIM = " \t\n.,:;!?\u2026\u2192\u00bb\u203a>-\u2013\u2014()[]"  # punctuation and arrows around link text
_BARE_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
_IMAGE_EXT = r"(jpe?g|png|gif|webp|svg|bmp|tiff?|avif|heic)"
# A file name, or a camera's or phone's default name with the extension dropped.
_FILE_NAME = re.compile(
    rf"^(\S+\.{_IMAGE_EXT}|(img|dsc|dscn|dscf|pxl|photo|image|screenshot)[ _-]?\d+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Link:
    href: str
    name: str  # the accessible name: aria-label, else the text (and alt text) not aria-hidden


@dataclass(frozen=True)
class Image:
    src: str
    alt: str | None


class _PageScan(HTMLParser):
    """One pass over a page: its headings, links with their names, and images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[Heading] = []
        self.links: list[Link] = []
        self.images: list[Image] = []
        self._heading: tuple[int, list[str]] | None = None
        self._link: tuple[str, str, list[str]] | None = None  # href, aria-label, text
        self._hidden: list[str] = []  # tags of the open aria-hidden elements, innermost last
        self._skip = 0  # inside <style>, <script>, <title>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in ("style", "script", "title"):
            self._skip += 1
        elif self._hidden or values.get("aria-hidden") == "true":
            if tag not in _VOID:  # a void element has no end tag to close it
                self._hidden.append(tag)
            return
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = (int(tag[1]), [])
        elif tag == "a" and "href" in values:
            self._link = (values["href"].strip(), values.get("aria-label", "").strip(), [])
        elif tag == "img":
            alt = values.get("alt")
            self.images.append(Image(values.get("src", ""), None if alt is None else alt.strip()))
            self._text(alt or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title") and self._skip:
            self._skip -= 1
        elif self._hidden:
            if tag in self._hidden:
                del self._hidden[len(self._hidden) - 1 - self._hidden[::-1].index(tag) :]
        elif self._heading and tag == f"h{self._heading[0]}":
            level, text = self._heading
            self.headings.append(Heading(level, _squash(" ".join(text))))
            self._heading = None
        elif self._link and tag == "a":
            href, label, text = self._link
            self.links.append(Link(href, label or _squash(" ".join(text))))
            self._link = None

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._hidden:
            self._text(data)

    def _text(self, data: str) -> None:
        if self._heading:
            self._heading[1].append(data)
        if self._link:
            self._link[2].append(data)


_VOID = frozenset({"img", "br", "hr", "meta", "link", "input", "area", "base", "col", "wbr"})


def _squash(text: str) -> str:
    return " ".join(text.split())


def scan_page(html: str) -> _PageScan:
    """Headings, links and images of a page, for the checks below and for tests."""
    scan = _PageScan()
    scan.feed(html)
    scan.close()
    return scan


def heading_jumps(headings: list[Heading]) -> list[str]:
    """Headings that skip a level on the way down (h2 then h4): 'h2 → h4 "Title"'."""
    jumps, previous = [], 0
    for heading in headings:
        if previous and heading.level > previous + 1:
            jumps.append(f'h{previous} \u2192 h{heading.level} "{heading.text[:60]}"')
        previous = heading.level
    return jumps


def is_vague(name: str) -> bool:
    """Link text that means nothing on its own: "click here", "read more", or none at all."""
    return name.lower().strip(_TRIM) in VAGUE_LINK_TEXT or not name.strip(_TRIM)


def is_file_name(alt: str, src: str = "") -> bool:
    """Alt text that is a file name (IMG_1234.jpg, photo.png) or the image's own file name."""
    base = src.rsplit("/", 1)[-1].split("?", 1)[0]
    stem = base.rsplit(".", 1)[0]
    return bool(_FILE_NAME.match(alt.strip())) or (bool(base) and alt.strip() in (base, stem))


def check_headings(scan: _PageScan, page: str) -> CheckItem:
    """Headings go down one level at a time, so a screen reader's outline has no holes."""
    jumps = heading_jumps(scan.headings)
    if jumps:
        return (
            "heading-order",
            "warning",
            (
                f"{page}: {len(jumps)} heading(s) skip a level: {_examples(jumps)}; "
                "use the next level down (in Markdown, one more #)"
            ),
        )
    return ("heading-order", "ok", f"{page}: {len(scan.headings)} headings, in order")


def check_link_text(scan: _PageScan, page: str) -> list[CheckItem]:
    """Link text must say where it leads: no bare "click here", "read more" or URL."""
    described = {link.href for link in scan.links if not is_vague(link.name)}
    orphans: list[str] = []
    repeats: list[str] = []
    urls: list[str] = []
    for link in scan.links:
        if is_vague(link.name):
            # A vague link after a meaningful link to the same place (an article's title) has
            # its context (WCAG technique H80) but still reads badly in a list of links.
            (repeats if link.href in described else orphans).append(link.name or "(no text)")
        elif _BARE_URL.match(link.name):
            urls.append(link.name)
    found: list[CheckItem] = []
    if orphans:
        found.append(
            (
                "link-text",
                "warning",
                (
                    f"{page}: {len(orphans)} link(s) say nothing of where they lead: "
                    f"{_examples(_counted(orphans))}; write what the reader gets instead"
                ),
            )
        )
    if repeats:
        found.append(
            (
                "link-text",
                "info",
                (
                    f"{page}: {len(repeats)} link(s) named only {_examples(_counted(repeats))} repeat "
                    "a titled link to the same place; a screen reader's list of links shows them "
                    "without their titles"
                ),
            )
        )
    if urls:
        found.append(
            (
                "link-text",
                "info",
                (
                    f"{page}: {len(urls)} link(s) show a bare URL, which screen readers spell out: "
                    f"{_examples(_counted(urls))}; name the page instead"
                ),
            )
        )
    return found or [("link-text", "ok", f"{page}: all {len(scan.links)} link(s) say where")]


def check_alt_text(scan: _PageScan, page: str) -> CheckItem:
    """Alt text must describe the image, not name its file."""
    named = [
        image.alt or "" for image in scan.images if image.alt and is_file_name(image.alt, image.src)
    ]
    if named:
        return (
            "alt-text",
            "warning",
            (
                f"{page}: {len(named)} image(s) have a file name as alt text: {_examples(named)}; "
                "say what the image shows"
            ),
        )
    return ("alt-text", "ok", f"{page}: no image has a file name as alt text")


def check_accessibility(html: str, page: str = "email.html") -> list[CheckItem]:
    """The static accessibility checks of one page: each finding, or one `accessibility` ok."""
    scan = scan_page(html)
    checks = [check_headings(scan, page), *check_link_text(scan, page), check_alt_text(scan, page)]
    found = [check for check in checks if check[1] != "ok"]
    counts = f"{len(scan.headings)} headings, {len(scan.links)} links, {len(scan.images)} images"
    return found or [
        ("accessibility", "ok", f"{page}: headings, link text, alt text fine ({counts})")
    ]


def _counted(items: list[str]) -> list[str]:
    """'"Read more" ×44' for repeated text, in order of first appearance."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return [f'"{text}"' + (f" \u00d7{n}" if n > 1 else "") for text, n in counts.items()]


def _examples(items: list[str]) -> str:
    shown = ", ".join(items[:_EXAMPLES])
    return shown + (f" and {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else "")
