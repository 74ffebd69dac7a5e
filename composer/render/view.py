"""The view of an issue that templates read: contacts resolved, pillars grouped, anchors assigned."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup

from composer.issue.model import Article, Contact, ContactRef, Issue, Newsletter, Pillar, Section
from composer.issue.sdg import SdgTarget
from composer.issue.sdg import resolve as resolve_target
from composer.render import markdown

_NON_WORD = re.compile(r"[^a-z0-9]+")
# A sentence ends at . ! ? (optionally closing a quote or bracket) before a space and a capital.
_SENTENCE_END = re.compile(r"[.!?][”\"’)]?(?=\s+[A-Z“\"‘(0-9])")
TEASER_CHARS = 320
ANCHOR_CHARS = 60  # anchors are whole words up to this long
LONG_SENTENCE_CHARS = 480  # a first sentence up to this long is kept whole in a teaser
# Words a cut sentence should not end on.
_WEAK_LAST_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
        "which",
        "who",
        "that",
        "its",
        "their",
    ]
)


@dataclass(frozen=True)
class ArticleView:
    article: Article
    anchor: str
    url: str  # the article in the web version
    body_html: Markup
    teaser_html: Markup
    teaser_md: str
    contacts: list[Contact]
    sdg: list[SdgTarget] = field(default_factory=list)  # the article's targets, with wording
    sdg_wording: bool = True  # newsletter.yaml `sdg_targets: builtin`

    @property
    def sdg_lines(self) -> list[str]:
        """The footer lines naming the SDG targets, in English."""
        return sdg_lines(self)


def _untranslated(message: str) -> str:
    return message


def sdg_lines(article: ArticleView, gettext: Callable[[str], str] = _untranslated) -> list[str]:
    """The footer lines naming the SDG targets, one per target when their wording is shown.

    The targets' wording is the UN's official English text, in every language.
    """
    if not article.sdg:
        return []
    if article.sdg_wording:
        line = gettext("Contributes to SDG %(key)s: %(text)s.")
        return [line % {"key": t.key, "text": t.text} for t in article.sdg]
    keys = ", ".join(t.key for t in article.sdg)
    if any(t.is_goal for t in article.sdg):
        return [gettext("Contributes to SDG %(keys)s") % {"keys": keys}]
    if len(article.sdg) > 1:
        return [gettext("Contributes to SDG targets %(keys)s") % {"keys": keys}]
    return [gettext("Contributes to SDG target %(keys)s") % {"keys": keys}]


@dataclass(frozen=True)
class SectionView:
    section: Section
    anchor: str
    intro_html: Markup | None
    contacts: list[Contact]
    articles: list[ArticleView]


@dataclass(frozen=True)
class PillarGroup:
    """Consecutive sections under one pillar band (pillar None: no band)."""

    key: str | None
    pillar: Pillar | None
    sections: list[SectionView] = field(default_factory=list)


@dataclass(frozen=True)
class IssueView:
    issue: Issue
    newsletter: Newsletter
    slug: str
    web_url: str
    intro_html: Markup | None
    groups: list[PillarGroup]
    footer_contacts: list[Contact]
    omitted_sections: int = 0  # `tailor: only` left these out; the email links to the rest

    @property
    def contact_address(self) -> str:
        """Where readers reach a contact who has no address of their own: reply-to, else from."""
        return (self.newsletter.reply_to or self.newsletter.from_).email

    @property
    def sections(self) -> list[SectionView]:
        return [s for g in self.groups for s in g.sections]

    @property
    def article_count(self) -> int:
        return sum(len(s.articles) for s in self.sections)


def slugify(text: str, limit: int = ANCHOR_CHARS) -> str:
    """An ASCII anchor for a title, whole words only: 'UNODC joins …' -> 'unodc-joins-…'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = _NON_WORD.sub("-", ascii_text.lower()).strip("-").split("-")
    kept: list[str] = []
    for word in words:
        if kept and len("-".join([*kept, word])) > limit:
            break
        kept.append(word)
    return "-".join(kept)[:limit] or "item"


