"""The web archive: built issues found under the build folder, their index page and Atom feed.

`Archive` reads the build folder once per change: each request costs one `os.scandir` of it
(an lstat per entry), and an issue's meta.json is read again only when its folder changed. A
rebuild replaces `build/<slug>/` by rename (a new inode), and adding, removing or renaming a file
in a folder changes its mtime; a file rewritten in place, which `compose build` never does, is
seen once its folder changes. Only real folders and regular files are read; a symbolic link
under the build folder is as good as absent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from composer.delivery.sent import SentIssues, Stamp
from composer.issue.model import Newsletter

WEB_FILE = "web.html"
_EDITION = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")  # a language tag, as built
META_FILE = "meta.json"
ATOM_NS = "http://www.w3.org/2005/Atom"
# A slug is one path segment that `compose build` made; nothing else is ever served.
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Opening the web version: never through a link, and never hang on a FIFO put in its place.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# What lstat says of an issue folder that changes when it is replaced by a rename (the inode) or
# when a file in it is added, removed or renamed (the mtime).
IssueStamp = tuple[int, int, int, int]


@dataclass(frozen=True)
class ArchivedIssue:
    """One built issue as the archive lists it."""

    slug: str
    title: str
    published: dt.datetime  # aware, UTC
    summary: str | None
    web_file: Path
    # Everything meta.json holds (empty when there is none), for rules on what is public.
    meta: Mapping[str, object] = field(compare=False, repr=False)
    # lstat of web.html when it was checked: the file served must still be this very file.
    web_stat: os.stat_result = field(compare=False, repr=False)


def is_listed(issue: ArchivedIssue, sent: frozenset[str]) -> bool:
    """Whether the archive lists and serves `issue`: the one place that decides what is public.

    Only an issue that went to a real list (`sent`, from the delivery log) or whose file says
    `published: true` (meta.json) is public; a draft that was only built never is.
    """
    return issue.meta.get("published") is True or issue.slug in sent


@dataclass(frozen=True)
class ArchiveSnapshot:
    """The listed issues as the build folder held them at one moment, newest first."""

    issues: tuple[ArchivedIssue, ...]
    by_slug: Mapping[str, ArchivedIssue]
    # Pages made from this snapshot (index, feed), kept as long as the snapshot is current.
    _derived: dict[str, bytes] = field(default_factory=dict, init=False, compare=False, repr=False)

    def derived(self, key: str, make: Callable[[tuple[ArchivedIssue, ...]], bytes]) -> bytes:
        """`make(issues)`, computed once per snapshot and remembered under `key`."""
        if key not in self._derived:
            self._derived[key] = make(self.issues)
        return self._derived[key]


@dataclass(frozen=True)
class WebVersion:
    """The bytes of one issue's web.html and the status of the file they were read from."""

    body: bytes
    file_stat: os.stat_result

    @property
    def headers(self) -> dict[str, str]:
        """Last-Modified and ETag, made as Starlette's FileResponse makes them."""
        mtime = self.file_stat.st_mtime
        tag = f"{mtime}-{self.file_stat.st_size}".encode()
        return {
            "Last-Modified": formatdate(mtime, usegmt=True),
            "ETag": f'"{hashlib.md5(tag, usedforsecurity=False).hexdigest()}"',
        }


