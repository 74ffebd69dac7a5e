"""`compose report --html OUT`: one self-contained page with inline SVG charts (pygal).

No script, font, image or style is fetched from anywhere: the charts are SVG inside the page,
drawn twice (light and dark palettes, shown by `prefers-color-scheme`), and every chart has a
table of the same figures beside it, for screen readers and for copying into a memo.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from composer.events import store as kinds
from composer.events.report import IssueReport
from composer.events.report_view import OPENS_CAVEAT, summary
from composer.web.pages import render_page

# Kinds drawn over time, with the label the legend shows.
TIMELINE = (
    (kinds.DELIVERED, "Delivered"),
    (kinds.DEFERRED, "Deferred"),
    (kinds.SOFT_BOUNCE, "Soft bounces"),
    (kinds.HARD_BOUNCE, "Hard bounces"),
    (kinds.COMPLAINT, "Complaints"),
    (kinds.UNSUBSCRIBE, "Unsubscribes"),
    (kinds.CLICK, "Clicks"),
)
# Palettes with at least 3:1 contrast against their background (WCAG 1.4.11, graphics).
LIGHT = {
    "background": "#ffffff",
    "text": "#1d1d1f",
    "subtle": "#6e6e73",
    "colors": ("#1f6fb2", "#8a5a00", "#a23e8c", "#b00020", "#5b4bb7", "#00734a", "#3a3a3c"),
}
DARK = {"background": "#2c2c2e", "text": "#f5f5f7", "subtle": "#aeaeb2",
        "colors": ("#8ab4f8", "#f2b84b", "#f28bd6", "#ff8a80", "#b7a8ff", "#5fd39b", "#d1d1d6")}  # fmt: skip
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
MAX_LINK_LABEL = 60
BUCKETS = {3600: "hour", 6 * 3600: "6 hours", 24 * 3600: "day", 7 * 24 * 3600: "week"}


def report_page(report: IssueReport, generated: dt.datetime | None = None) -> str:
    """The whole report as one HTML page."""
    now = generated or dt.datetime.now(dt.UTC)
    hours = sorted({hour for by_hour in report.timeline.values() for hour in by_hour})
    series = [
        (label, [report.timeline.get(kind, {}).get(hour, 0) for hour in hours])
        for kind, label in TIMELINE
        if report.timeline.get(kind)
    ]
    hour_labels = [_hour(hour) for hour in hours]
    links = [(_short(link.url), link.total) for link in report.links]
    charts: dict[str, dict[str, str]] = {}
    if series:
        charts["timeline"] = {
            mode: _timeline_svg(hour_labels, series, palette)
            for mode, palette in (("light", LIGHT), ("dark", DARK))
        }
    if links:
        charts["links"] = {
            mode: _links_svg(links, palette) for mode, palette in (("light", LIGHT), ("dark", DARK))
        }
    return render_page(
        "report.html",
        report=report,
        summary=summary(report),
        charts=charts,
        timeline_rows=list(zip(hour_labels, zip(*(v for _, v in series), strict=True),
                               strict=True)) if series else [],
        timeline_labels=[label for label, _ in series],
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        opens_caveat=OPENS_CAVEAT if report.opens_tracked else None,
        hard_total=report.total(kinds.HARD_BOUNCE) + report.total(kinds.COMPLAINT),
        bucket=BUCKETS.get(report.bucket, f"{report.bucket // 3600} hours"),
    )  # fmt: skip


def _style(palette: dict[str, Any]) -> Any:
    from pygal.style import Style

    return Style(
        background="transparent",
        plot_background="transparent",
        foreground=palette["text"],
        foreground_strong=palette["text"],
        foreground_subtle=palette["subtle"],
        colors=palette["colors"],
        font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        label_font_size=13,
        major_label_font_size=13,
        legend_font_size=14,
        value_font_size=13,
        title_font_size=16,
    )


def _options(palette: dict[str, Any]) -> dict[str, Any]:
    return {
        "style": _style(palette),
        "js": [],  # pygal would load its tooltips from a CDN
        "disable_xml_declaration": True,
        "width": 800,
        "height": 400,
        "legend_at_bottom": True,
        "show_y_guides": True,
    }


def _timeline_svg(labels: list[str], series: list[tuple[str, list[int]]], palette: dict) -> str:
    import pygal

    chart = pygal.Line(**_options(palette), x_label_rotation=30, show_minor_x_labels=False,
                       x_labels_major_count=8, dots_size=2)  # fmt: skip
    chart.x_labels = labels
    for label, values in series:
        chart.add(label, values)
    return _clean(chart.render(is_unicode=True))


def _links_svg(links: list[tuple[str, int]], palette: dict) -> str:
    import pygal

    chart = pygal.HorizontalBar(**_options(palette), show_legend=False, print_values=True)
    chart.height = max(200, 40 * len(links) + 80)
    chart.x_labels = [label for label, _ in reversed(links)]
    chart.add("Clicks", [total for _, total in reversed(links)])
    return _clean(chart.render(is_unicode=True))


def _clean(svg: str) -> str:
    """The SVG without pygal's script and comments; marked as one image for assistive tech."""
    svg = _COMMENT.sub("", _SCRIPT.sub("", svg))
    return svg.replace("<svg ", '<svg role="img" aria-hidden="true" focusable="false" ', 1)


def _hour(stamp: int) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%d %b %H:%M")


def _short(url: str) -> str:
    text = re.sub(r"^https?://", "", url)
    return text if len(text) <= MAX_LINK_LABEL else text[: MAX_LINK_LABEL - 1] + "…"