def build_view(
    issue: Issue,
    newsletter: Newsletter,
    slug: str,
    anchors_from: Issue | None = None,
    edition: str | None = None,
) -> IssueView:
    """Resolve everything templates need once, so templates only lay out.

    `anchors_from`: the issue as written, when `issue` is a translation of it: anchors come
    from the original titles so every edition links to the same places in the web version.
    `edition`: a translation's language: its web version is `<slug>/<edition>/`.
    """
    titles = _titles(anchors_from or issue)
    web_url = newsletter.web_url(slug) + (f"{edition}/" if edition else "")
    used: set[str] = set()

    def anchor(title: str) -> str:
        base = slugify(title)
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}-{n}", n + 1
        used.add(candidate)
        return candidate

    groups: list[PillarGroup] = []
    for s, section in enumerate(issue.sections):
        key = section.pillar
        if not groups or groups[-1].key != key:
            groups.append(PillarGroup(key, newsletter.pillars.get(key) if key else None))
        # Anchors in reading order, so an item added later never renames an earlier one.
        section_anchor = anchor(titles[s][0])
        articles = [
            _article_view(a, anchor(titles[s][1][n]), web_url, newsletter)
            for n, a in enumerate(section.articles)
        ]
        groups[-1].sections.append(
            SectionView(
                section=section,
                anchor=section_anchor,
                intro_html=_md(section.intro),
                contacts=resolve_contacts(section.contacts, newsletter),
                articles=articles,
            )
        )
    footer_refs = (
        issue.footer_contacts if issue.footer_contacts is not None else newsletter.footer_contacts
    )
    return IssueView(
        issue=issue,
        newsletter=newsletter,
        slug=slug,
        web_url=web_url,
        intro_html=_md(issue.intro),
        groups=groups,
        footer_contacts=resolve_contacts(footer_refs, newsletter),
    )


def _titles(issue: Issue) -> list[tuple[str, list[str]]]:
    return [(s.title, [a.title for a in s.articles]) for s in issue.sections]


def resolve_contacts(refs: list[ContactRef], newsletter: Newsletter) -> list[Contact]:
    """Contact keys looked up in newsletter.yaml; inline contacts as given (validation ran before)."""
    return [newsletter.contacts[ref] if isinstance(ref, str) else ref for ref in refs]


def resolve_sdg(keys: list[str]) -> list[SdgTarget]:
    """Targets (or goals) with their official wording; validation has refused unknown keys."""
    return [target for key in keys if (target := resolve_target(key)) is not None]


def teaser_source(article: Article, limit: int = TEASER_CHARS) -> str:
    """The teaser's Markdown: the summary, else the body's first paragraph cut at a sentence end.

    Seed articles are often one long paragraph, so "the first paragraph" alone would make the
    digest as long as the full issue: the teaser is the whole sentences that fit in `limit`
    characters, else the first sentence when it stays under LONG_SENTENCE_CHARS, and only a
    sentence longer than that is cut at a word end, with an ellipsis.
    """
    if article.summary:
        return article.summary
    blocks = markdown.paragraphs(article.body)
    first = blocks[0] if blocks else article.body
    if len(first) <= limit:
        return first
    ends = [m.end() for m in _SENTENCE_END.finditer(first) if _balanced(first[: m.end()])]
    fitting = [end for end in ends if end <= limit]
    if fitting:
        return first[: fitting[-1]].rstrip()
    sentence = ends[0] if ends else len(first)
    if sentence <= LONG_SENTENCE_CHARS:
        return first[:sentence].rstrip()
    words = first[:limit].rsplit(" ", 1)[0].split(" ")
    while len(words) > 1 and words[-1].lower().strip(",;:") in _WEAK_LAST_WORDS:
        words.pop()  # "... in the field of …" reads better as "... in the field …"
    cut = " ".join(words).rstrip(",;:")
    return (cut if _balanced(cut) else first) + " …"


def _balanced(text: str) -> bool:
    """No Markdown link or emphasis left open by a cut."""
    return (
        text.count("[") == text.count("]")
        and text.count("(") == text.count(")")
        and text.count("*") % 2 == 0
    )


def _article_view(
    article: Article, anchor: str, web_url: str, newsletter: Newsletter
) -> ArticleView:
    teaser = teaser_source(article)
    return ArticleView(
        article=article,
        anchor=anchor,
        url=f"{web_url}#{anchor}",
        body_html=Markup(markdown.to_html(article.body)),
        teaser_html=Markup(markdown.to_html(teaser)),
        teaser_md=teaser,
        contacts=resolve_contacts(article.contacts, newsletter),
        sdg=resolve_sdg(article.sdg),
        sdg_wording=newsletter.sdg_targets == "builtin",
    )


def _md(text: str | None) -> Markup | None:
    return Markup(markdown.to_html(text)) if text else None
