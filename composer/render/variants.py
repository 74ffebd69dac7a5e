"""What makes one reader's issue differ from another's: edition (language) and pillar interests.

A variant is the issue as one group of readers gets it: translated into their edition, its
sections tailored to their interests (`tailor: lead | only`). Merge fields are not part of a
variant: they are markers filled per reader after the variant has been rendered once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from composer.issue.merge import Slots
from composer.issue.model import Article, Issue, Newsletter, Section, SectionText
from composer.render.view import IssueView, PillarGroup, SectionView

INTEREST_SEPARATOR = ";"


@dataclass(frozen=True, order=True)
class VariantKey:
    """One edition x one set of pillar interests (in the issue's pillar order)."""

    language: str
    interests: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """`sr-Latn, pillars I+III` as `--dry-run` and the preview show it."""
        pillars = "+".join(self.interests) if self.interests else "as written"
        return f"{self.language}, {pillars}"


def editions(issue: Issue, newsletter: Newsletter) -> list[str]:
    """The languages this issue exists in: the default first, then its translations."""
    default = newsletter.default_language
    return [default, *(lang for lang in newsletter.languages if lang in issue.translations)]


def edition_for(issue: Issue, newsletter: Newsletter, language: str | None) -> str:
    """The edition a reader's `language` cell picks: exact (any case), else by primary
    subtag (`sr` -> `sr-Latn`), else the default."""
    offered = editions(issue, newsletter)
    wanted = (language or "").strip().replace("_", "-").lower()
    if not wanted:
        return offered[0]
    for tag in offered:
        if tag.lower() == wanted:
            return tag
    primary = wanted.split("-")[0]
    for tag in offered:
        if tag.lower().split("-")[0] == primary:
            return tag
    return offered[0]


def pillars_in(issue: Issue) -> list[str]:
    """The pillars the issue's sections belong to, in the order they first appear."""
    seen: list[str] = []
    for section in issue.sections:
        if section.pillar is not None and section.pillar not in seen:
            seen.append(section.pillar)
    return seen


def interests_for(issue: Issue, cell: str | None) -> tuple[str, ...]:
    """The reader's interests that tailoring acts on: those the issue has, in its order.

    `tailor: off`, an empty cell or interests the issue has no section for: () (as written).
    """
    if issue.tailor == "off" or not cell:
        return ()
    wanted = {part.strip() for part in cell.split(INTEREST_SEPARATOR) if part.strip()}
    return tuple(p for p in pillars_in(issue) if p in wanted)


def variant_for(
    issue: Issue, newsletter: Newsletter, language: str | None, interests: str | None
) -> VariantKey:
    """The variant one reader gets, from their `language` and `interests` cells."""
    return VariantKey(edition_for(issue, newsletter, language), interests_for(issue, interests))


def all_variants(issue: Issue, newsletter: Newsletter) -> list[VariantKey]:
    """Every variant the issue can have: editions x subsets of its pillars (for the preview)."""
    sets: list[tuple[str, ...]] = [()]
    if issue.tailor != "off":
        pillars = pillars_in(issue)
        for size in range(1, len(pillars) + 1):
            sets.extend(_combinations(pillars, size))
    return [VariantKey(lang, s) for lang in editions(issue, newsletter) for s in sets]


def _combinations(items: list[str], size: int) -> Iterable[tuple[str, ...]]:
    from itertools import combinations

    return combinations(items, size)


def translate(issue: Issue, language: str) -> Issue:
    """The issue in `language`: each text its translation gives, the original elsewhere."""
    text = issue.translations.get(language)
    if text is None:
        return issue
    sections = list(issue.sections)
    if text.sections is not None:
        sections = [
            _section(section, given)
            for section, given in zip(issue.sections, text.sections, strict=False)
        ]
    return issue.model_copy(
        update={
            "subject": text.subject or issue.subject,
            "preheader": text.preheader if text.preheader is not None else issue.preheader,
            "intro": text.intro if text.intro is not None else issue.intro,
            "sections": sections,
        }
    )


def _section(section: Section, given: object) -> Section:
    if not isinstance(given, SectionText):
        return section
    articles = list(section.articles)
    if given.articles is not None:
        articles = [
            _article(article, other)
            for article, other in zip(section.articles, given.articles, strict=False)
        ]
    return section.model_copy(
        update={
            "title": given.title or section.title,
            "intro": given.intro if given.intro is not None else section.intro,
            "articles": articles,
        }
    )


def _article(article: Article, given: object) -> Article:
    if given is None:
        return article
    update = {
        key: value
        for key, value in given.model_dump(exclude_none=True).items()  # type: ignore[attr-defined]
    }
    return article.model_copy(update=update)


def mark_fields(issue: Issue, slots: Slots) -> Issue:
    """The issue with each merge field replaced by its marker (the texts that may hold them)."""
    sections = [
        section.model_copy(
            update={
                "intro": slots.mark(section.intro),
                "articles": [
                    a.model_copy(
                        update={"body": slots.mark(a.body), "summary": slots.mark(a.summary)}
                    )
                    for a in section.articles
                ],
            }
        )
        for section in issue.sections
    ]
    return issue.model_copy(
        update={
            "subject": slots.mark(issue.subject),
            "preheader": slots.mark(issue.preheader),
            "intro": slots.mark(issue.intro),
            "sections": sections,
        }
    )


def issue_slots(issue: Issue) -> Slots:
    """Every merge field of the issue and its translations, numbered once for all variants."""
    slots = Slots()
    mark_fields(issue, slots)
    for language in issue.translations:
        mark_fields(translate(issue, language), slots)
    return slots


def tailor_view(view: IssueView, interests: tuple[str, ...], mode: str) -> IssueView:
    """The view with the reader's pillars first (`lead`) or alone with un-pillared sections
    (`only`); anchors stay as the web version has them."""
    if mode == "off" or not interests:
        return view
    sections = view.sections
    theirs = [s for s in sections if s.section.pillar in interests]
    if mode == "lead":
        kept = theirs + [s for s in sections if s.section.pillar not in interests]
    else:
        kept = [s for s in sections if s.section.pillar in interests or s.section.pillar is None]
    return replace(view, groups=_regroup(kept, view), omitted_sections=len(sections) - len(kept))


def _regroup(sections: list[SectionView], view: IssueView) -> list[PillarGroup]:
    groups: list[PillarGroup] = []
    pillars = view.newsletter.pillars
    for section in sections:
        key = section.section.pillar
        if not groups or groups[-1].key != key:
            groups.append(PillarGroup(key, pillars.get(key) if key else None))
        groups[-1].sections.append(section)
    return groups
