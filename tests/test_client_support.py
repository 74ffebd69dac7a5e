"""The client-support check: caniemail's data against what a built email really uses."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from composer.build import build_issue
from composer.project import load_project
from composer.render import clients
from composer.render.clients import (
    ALLOWED,
    MJML_PATTERNS,
    OUTLOOK_WINDOWS,
    check_client_support,
    collect_uses,
    find_client_gaps,
    load_support_data,
)
from composer.render.html import mjml_to_html

REPO = Path(__file__).resolve().parent.parent
SEEDS = ["vol-36.yaml", "2022-05.yaml"]

BROKEN = """<!doctype html><html><head><title>t</title></head><body>
<div style="position:absolute;top:0;left:0">Badge</div>
<div style="display:flex;gap:8px"><p>One</p><p>Two</p></div>
<video src="https://example.org/clip.mp4" controls></video>
</body></html>"""

# The smallest email MJML makes: a section with a column, which MJML gives Outlook for Windows as
# fixed-width tables in <!--[if mso | IE]> comments, with its reset rules and media queries.
MJML = """<mjml><mj-head><mj-title>Hi</mj-title><mj-preview>A preheader</mj-preview></mj-head>
<mj-body width="600px"><mj-section><mj-column>
<mj-text>Hello</mj-text></mj-column><mj-column><mj-text>World</mj-text></mj-column>
</mj-section></mj-body></mjml>"""


def lacking(slug: str) -> set[str]:
    """The major clients caniemail says lack a feature, by the names the check prints."""
    data = load_support_data()
    return {data.clients[c] for c, verdict in data.features[slug].support.items() if verdict == "n"}


def test_layout_breakers_are_named_warnings_with_the_clients_that_lack_them() -> None:
    warnings = [message for _, level, message in check_client_support(BROKEN) if level == "warning"]
    expected = {
        "css-position": "position (CSS)",
        "css-display-flex": "display:flex (CSS)",
        "html-video": "<video> element (HTML)",
    }
    assert len(warnings) == 3
    for slug, title in expected.items():
        (message,) = [m for m in warnings if m.startswith(title)]
        assert lacking(slug), f"caniemail says every client supports {slug}?"
        for name in lacking(slug):
            assert name in message.split("; used in")[0]
        assert f"https://www.caniemail.com/features/{slug}/" in message
    # The facts that make these three worth a warning, as caniemail records them.
    assert {"Gmail (web)", "Outlook Windows"} <= lacking("css-position")
    assert "Outlook Windows" in lacking("css-display-flex")
    assert {"Gmail (web)", "Outlook Windows", "Yahoo Mail (web)"} <= lacking("html-video")


def test_findings_name_the_clients_by_id_and_where_the_feature_is_used() -> None:
    gaps = {gap.feature.slug: gap for gap in find_client_gaps(BROKEN)}
    position = gaps["css-position"]
    assert OUTLOOK_WINDOWS in position.missing and position.breaks_layout
    assert [use.where for use in position.uses] == ["<div> style: position:absolute"]
    assert [use.where for use in gaps["html-video"].uses] == ["<video>"]


def test_a_background_image_warns_only_without_a_colour_under_it() -> None:
    bare = '<td style="background-image:url(https://example.org/a.png)">x</td>'
    covered = (
        '<td style="background-color:#0b3d6e;background-image:url(https://example.org/a.png)">'
    )
    assert any(level == "warning" for _, level, _ in check_client_support(bare))
    levels = {level for code, level, m in check_client_support(covered) if "background-image" in m}
    assert levels == {"info"}


def test_what_outlook_never_sees_is_not_held_against_outlook() -> None:
    hidden = '<!--[if !mso]><!--><div style="display:flex">x</div><!--<![endif]-->'
    gap = {g.feature.slug: g for g in find_client_gaps(hidden)}["css-display-flex"]
    assert OUTLOOK_WINDOWS not in gap.missing
    outlook_only = '<!--[if mso | IE]><v:rect style="position:absolute"><video></video><![endif]-->'
    assert collect_uses(outlook_only) == []


def test_the_allowlist_keeps_mjml_fallbacks_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    html = mjml_to_html(MJML, "test.mjml")
    assert "<!--[if mso | IE]>" in html and "max-width:600px" in html
    assert [level for _, level, _ in check_client_support(html)] == ["ok"]
    gaps = {gap.feature.slug: gap for gap in find_client_gaps(html)}
    assert "css-at-media" not in gaps
    for slug in ("css-max-width", "css-display"):  # Outlook lays out the mso tables instead
        assert slug not in gaps or OUTLOOK_WINDOWS not in gaps[slug].partial
    # Without the allowlist the same email reports MJML's own patterns.
    monkeypatch.setattr(clients, "ALLOWED", ())
    gaps = {gap.feature.slug: gap for gap in find_client_gaps(html)}
    assert OUTLOOK_WINDOWS in gaps["css-at-media"].missing
    assert OUTLOOK_WINDOWS in gaps["css-max-width"].partial
    assert OUTLOOK_WINDOWS in gaps["css-max-height"].missing  # the hidden preheader
    assert any(level == "info" for _, level, _ in check_client_support(html))


def test_every_allowed_pattern_has_a_reason_and_matches_what_mjml_makes() -> None:
    uses = collect_uses(mjml_to_html(MJML, "test.mjml"))
    for allowed in MJML_PATTERNS:
        assert allowed.reason, allowed
        assert any(
            (not allowed.slugs or use.slug in allowed.slugs) and allowed.where.search(use.where)
            for use in uses
        ), f"no use in MJML's output matches {allowed.where.pattern}"
    assert all(allowed.reason for allowed in ALLOWED)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_seed_issues_give_no_warning(seed: str) -> None:
    built = build_issue(load_project(REPO), REPO / "issues" / seed)
    found = [check for check in built.checks if check.code == "client-support"]
    assert found, "run_checks does not run the client-support check"
    assert [c.message for c in found if c.level == "warning"] == []
    assert check_client_support(built.email_html)[0][1] == "ok"


def test_the_data_loads_from_the_installed_package() -> None:
    folder = resources.files("composer.render").joinpath("caniemail")
    raw = json.loads(folder.joinpath("data.json").read_text("utf-8"))
    assert folder.joinpath("LICENSE").read_text("utf-8").startswith("MIT License")
    assert raw["source"]["version"] in folder.joinpath("SOURCE.md").read_text("utf-8")
    data = load_support_data()
    assert len(data.clients) == 10 and "outlook.windows" in data.clients
    assert {feature.category for feature in data.features.values()} == {"html", "css"}
    position = data.features["css-position"]
    assert position.title == "position" and set(position.support) == set(data.clients)
    assert set(position.support.values()) <= {"y", "a", "n", "u"}
