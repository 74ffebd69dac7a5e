"""Every reader their own issue: the distinct variants of a send, each rendered once.

A send first reads its readers once to find the variants among them (edition x pillar
interests), renders and inlines each variant once, and gives each reader a `Fill`: which
variant, and their merge values. The message for a reader is then the cheap fill that
personalises the unsubscribe link, with no re-rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience import Recipient, Selection
from composer.build import BuiltIssue, build_variant
from composer.delivery.audience import Audience
from composer.delivery.dkim import DkimSigner
from composer.delivery.message import Fill, MessageTemplate
from composer.errors import ComposeError
from composer.issue import merge
from composer.issue.model import Issue, Newsletter
from composer.modes import Mode
from composer.project import Project, display_path
from composer.render import variants
from composer.render.checks import PREHEADER_MAX, SUBJECT_MAX
from composer.render.variants import VariantKey

LANGUAGE_COLUMN = "language"
INTERESTS_COLUMN = "interests"
BUILTIN_FIELDS = frozenset({"email", "name"})  # every list has these


def reader_columns(recipient: Recipient) -> dict[str, str]:
    """What merge fields and variants read of a reader: their columns, email and name."""
    return {**recipient.attributes, "email": recipient.email, "name": recipient.name}


@dataclass
class VariantPlan:
    """The variants a send needs, how many readers each has, and each rendered once."""

    issue: Issue  # as loaded: what a reader's cells are matched against
    keys: list[VariantKey]
    counts: list[int]
    builts: list[BuiltIssue]
    fields: tuple[merge.Field, ...]
    warnings: list[str] = field(default_factory=list)
    _index: dict[VariantKey, int] = field(default_factory=dict, repr=False)
    _memo: dict[tuple[str | None, str | None], int] = field(default_factory=dict, repr=False)

    @property
    def needs_fill(self) -> bool:
        """Whether readers differ at all: several variants, or merge fields to fill."""
        return len(self.builts) > 1 or bool(self.fields)

    def fill_for(self, newsletter: Newsletter, columns: dict[str, str]) -> Fill:
        """One reader's variant and merge values."""
        cells = (columns.get(LANGUAGE_COLUMN), columns.get(INTERESTS_COLUMN))
        index = self._memo.get(cells)
        if index is None:  # a list has few distinct cells: each is matched once
            key = variants.variant_for(self.issue, newsletter, *cells)
            index = self._memo[cells] = self._index.get(key, 0)
        values = merge.reader_values(self.fields, columns) if self.fields else ()
        return Fill(index, values)

    def template(self, newsletter: Newsletter, list_name: str) -> MessageTemplate:
        """One message template for the whole send (a VariantTemplate when there are several)."""
        if len(self.builts) == 1:
            return MessageTemplate(self.builts[0], newsletter, list_name)
        return VariantTemplate(self.builts, newsletter, list_name)


def missing_fields(fields: Iterable[merge.Field], selection: Selection) -> list[str]:
    """The merge fields the list has no column for (`email` and `name` every list has)."""
    columns = set(selection.columns) | BUILTIN_FIELDS
    return sorted({f.name for f in fields} - columns)


def plan_variants(
    project: Project,
    issue_path: Path,
    issue: Issue | None,
    audience: Audience | None,
    mode: Mode = "auto",
    prebuilt: BuiltIssue | None = None,
) -> VariantPlan:
    """Find the variants among the selected readers and render each once; refuse, before
    anything is sent, a merge field the list has no column for."""
    newsletter = project.newsletter
    if issue is None:
        raise ValueError("plan_variants needs the loaded issue")
    slots = variants.issue_slots(issue)
    fields = tuple(slots.fields)
    for selection in audience.selections if audience is not None else ():
        if missing := missing_fields(fields, selection):
            shown = ", ".join(f"'{name}'" for name in missing)
            # Exit 1, as for an invalid file: the issue and the list do not fit together.
            raise ComposeError(
                f"the issue uses the merge field{'s' if len(missing) > 1 else ''} {shown} but "
                f"the list '{selection.list_name}' ({display_path(selection.path)}) has no such "
                "column; nothing was sent: add the column, give the field a default and remove "
                "it, or send to a list that has it"
            )
    counts: dict[VariantKey, int] = {}
    warnings: list[str] = []
    possible = variants.all_variants(issue, newsletter)
    if audience is None:
        counts[variants.variant_for(issue, newsletter, None, None)] = 0
    elif len(possible) == 1 and not fields:  # one message for all: no pass over the lists
        counts[possible[0]] = audience.count
    else:
        long = _LongTexts(issue, fields)
        paths = {s.list_name: s.path for s in audience.selections}
        for list_name, chunk in audience.chunks():
            for recipient in chunk:
                columns = reader_columns(recipient)
                key = variants.variant_for(
                    issue, newsletter, columns.get(LANGUAGE_COLUMN), columns.get(INTERESTS_COLUMN)
                )
                counts[key] = counts.get(key, 0) + 1
                long.see(key.language, columns, recipient, paths[list_name])
        warnings = long.warnings()
        if not counts:
            counts[variants.variant_for(issue, newsletter, None, None)] = 0
    keys = sorted(counts)
    builts = [
        prebuilt
        if prebuilt is not None
        and (prebuilt.language, prebuilt.interests) == (key.language, key.interests)
        else build_variant(
            project,
            issue_path,
            issue,
            mode,
            language=key.language,
            interests=key.interests,
            slots=slots,
            email_only=True,  # a send needs neither web versions nor checks of each variant
        )
        for key in keys
    ]
    return VariantPlan(
        issue,
        keys,
        [counts[k] for k in keys],
        builts,
        fields,
        warnings,
        {k: n for n, k in enumerate(keys)},
    )


