"""`compose report FILE`: what happened to a sent issue, from the delivery log and the events.

Event figures come from counts kept as the events are applied (events/store.py), and the few
per-address figures from an index, so a log of a million deliveries and three million events
is read in about a second with flat memory. The delivery log is attached
read-only and asked with plain SQL keyed by (issue, email): it works whether or not `list` is
part of its key.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience.consent import consent_rows
from composer.audience.records import address_key
from composer.delivery.log import STATES
from composer.events import store as kinds
from composer.events.deliveries import connect_readonly, log_path
from composer.events.store import events_path
from composer.project import STATE_DIR, Project

FAILED_STATES = ("failed", "refused", "unknown")
TOP_REASONS = 20
TOP_LINKS = 50
HOUR = 3600
MAX_POINTS = 200
# The kinds drawn over time.
TIMELINE_KINDS = (
    kinds.DELIVERED, kinds.DEFERRED, kinds.SOFT_BOUNCE, kinds.HARD_BOUNCE, kinds.COMPLAINT,
    kinds.UNSUBSCRIBE, kinds.CLICK,
)  # fmt: skip
# Kinds whose figure is of addresses, not of events (one reader complaining twice is one).
PER_ADDRESS = (
    kinds.SOFT_BOUNCE, kinds.HARD_BOUNCE, kinds.DROPPED, kinds.COMPLAINT, kinds.UNSUBSCRIBE,
)  # fmt: skip


@dataclass
class ListFigures:
    """One list (and segment) of one issue."""

    name: str
    segment: str | None = None
    recipients: int = 0
    states: dict[str, int] = field(default_factory=dict)  # sent, failed, pending, ...
    events: dict[str, int] = field(default_factory=dict)  # kind -> events, or addresses


@dataclass
class LinkFigures:
    """Clicks on one link."""

    url: str
    total: int = 0
    unique: int | None = None  # readers; None when only aggregates are kept
    scanner: int = 0  # early clicks by known link scanners, not counted in total


@dataclass
class IssueReport:
    """Everything `compose report` shows."""

    issue: str
    subject: str = ""
    lists: list[ListFigures] = field(default_factory=list)
    links: list[LinkFigures] = field(default_factory=list)
    failures: list[tuple[str, str, int]] = field(default_factory=list)  # state, reason, count
    timeline: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> hour -> n
    not_kept: dict[str, int] = field(default_factory=dict)
    retried: int = 0  # soft bounces handed back to the delivery log for the next send
    bucket: int = 3600  # seconds per point of the timeline
    opens_tracked: bool = False
    per_recipient: bool = False
    # Unsubscribes through the newsletter's own link (consent.csv), each given to the last issue
    # the reader got before it: the link's token names a list and a reader, never an issue.
    link_unsubscribes: int = 0

    def total(self, key: str) -> int:
        """A state or event figure summed over the lists."""
        return sum(f.states.get(key, 0) + f.events.get(key, 0) for f in self.lists)

    @property
    def recipients(self) -> int:
        return sum(f.recipients for f in self.lists)


def issue_report(project: Project, issue_path: Path) -> IssueReport:
    """The report of the issue in `issue_path` (its slug is the file name)."""
    state = project.root / STATE_DIR
    tracking = project.newsletter.tracking
    report = IssueReport(
        issue_path.stem, opens_tracked=tracking.opens, per_recipient=tracking.per_recipient
    )
    figures: dict[str, ListFigures] = {}
    log = connect_readonly(log_path(state))
    if log is not None:
        with closing(log):
            _deliveries(log, report, figures)
            report.link_unsubscribes = _link_unsubscribes(project, log, report.issue)
    events = connect_readonly(events_path(state))
    if events is not None:
        with closing(events):
            _events(events, report, figures)
    report.lists = sorted(figures.values(), key=lambda f: f.name)
    return report


def _link_unsubscribes(project: Project, db: sqlite3.Connection, issue: str) -> int:
    """How many readers left through our own link after `issue` was the last one they got."""
    left: dict[str, float] = {}  # address -> when it last unsubscribed
    for row in consent_rows(project):
        if row.get("action") == "unsubscribe":
            try:
                when = dt.datetime.fromisoformat(row["at"]).timestamp()
            except (KeyError, ValueError):
                continue
            key = address_key(row.get("email", ""))
            left[key] = max(when, left.get(key, 0.0))
    if not left:
        return 0
    others = [i for (i,) in db.execute("SELECT DISTINCT issue FROM sends") if i != issue]
    sent_sql = "SELECT sent_at FROM deliveries WHERE issue=? AND email=? AND state='sent'"
    count = 0
    for address, when in left.items():
        mine = db.execute(sent_sql, (issue, address)).fetchone()
        if mine is None or mine[0] is None or mine[0] > when:
            continue
        later = False
        for other in others:  # a later issue reached them before they left: it is that one's
            row = db.execute(sent_sql, (other, address)).fetchone()
            if row is not None and row[0] is not None and mine[0] < row[0] <= when:
                later = True
                break
        count += not later
    return count


def _figures(figures: dict[str, ListFigures], name: str) -> ListFigures:
    if name not in figures:
        figures[name] = ListFigures(name)
    return figures[name]


def _deliveries(
    db: sqlite3.Connection, report: IssueReport, figures: dict[str, ListFigures]
) -> None:
    issue = report.issue
    for name, subject, segment in db.execute(
        "SELECT list, subject, segment FROM sends WHERE issue=? ORDER BY started_at", (issue,)
    ):
        report.subject = report.subject or subject
        _figures(figures, name).segment = segment
    # One scan, no sort: a sum per state rather than a GROUP BY on it.
    sums = ", ".join(f"sum(state = '{state}')" for state in STATES)
    for name, recipients, *counts in db.execute(
        f"SELECT list, count(*), {sums} FROM deliveries WHERE issue=? GROUP BY list", (issue,)
    ):
        one = _figures(figures, name)
        one.recipients += recipients
        for state, n in zip(STATES, counts, strict=True):
            if n:
                one.states[state] = one.states.get(state, 0) + n
    marks = ",".join("?" * len(FAILED_STATES))
    failures: dict[tuple[str, str], int] = {}
    for state, reason, n in db.execute(
        f"SELECT state, COALESCE(last_error, ''), count(*) FROM deliveries "
        f"WHERE issue=? AND state IN ({marks}) GROUP BY 1, 2",
        (issue, *FAILED_STATES),
    ):
        key = (state, _first_line(reason))
        failures[key] = failures.get(key, 0) + n
    ranked = sorted(failures.items(), key=lambda item: -item[1])[:TOP_REASONS]
    report.failures = [(state, reason, n) for (state, reason), n in ranked]


def _events(db: sqlite3.Connection, report: IssueReport, figures: dict[str, ListFigures]) -> None:
    issue = report.issue
    # The counts kept as events are applied (per issue, kind, list and hour): a few thousand
    # rows, however many events there are.
    rows = db.execute("SELECT kind, list, hour, n FROM counts WHERE issue=?", (issue,)).fetchall()
    hours = [hour for kind, _, hour, _ in rows if kind in TIMELINE_KINDS]
    report.bucket = _bucket(max(hours) - min(hours)) if hours else HOUR
    for kind, name, hour, n in rows:
        if kind == kinds.RETRY:
            report.retried += n
            continue
        if kind not in PER_ADDRESS:
            one = _figures(figures, name or "(unknown list)")
            one.events[kind] = one.events.get(kind, 0) + n
        if kind in TIMELINE_KINDS:
            start = hour // report.bucket * report.bucket
            by_time = report.timeline.setdefault(kind, {})
            by_time[start] = by_time.get(start, 0) + n
    for kind in PER_ADDRESS:
        for name, n in db.execute(
            "SELECT list, count(DISTINCT email) FROM events WHERE issue=? AND kind=? GROUP BY list",
            (issue, kind),
        ):
            _figures(figures, name or "(unknown list)").events[kind] = n
    links = {
        url: LinkFigures(url, total, None, scanner)
        for url, total, scanner in db.execute(
            "SELECT url, total, scanner FROM link_clicks WHERE issue=?", (issue,)
        )
    }
    if report.per_recipient:  # readers per link: kept only then
        for url, unique in db.execute(
            "SELECT url, count(*) FROM ("
            "SELECT url, email AS who FROM events WHERE issue=? AND kind='click' AND email<>'' "
            "UNION SELECT url, delivery FROM reader_clicks WHERE issue=?) GROUP BY url",
            (issue, issue),
        ):
            if url in links:
                links[url].unique = unique
    report.links = sorted(links.values(), key=lambda link: (-link.total, link.url))[:TOP_LINKS]
    for name, n in db.execute("SELECT name, n FROM tallies WHERE issue=?", (issue,)):
        report.not_kept[name] = report.not_kept.get(name, 0) + n


def _bucket(span: float) -> int:
    """Hours for a send followed for a week; then days, then weeks: at most ~200 points."""
    for size in (HOUR, 6 * HOUR, 24 * HOUR, 7 * 24 * HOUR):
        if span / size <= MAX_POINTS:
            return size
    return int(span / MAX_POINTS) // HOUR * HOUR + HOUR


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no reason given)"
    return line[:200]
