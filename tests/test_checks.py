"""The checks of a built issue: each fires on the fault it names, and a clean issue passes them all."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from composer.build import BuiltIssue, build_issue
from composer.project import load_project
from composer.render import UNSUBSCRIBE_PLACEHOLDER
from composer.render.checks import Check, contrast_ratio, run_checks
from tests.conftest import NO_STATE, run_compose

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "preview" / "project"
ISSUE = "issues/clean.yaml"
OK_CODES = [
    "size",
    "subject",
    "preheader",
    "links",
    "images",
    "contrast",
    "footer",
    "client-support",
    "accessibility",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the preview fixture project (masthead + issues/clean.yaml)."""
    target = tmp_path / "project"
    shutil.copytree(FIXTURE, target, ignore=NO_STATE)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def build(root: Path, mode: str = "auto") -> BuiltIssue:
    return build_issue(load_project(root), root / ISSUE, mode)  # type: ignore[arg-type]


def by_code(checks: list[Check]) -> dict[str, Check]:
    return {c.code: c for c in checks}


def warnings_of(built: BuiltIssue) -> list[str]:
    return [c.code for c in run_checks(built) if c.level == "warning"]


def test_a_clean_issue_passes_every_check(root: Path) -> None:
    built = build(root)
    checks = run_checks(built)
    assert [c.code for c in checks] == OK_CODES
    # The fixture's image is sized with `height:auto`, which Yahoo Mail drops: a note, no more.
    assert {c.level for c in checks if c.code != "client-support"} == {"ok"}
    assert by_code(checks)["client-support"].level in ("ok", "info")
    assert built.warnings == []
    assert "KB left; mode full" in by_code(checks)["size"].message


def test_a_long_subject_warns_and_reaches_the_build(root: Path) -> None:
    edit(
        root / ISSUE,
        "news of May 2024",
        "news of May 2024, with everything that happened across the region",
    )
    built = build(root)
    check = by_code(run_checks(built))["subject-long"]
    assert check.level == "warning" and "characters" in check.message
    assert check.message in built.warnings  # compose build prints it; --strict fails on it


@pytest.mark.parametrize(
    ("preheader", "code"),
    [
        (None, "preheader-missing"),
        ("Too short to fill the line", "preheader-short"),
        ("A preheader that goes on " * 6, "preheader-long"),
    ],
)
def test_preheader_length(root: Path, preheader: str | None, code: str) -> None:
    old = (
        'preheader: "Border training, a new report on illicit finance, and a family skills pilot"\n'
    )
    edit(root / ISSUE, old, "" if preheader is None else f'preheader: "{preheader.strip()}"\n')
    assert warnings_of(build(root)) == [code]


def test_http_links_warn_but_mailto_does_not(root: Path) -> None:
    edit(
        root / ISSUE,
        "(https://preview.example.org/training)",
        "(http://preview.example.org/training)",
    )
    checks = by_code(run_checks(build(root)))
    assert checks["http-link"].level == "warning"
    assert "http://preview.example.org/training" in checks["http-link"].message
    assert "mailto" not in checks["http-link"].message


def test_images_without_width_and_height_warn(root: Path) -> None:
    edit(root / ISSUE, ", width: 552, height: 310}", ", width: 552}")
    checks = by_code(run_checks(build(root)))
    assert checks["image-size"].level == "warning"
    assert "search.jpg" in checks["image-size"].message


def test_a_pale_pillar_colour_fails_contrast(root: Path) -> None:
    edit(
        root / "newsletter.yaml",
        '{title: Second pillar, color: "#8a3b8f"}',
        '{title: Second pillar, color: "#ffff00"}',
    )
    checks = [c for c in run_checks(build(root)) if c.code == "pillar-contrast"]
    assert len(checks) == 1
    assert "pillar II" in checks[0].message and "#ffff00" in checks[0].message
    assert "1.07:1" in checks[0].message


def test_contrast_ratio_matches_wcag() -> None:
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(
        4.54, abs=0.01
    )  # the AA limit grey
    assert contrast_ratio("#ffff00", "#ffffff") == pytest.approx(1.07, abs=0.01)


def test_missing_unsubscribe_link_and_address_warn(root: Path) -> None:
    built = build(root)
    no_link = dataclasses.replace(
        built,
        email_html=built.email_html.replace(UNSUBSCRIBE_PLACEHOLDER, "https://example.org/"),
    )
    check = by_code(run_checks(no_link))["unsubscribe-missing"]
    assert "email.html" in check.message and "email.txt" not in check.message

    address = built.newsletter.postal_address
    no_address = dataclasses.replace(built, email_txt=built.email_txt.replace(address, ""))
    check = by_code(run_checks(no_address))["footer-missing"]
    assert "email.txt" in check.message and "email.html" not in check.message


def test_the_address_in_an_attribute_is_not_a_footer(root: Path) -> None:
    built = build(root)
    address = built.newsletter.postal_address
    html = built.email_html.replace(address, "").replace("<body", f'<body title="{address}"', 1)
    assert "footer-missing" in by_code(run_checks(dataclasses.replace(built, email_html=html)))


def test_size_is_never_a_second_warning(root: Path) -> None:
    edit(root / "newsletter.yaml", "max_email_kb: 90", "max_email_kb: 10")
    built = build(root, mode="full")  # over budget: the size guard warns once
    size = by_code(run_checks(built))["size"]
    assert size.level == "info" and "over" in size.message
    assert len(built.warnings) == 1 and built.warnings[0].startswith("OVER BUDGET")
    # The preview panel and `compose check` list the guard's warning once, first.
    reported = built.checks
    assert [c.code for c in reported].count("size-budget") == 1
    assert reported[0] == Check("size-budget", "warning", built.warnings[0])


def test_digest_mode_is_reported_in_the_size_check(root: Path) -> None:
    built = build(root, mode="digest")
    size = by_code(run_checks(built))["size"]
    assert "mode digest" in size.message and size.level in ("ok", "info")


def test_compose_check_lists_every_check_and_exits_0_when_clean(root: Path) -> None:
    result = run_compose("--project", root, "check", root / ISSUE)
    assert result.code == 0, result.stderr
    for code in OK_CODES:
        assert f"  {code}" in result.stdout


def test_compose_check_exits_1_on_any_warning(root: Path) -> None:
    edit(
        root / ISSUE,
        "(https://preview.example.org/training)",
        "(http://preview.example.org/training)",
    )
    result = run_compose("--project", root, "check", root / ISSUE)
    assert result.code == 1
    assert "http-link" in result.stdout
    assert "1 warning(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_compose_build_strict_fails_on_a_check(root: Path, tmp_path: Path) -> None:
    edit(root / "newsletter.yaml", 'color: "#8a3b8f"', 'color: "#ffff00"')
    result = run_compose(
        "--project", root, "build", root / ISSUE, "--out", tmp_path / "out", "--strict"
    )
    assert result.code == 1
    assert "pillar II colour #ffff00" in result.stderr