class _LongTexts:
    """Notices a subject or preheader that the reader's merge values make too long."""

    def __init__(self, issue: Issue, fields: tuple[merge.Field, ...]) -> None:
        self.fields = list(fields)
        self.texts: dict[str, tuple[str, str]] = {}
        slots = merge.Slots()
        for field_ in fields:
            slots.marker(field_)  # the same numbering as the send's
        for language in [None, *issue.translations]:
            edition = variants.translate(issue, language) if language else issue
            self.texts[language or ""] = (
                slots.mark(edition.subject) or "",
                slots.mark(edition.preheader) or "",
            )
        self.issue = issue
        self.examples: dict[str, tuple[int, Recipient, Path]] = {}
        self.active = any(
            merge.MARKER.search(subject + preheader) for subject, preheader in self.texts.values()
        )

    def see(self, language: str, columns: dict[str, str], recipient: Recipient, path: Path) -> None:
        if not self.active:
            return
        subject, preheader = self.texts.get(language, self.texts[""])
        values = merge.reader_values(self.fields, columns)
        for kind, text, limit in (
            ("subject", subject, SUBJECT_MAX),
            ("preheader", preheader, PREHEADER_MAX),
        ):
            if not text or not merge.MARKER.search(text):
                continue
            length = len(merge.fill(text, values))
            if length > limit and length > self.examples.get(kind, (0, recipient, path))[0]:
                self.examples[kind] = (length, recipient, path)

    def warnings(self) -> list[str]:
        out = []
        for kind, (length, reader, path) in sorted(self.examples.items()):
            limit = SUBJECT_MAX if kind == "subject" else PREHEADER_MAX
            out.append(
                f"{kind} becomes {length} characters for some readers (inboxes show about "
                f"{limit}), e.g. {reader.email} ({display_path(path)}:{reader.line})"
            )
        return out


class VariantTemplate(MessageTemplate):
    """Several variants behind one template: each reader's `Fill` picks theirs."""

    def __init__(
        self,
        builts: Sequence[BuiltIssue],
        newsletter: Newsletter,
        list_name: str,
        *,
        seven_bit: bool = False,
    ) -> None:
        super().__init__(builts[0], newsletter, list_name, seven_bit=seven_bit)
        self.builts = list(builts)
        self.variants = [self] + [
            MessageTemplate(built, newsletter, list_name, seven_bit=seven_bit)
            for built in builts[1:]
        ]
        self.eight_bit = any(t.eight_bit for t in self.variants[1:]) or self.eight_bit

    def seven_bit(self) -> MessageTemplate:
        if not self.eight_bit:
            return self
        return VariantTemplate(self.builts, self.newsletter, self.list_name, seven_bit=True)

    def personalize(
        self,
        recipient_email: str,
        recipient_name: str | None,
        unsubscribe_url: str,
        *,
        token: str | None = None,
        message_id: str | None = None,
        smtp_data: bool = False,
        list_name: str | None = None,
        dkim: DkimSigner | None = None,
        fill: Fill | None = None,
    ) -> bytes:
        """The reader's variant, personalised."""
        index = fill.variant if fill is not None else 0
        chosen = self if index == 0 else self.variants[index]
        return MessageTemplate.personalize(
            chosen, recipient_email, recipient_name, unsubscribe_url, token=token,
            message_id=message_id, smtp_data=smtp_data, list_name=list_name, dkim=dkim,
            fill=fill,
        )  # fmt: skip


def describe(plan: VariantPlan) -> list[str]:
    """One line per variant for `send --dry-run`: readers, mode and size."""
    lines = []
    for key, count, built in zip(plan.keys, plan.counts, plan.builts, strict=True):
        lines.append(
            f"  variant {key.label}: {count} reader{'s' if count != 1 else ''}, "
            f"{built.mode}, email.html {built.email_size / 1024:.1f} KB"
        )
    return lines
