"""The web archive: built issues found under the build folder, their index page and Atom feed."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from composer.issue.model import Newsletter

WEB_FILE = "web.html"
META_FILE = "meta.json"
ATOM_NS = "http://www.w3.org/2005/Atom"
# A slug is one path segment that `compose build` made; nothing else is ever served.
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ArchivedIssue:
    """One built issue as the archive lists it."""

    slug: str
    title: str
    published: dt.datetime  # aware, UTC
    summary: str | None
    web_file: Path


def find_issues(build_dir: Path) -> list[ArchivedIssue]:
    """Every built issue under `build_dir` that has a web version, newest first."""
    if not build_dir.is_dir():
        return []
    issues = []
    for folder in build_dir.iterdir():
        issue = _read_issue(folder)
        if issue is not None:
            issues.append(issue)
    issues.sort(key=lambda i: (i.published, i.slug), reverse=True)
    return issues


def find_issue(build_dir: Path, slug: str) -> ArchivedIssue | None:
    """The built issue called `slug`, or None when there is none (or the name is not a slug)."""
    if not _SLUG.match(slug):
        return None
    return _read_issue(build_dir / slug)


def _read_issue(folder: Path) -> ArchivedIssue | None:
    if not _SLUG.match(folder.name) or not folder.is_dir():
        return None
    web_file = folder / WEB_FILE
    if not web_file.is_file():
        return None
    meta = _read_meta(folder / META_FILE)
    title = _text(meta.get("subject")) or folder.name
    published = _published(meta.get("date"), web_file)
    return ArchivedIssue(folder.name, title, published, _text(meta.get("preheader")), web_file)


def _read_meta(path: Path) -> dict[str, object]:
    """meta.json when present and readable; a broken one falls back like a missing one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _published(value: object, web_file: Path) -> dt.datetime:
    if isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
        else:
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(web_file.stat().st_mtime, tz=dt.UTC).replace(microsecond=0)


def atom_feed(newsletter: Newsletter, issues: list[ArchivedIssue]) -> bytes:
    """An Atom 1.0 feed of `issues`, linking each to its web version under archive_url."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    lang = newsletter.language
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
    base = newsletter.archive_base
    _sub(feed, "id", base)
    _sub(feed, "title", newsletter.name)
    updated = max((i.published for i in issues), default=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    _sub(feed, "updated", _stamp(updated))
    author = _sub(feed, "author")
    _sub(author, "name", newsletter.organization or newsletter.name)
    if newsletter.website:
        _sub(author, "uri", newsletter.website)
    _sub(feed, "link", href=base, rel="alternate", type="text/html")
    _sub(feed, "link", href=base + "feed.xml", rel="self", type="application/atom+xml")
    for issue in issues:
        entry = _sub(feed, "entry")
        url = newsletter.web_url(issue.slug)
        _sub(entry, "id", url)
        _sub(entry, "title", issue.title)
        _sub(entry, "updated", _stamp(issue.published))
        _sub(entry, "published", _stamp(issue.published))
        _sub(entry, "link", href=url, rel="alternate", type="text/html")
        if issue.summary:
            _sub(entry, "summary", issue.summary)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
