"""The preview's "view as": the issue as one edition and interest set, or one reader, gets it.

Every variant of the issue (edition x subset of its pillars) is built with the same
build_variant() a send uses, so the preview's checks run on each of them; a reader of a list
is shown their variant with their merge values filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from composer.audience import address_key, list_names, select
from composer.build import BuiltIssue, build_variant
from composer.delivery.variants import reader_columns
from composer.errors import ComposeError
from composer.issue import merge
from composer.modes import Mode
from composer.project import Project
from composer.render import variants
from composer.render.checks import Check
from composer.render.variants import VariantKey

MAX_READERS_SCANNED = 200_000  # a reader further down a list is not worth a frozen preview


@dataclass(frozen=True)
class VariantBuilds:
    """Every variant of one build, keyed by variant; the default is the build itself."""

    default: VariantKey
    builds: Mapping[VariantKey, BuiltIssue]

    def describe(self) -> list[dict[str, str]]:
        """The variants as the page's "view as" list offers them."""
        return [
            {"language": k.language, "interests": ";".join(k.interests), "label": k.label}
            for k in self.builds
        ]


def build_variants(
    project: Project, issue_path: Path, built: BuiltIssue, mode: Mode
) -> VariantBuilds:
    """Build every other variant of `built` (none when the issue has no translations or tailor)."""
    issue = built.loaded
    default = VariantKey(built.language, built.interests)
    builds: dict[VariantKey, BuiltIssue] = {default: built}
    if issue is None:
        return VariantBuilds(default, builds)
    slots = variants.issue_slots(issue)
    for key in variants.all_variants(issue, project.newsletter):
        if key not in builds:
            builds[key] = build_variant(
                project, issue_path, issue, mode,
                language=key.language, interests=key.interests, slots=slots,
            )  # fmt: skip
    return VariantBuilds(default, builds)


def variant_checks(found: VariantBuilds) -> tuple[Check, ...]:
    """The warnings of the other variants that the default does not have, naming the variant."""
    default = found.builds[found.default]
    seen = {(c.code, c.message) for c in default.checks}
    extra: list[Check] = []
    for key, built in found.builds.items():
        for check in built.checks:
            if check.level == "warning" and (check.code, check.message) not in seen:
                seen.add((check.code, check.message))
                extra.append(Check(check.code, check.level, f"[{key.label}] {check.message}"))
    return tuple(extra)


@dataclass(frozen=True)
class View:
    """What the preview shows: one variant, with merge values (defaults unless a reader)."""

    built: BuiltIssue
    values: tuple[str, ...]
    label: str

    @property
    def subject(self) -> str:
        return merge.fill(self.built.subject, self.values)

    @property
    def preheader(self) -> str:
        return merge.fill(self.built.issue.preheader or "", self.values)

    def part(self, name: str) -> str:
        """email.html, email.txt or web.html of this view, merge fields filled."""
        if name == "email.html":
            return merge.fill(self.built.email_html, self.values, escape=True)
        if name == "email.txt":
            return merge.fill(self.built.email_txt, self.values)
        return self.built.web_html


def resolve_view(project: Project, found: VariantBuilds, params: Mapping[str, str]) -> View:
    """The view the query asks for: `lang` + `interests`, or `list` + `reader`; ValueError
    with a sentence when it cannot be shown."""
    default = found.builds[found.default]
    issue = default.loaded
    reader = params.get("reader", "").strip()
    if reader and issue is not None:
        return _reader_view(project, found, params.get("list", ""), reader)
    language = params.get("lang") or found.default.language
    interests = tuple(p for p in params.get("interests", "").split(";") if p)
    key = VariantKey(language, interests)
    if key not in found.builds:
        raise ValueError(f"no variant {key.label} in this issue")
    built = found.builds[key]
    return View(built, built.defaults, key.label)


def _reader_view(project: Project, found: VariantBuilds, list_name: str, reader: str) -> View:
    if list_name not in list_names(project):
        raise ValueError(f"no list '{list_name}' in subscribers/")
    issue = found.builds[found.default].loaded
    assert issue is not None
    wanted = address_key(reader)
    try:
        selection = select(project, list_name, skip_invalid=True)
    except ComposeError as exc:
        raise ValueError(str(exc)) from None
    assert selection.recipients is not None
    for n, recipient in enumerate(selection.recipients):
        if n >= MAX_READERS_SCANNED:
            break
        if recipient.key != wanted:
            continue
        columns = reader_columns(recipient)
        key = variants.variant_for(
            issue, project.newsletter, columns.get("language"), columns.get("interests")
        )
        built = found.builds.get(key) or found.builds[found.default]
        values = merge.reader_values(list(built.merge_fields), columns)
        return View(built, values, f"{recipient.email} ({key.label})")
    raise ValueError(f"{reader} is not a reader of '{list_name}' who would get this issue")
