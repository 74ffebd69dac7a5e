"""`compose report` as the terminal shows it, and as JSON."""

from __future__ import annotations

from typing import Any

from composer.events import store as kinds
from composer.events.report import IssueReport

OPENS_CAVEAT = (
    "opens are unreliable: mail clients (Apple Mail above all) fetch every image, read or not"
)
# (label, figure key) of the summary, in reading order.
SUMMARY = (
    ("recipients", "recipients"),
    ("sent", "sent"),
    ("delivered", kinds.DELIVERED),
    ("deferred", kinds.DEFERRED),
    ("bounced (hard)", kinds.HARD_BOUNCE),
    ("bounced (soft)", kinds.SOFT_BOUNCE),
    ("dropped", kinds.DROPPED),
    ("complaints", kinds.COMPLAINT),
    ("unsubscribes", kinds.UNSUBSCRIBE),
    ("clicks", kinds.CLICK),
)


def summary(report: IssueReport) -> list[tuple[str, int]]:
    """(label, figure) for the whole issue."""
    rows = []
    for label, key in SUMMARY:
        if key == "recipients":
            value = report.recipients
        elif key == kinds.CLICK:
            value = sum(link.total for link in report.links)
        else:
            value = report.total(key)
        rows.append((label, value))
    rows.append(("unsubscribes via our link", report.link_unsubscribes))
    if report.opens_tracked:
        rows.append(("opens (unreliable)", report.total(kinds.OPEN)))
    return rows


def as_text(report: IssueReport) -> str:
    """The report as aligned plain text, for a terminal or a mail to the director."""
    title = f"{report.issue}: {report.subject}" if report.subject else report.issue
    lines = [title, ""]
    if not report.lists and not report.links:
        return f"{report.issue}: not sent, and no events recorded\n"
    width = max(len(label) for label, _ in summary(report)) + 2
    lines += [f"{label:<{width}}{value:>10,}" for label, value in summary(report)]
    lines += ["", "per list"]
    columns = ("recipients", "sent", "failed", "delivered", "bounce", "soft_bounce", "spamreport",
               "unsubscribe")  # fmt: skip
    header = f"  {'list (segment)':<28}" + "".join(f"{c[:11]:>12}" for c in columns)
    lines.append(header)
    for figures in report.lists:
        name = figures.name + (f" ({figures.segment})" if figures.segment else "")
        values = [figures.recipients] + [
            figures.states.get(c, 0) + figures.events.get(c, 0) for c in columns[1:]
        ]
        lines.append(f"  {name[:28]:<28}" + "".join(f"{v:>12,}" for v in values))
    if report.links:
        lines += ["", "clicks per link (total, unique readers, scanners apart)"]
        for link in report.links:
            unique = "-" if link.unique is None else f"{link.unique:,}"
            lines.append(f"  {link.total:>8,} {unique:>8} {link.scanner:>6,}  {link.url}")
        if not report.per_recipient:
            lines.append("  unique readers are not kept (tracking.per_recipient is false)")
    if report.failures:
        lines += ["", "failures by reason"]
        lines += [f"  {n:>8,}  {state}: {reason}" for state, reason, n in report.failures]
    if report.retried:
        lines += ["", f"soft bounces handed to the next send for a retry: {report.retried:,}"]
    hard = report.total(kinds.HARD_BOUNCE) + report.total(kinds.COMPLAINT)
    if hard:
        lines.append(f"hard bounces and complaints, suppressed and never retried: {hard:,}")
    if report.not_kept:
        kept = ", ".join(f"{name} {n:,}" for name, n in sorted(report.not_kept.items()))
        lines += ["", f"events received and not kept: {kept}"]
    if report.opens_tracked:
        lines += ["", OPENS_CAVEAT]
    return "\n".join(lines) + "\n"


def as_json(report: IssueReport) -> dict[str, Any]:
    """The report as JSON-able data (stable keys, for scripts)."""
    return {
        "issue": report.issue,
        "subject": report.subject,
        "summary": {label: value for label, value in summary(report)},
        "lists": [
            {
                "list": f.name,
                "segment": f.segment,
                "recipients": f.recipients,
                "states": f.states,
                "events": f.events,
            }
            for f in report.lists
        ],
        "links": [
            {"url": link.url, "total": link.total, "unique": link.unique, "scanner": link.scanner}
            for link in report.links
        ],
        "failures": [
            {"state": state, "reason": reason, "count": n} for state, reason, n in report.failures
        ],
        "timeline": {
            kind: {str(hour): n for hour, n in sorted(hours.items())}
            for kind, hours in report.timeline.items()
        },
        "retried_soft_bounces": report.retried,
        "link_unsubscribes": report.link_unsubscribes,
        "not_kept": report.not_kept,
        "opens": (
            {"count": report.total(kinds.OPEN), "note": OPENS_CAVEAT}
            if report.opens_tracked
            else None
        ),
    }