class Archive:
    """The built issues under one build folder, read again only when the folder changes.

    Meant for one event loop (the server's): it is never awaited inside, so needs no lock.
    """

    def __init__(self, build_dir: Path, sent: SentIssues | None = None) -> None:
        self._build_dir = build_dir
        self._sent = sent  # None: nothing was sent (tests of the build folder alone)
        self._sent_stamp: Stamp = ()
        self._stamps: dict[str, IssueStamp] = {}
        self._read: dict[str, tuple[IssueStamp, ArchivedIssue | None]] = {}
        self._snapshot = ArchiveSnapshot((), {})

    def snapshot(self) -> ArchiveSnapshot:
        """The listed issues now: the same object as last time when nothing changed on disk."""
        stamps = _scan(self._build_dir)
        sent_stamp = self._sent.stamp() if self._sent is not None else ()
        if stamps == self._stamps and sent_stamp == self._sent_stamp:
            return self._snapshot
        sent = self._sent.slugs() if self._sent is not None else frozenset()
        # Stamps are taken before files are read: a change during the read shows next time.
        read: dict[str, tuple[IssueStamp, ArchivedIssue | None]] = {}
        for name, stamp in stamps.items():
            cached = self._read.get(name)
            if cached is not None and cached[0] == stamp:
                read[name] = cached
            else:
                read[name] = (stamp, _read_issue(self._build_dir, name, stamp))
        listed = [i for _, i in read.values() if i is not None and is_listed(i, sent)]
        listed.sort(key=lambda i: (i.published, i.slug), reverse=True)
        self._read, self._stamps, self._sent_stamp = read, stamps, sent_stamp
        self._snapshot = ArchiveSnapshot(tuple(listed), {i.slug: i for i in listed})
        return self._snapshot

    def issues(self) -> tuple[ArchivedIssue, ...]:
        """Every listed issue, newest first."""
        return self.snapshot().issues

    def issue(self, slug: str) -> ArchivedIssue | None:
        """The listed issue called `slug`, or None."""
        return self.snapshot().by_slug.get(slug)

    def web_version(self, slug: str, edition: str | None = None) -> WebVersion | None:
        """The web version of the listed issue `slug` (in the translation `edition`, from
        `<slug>/<edition>/web.html`), or None when there is none to serve."""
        if edition is not None and not _EDITION.fullmatch(edition):
            return None
        for _ in range(2):  # a rebuild between the check and the read: look once more
            issue = self.issue(slug)
            if issue is None:
                return None
            page = read_web_version(issue) if edition is None else _read_edition(issue, edition)
            if page is not None:
                return page
        return None


def read_web_version(issue: ArchivedIssue) -> WebVersion | None:
    """`issue`'s web.html, only if it is still the regular file that was checked (no link)."""
    try:
        fd = os.open(issue.web_file, _OPEN_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode) or not _same_file(opened, issue.web_stat):
            return None  # replaced since the check (a rebuild, or a link swapped in)
        return WebVersion(handle.read(), opened)


def _read_edition(issue: ArchivedIssue, edition: str) -> WebVersion | None:
    """A translation's web.html beside the issue's: a real folder and a regular file, no link."""
    folder = issue.web_file.parent / edition
    folder_stat, web_file = _lstat(folder), folder / WEB_FILE
    if folder_stat is None or not stat.S_ISDIR(folder_stat.st_mode):
        return None
    web_stat = _lstat(web_file)
    if web_stat is None or not stat.S_ISREG(web_stat.st_mode):
        return None
    return read_web_version(dataclasses.replace(issue, web_file=web_file, web_stat=web_stat))


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _scan(build_dir: Path) -> dict[str, IssueStamp]:
    """Each slug-named entry of `build_dir` with the stamp of its folder: one scandir, no reads."""
    stamps: dict[str, IssueStamp] = {}
    try:
        entries = os.scandir(build_dir)
    except OSError:
        return stamps
    with entries:
        for entry in entries:
            if not _SLUG.match(entry.name):
                continue
            try:
                status = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            stamps[entry.name] = (status.st_mode, status.st_dev, status.st_ino, status.st_mtime_ns)
    return stamps


def _read_issue(build_dir: Path, name: str, stamp: IssueStamp) -> ArchivedIssue | None:
    """The issue in `build_dir/name`, when it is a real folder holding a regular web.html."""
    if not stat.S_ISDIR(stamp[0]):  # a link (even to a folder) or a file is never an issue
        return None
    folder = build_dir / name
    web_file = folder / WEB_FILE
    web_stat = _lstat(web_file)
    if web_stat is None or not stat.S_ISREG(web_stat.st_mode) or not _inside(web_file, build_dir):
        return None
    meta_stat = _lstat(folder / META_FILE)
    is_regular_meta = meta_stat is not None and stat.S_ISREG(meta_stat.st_mode)
    meta = _read_meta(folder / META_FILE) if is_regular_meta else {}
    title = _text(meta.get("subject")) or name
    published = _published(meta.get("date"), web_stat)
    summary = _text(meta.get("preheader"))
    return ArchivedIssue(name, title, published, summary, web_file, meta, web_stat)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _inside(path: Path, build_dir: Path) -> bool:
    """Whether `path`, every link resolved, still lies inside the (resolved) build folder."""
    try:
        return path.resolve(strict=True).is_relative_to(build_dir.resolve(strict=True))
    except (OSError, RuntimeError):
        return False


def _read_meta(path: Path) -> dict[str, object]:
    """meta.json when present and readable; a broken one falls back like a missing one."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return {}
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _published(value: object, web_stat: os.stat_result) -> dt.datetime:
    if isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
        else:
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(web_stat.st_mtime, tz=dt.UTC).replace(microsecond=0)


def atom_feed(newsletter: Newsletter, issues: Sequence[ArchivedIssue]) -> bytes:
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
