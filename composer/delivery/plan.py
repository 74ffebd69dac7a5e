"""Everything a send decides before the first message: build, audience, transport, what's left."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience import Recipient, Selection, address_key, select
from composer.build import BuiltIssue, Mode, build_issue
from composer.delivery.audience import Audience
from composer.delivery.log import FAILED, LOG_FILE, REFUSED, SENT, UNKNOWN, DeliveryLog
from composer.delivery.message import MessageTemplate, check_address
from composer.delivery.schedule import Schedule, check_horizon, from_timestamp, parse_at
from composer.delivery.settings import Settings, resolve_settings
from composer.delivery.tokens import TEST_COPY, load_secret, make_token
from composer.delivery.transports import make_transport
from composer.delivery.transports.base import Envelope, Transport, message_for
from composer.delivery.variants import VariantPlan, plan_variants
from composer.errors import ComposeError, InvalidInput, Problem, SendRefused, UsageError
from composer.events.retry import hand_back_soft_bounces
from composer.issue.load import load_issue
from composer.issue.model import Issue
from composer.project import STATE_DIR, Project, display_path

TEST_LIST = "test"
TEST_OUTBOX = "test"


@dataclass
class SendPlan:
    """A send ready to go: the issue rendered once, the audience checked, the transport built."""

    project: Project
    built: BuiltIssue
    list_names: list[str]  # in the order given: an address on two lists is reached by the first
    segment: str | None
    audience: Audience | None  # None for test copies
    settings: Settings
    template: MessageTemplate
    transport: Transport
    secret: bytes = field(repr=False)
    already_sent: int = 0
    refused_before: int = 0  # refused for good in an earlier run: never retried
    unknown_before: int = 0  # outcome unknown in an earlier run: retried only with retry_unknown
    retry_unknown: bool = False
    schedule: Schedule | None = None  # --at
    waves: Counter[dt.datetime] = field(default_factory=Counter)  # when -> readers still to go
    variants: VariantPlan | None = None  # the variants among the readers (each rendered once)

    @property
    def warnings(self) -> list[str]:
        """What the officer should know before this send goes: the build's, the variants', and
        settings this transport cannot honour."""
        found = [*self.built.warnings, *(self.variants.warnings if self.variants else [])]
        if self.project.newsletter.tracking.opens and self.transport.name != "sendgrid":
            found.append(
                "tracking.opens counts opens only for SendGrid sends (its own pixel); composer "
                f"adds no pixel of its own, so this {self.transport.name} send counts none"
            )
        return found

    @property
    def issue(self) -> str:
        """The key of the issue in the delivery log (its file stem)."""
        return self.built.slug

    @property
    def source(self) -> str:
        """The issue file as the delivery log records it (relative to the project)."""
        return source_key(self.project, self.built.source)

    @property
    def fingerprint(self) -> str:
        """Which issue this is, whatever its file is called."""
        return issue_fingerprint(self.built.loaded or self.built.issue)  # as its file says it

    @property
    def done_states(self) -> frozenset[str]:
        """States a run skips: sent, refused for good, and unknown unless asked to retry."""
        done = {SENT, REFUSED}
        if not self.retry_unknown:
            done.add(UNKNOWN)
        return frozenset(done)

    @property
    def list_name(self) -> str:
        """The first list: the one test copies and the message's defaults are made for."""
        return self.list_names[0]

    @property
    def recipients(self) -> int:
        """How many distinct readers the lists (and segment) reach."""
        return self.audience.count if self.audience is not None else 0

    @property
    def pending(self) -> int:
        """How many of them this run will try (not sent, not refused, not left as unknown)."""
        skipped_unknown = 0 if self.retry_unknown else self.unknown_before
        return self.recipients - self.already_sent - self.refused_before - skipped_unknown

    @property
    def content_sha(self) -> str:
        """A fingerprint of what is sent, to notice an issue edited between runs."""
        digest = hashlib.sha256()
        builts = self.variants.builts if self.variants is not None else [self.built]  # issue 12
        for built in builts:
            for part in (built.subject, built.email_txt, built.email_html):
                digest.update(part.encode("utf-8") + b"\0")
        return digest.hexdigest()[:16]

    def envelope(
        self,
        email: str,
        key: str,
        name: str,
        list_name: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> Envelope:
        """The envelope of one recipient, with their personal unsubscribe link for their list
        (and their variant and merge values, read from `attributes`)."""
        list_name = list_name or self.list_name
        token = make_token(self.secret, list_name, key)
        news = self.project.newsletter
        fill = None
        if self.variants is not None and self.variants.needs_fill:
            columns = {**(attributes or {}), "email": email, "name": name}
            fill = self.variants.fill_for(news, columns)
        link = news.unsubscribe_link(token)
        return Envelope(key, email, name, link, token, list_name=list_name, fill=fill)

    def reader_envelope(self, reader: Recipient, list_name: str) -> Envelope:
        """The envelope of one reader of the audience, reached through `list_name` (with its
        send_at when the transport holds scheduled mail itself)."""
        envelope = self.envelope(
            reader.email, reader.key, reader.name, list_name, reader.attributes
        )
        if self.schedule is not None and self.transport.schedules_itself:
            send_at = int(self.when(reader).timestamp())
            envelope = dataclasses.replace(envelope, send_at=send_at)
        return envelope

    def when(self, reader: Recipient) -> dt.datetime:
        """When `reader` gets the issue under --at (their zone; the default for a bad one)."""
        assert self.schedule is not None
        try:
            return self.schedule.when(reader.attributes.get("timezone", ""))
        except ValueError:  # added to the list since the plan checked it
            return self.schedule.when()

    def log_path(self) -> Path:
        """Where the delivery log lives."""
        return self.project.root / STATE_DIR / LOG_FILE


def plan_send(
    project: Project,
    issue_path: Path,
    list_names: Sequence[str] | str | None,
    segment: str | None = None,
    *,
    transport: str | None = None,
    mode: Mode = "auto",
    skip_invalid: bool = False,
    test_only: bool = False,
    retry_unknown: bool = False,
    at: str | None = None,
) -> SendPlan:
    """Gather, then send: render the issue, check the list and settings; nothing is sent yet."""
    names = [list_names] if isinstance(list_names, str) else list(list_names or ())
    if not names and not test_only:
        raise UsageError("send needs --list LIST (or --test ADDR for a test copy)")
    if at is not None and test_only:
        raise UsageError("--at schedules a send to lists; a --test copy goes now (leave --at out)")
    built = build_issue(project, issue_path, mode)
    audience = None
    if names and not test_only:
        selections = _select_lists(project, names, segment, skip_invalid)
        audience = Audience(selections)
        names = audience.list_names
    names = names or [TEST_LIST]
    list_name = names[0]
    settings = resolve_settings(project.root, project.newsletter.transport, transport)
    if test_only:  # test copies go to a folder of their own: outbox/test/<slug>/
        settings = settings.model_copy(
            update={"outbox_dir": str(settings.outbox_path / TEST_OUTBOX)}
        )
    template = MessageTemplate(built, project.newsletter, list_name)
    found = None
    if audience is not None:  # every reader their own variant, each rendered once
        found = plan_variants(project, issue_path, built.loaded, audience, mode, built)
        template = found.template(project.newsletter, list_name)
    sender = make_transport(settings, template, built.slug)
    plan = SendPlan(
        project, built, names, segment, audience, settings, template, sender,
        load_secret(project), retry_unknown=retry_unknown, variants=found,
    )  # fmt: skip
    if audience is None:
        return plan
    logged = plan.log_path().exists()
    with DeliveryLog(plan.log_path()) if logged else contextlib.nullcontext() as log:
        if log is not None:
            check_issue_identity(log, plan)
            hand_back_soft_bounces(project, log, plan.issue)  # past their window: retried now
        if at is not None:
            plan.schedule = parse_at(
                at, project.newsletter.timezone, base=_scheduled_base(log, plan, at)
            )
        if log is not None or plan.schedule is not None:
            _count_audience(plan, audience, log)
    if plan.schedule is not None and plan.transport.schedules_itself and plan.waves:
        check_horizon(max(plan.waves))
    return plan


def _scheduled_base(log: DeliveryLog | None, plan: SendPlan, at: str) -> dt.datetime | None:
    """When an earlier run of this send made the same schedule: a resumed send keeps its times."""
    if log is None:
        return None
    for earlier in log.issue_sends(plan.issue):
        same = earlier.list_name in plan.list_names and earlier.schedule == at
        if same and earlier.schedule_base is not None:
            return from_timestamp(earlier.schedule_base)
    return None


def _count_audience(plan: SendPlan, audience: Audience, log: DeliveryLog | None) -> None:
    """One pass: who already has the issue, and (under --at) when each of the others gets it."""
    bad_zones: list[Problem] = []
    done = plan.done_states
    for list_name, chunk in audience.chunks():
        states = log.states(plan.issue, [r.key for r in chunk]) if log is not None else {}
        found = list(states.values())
        plan.already_sent += found.count(SENT)
        plan.refused_before += found.count(REFUSED)
        plan.unknown_before += found.count(UNKNOWN)
        if plan.schedule is None:
            continue
        for reader in chunk:
            if states.get(reader.key) in done:
                continue
            try:
                plan.waves[plan.schedule.when(reader.attributes.get("timezone", ""))] += 1
            except ValueError as exc:
                path = plan.project.subscribers_dir / f"{list_name}.csv"
                bad_zones.append(Problem(str(exc), display_path(path), reader.line))
    if bad_zones:
        raise InvalidInput(bad_zones)


def _select_lists(
    project: Project, names: Sequence[str], segment: str | None, skip_invalid: bool
) -> list[Selection]:
    """Each named list once (a list named twice is one list), checked before anything is sent."""
    selections: list[Selection] = []
    for name in names:
        selection = select(project, name, segment, skip_invalid=skip_invalid)
        if selection.list_name not in {s.list_name for s in selections}:
            selections.append(selection)
    return selections


def source_key(project: Project, path: Path) -> str:
    """An issue file as the delivery log names it: relative to the project when inside it."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(project.root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def issue_fingerprint(issue: Issue) -> str:
    """Volume, date and subject, hashed: two files with these equal are the same issue."""
    text = f"{issue.volume}\0{issue.date.isoformat()}\0{issue.subject}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def identity_conflict(
    log: DeliveryLog, slug: str, source: str, fingerprint: str, subject: str
) -> str | None:
    """The issue file the log holds under `slug` when it is not this one, else None.

    The same file (edited or not) resumes; a moved file with the same volume, date and subject
    is the same issue; a log written before files were recorded trusts an equal subject.
    """
    for earlier in log.issue_sends(slug):
        if earlier.source == source or (earlier.fingerprint or "") == fingerprint:
            continue
        if earlier.source is None and earlier.fingerprint is None:
            if earlier.subject == subject:
                continue
            return (
                f"an issue with the subject {earlier.subject!r} (logged before issue files were "
                "recorded; if this file is that issue edited, restore that subject to resume)"
            )
        return earlier.source
    return None


def check_issue_identity(log: DeliveryLog, plan: SendPlan) -> None:
    """Refuse to send a file whose slug the log already holds for a different issue."""
    other = identity_conflict(
        log, plan.issue, plan.source, plan.fingerprint, plan.built.written_subject
    )
    if other is None:
        return
    shown = display_path(plan.built.source)
    raise SendRefused(
        f"{shown} is not the issue the delivery log holds as '{plan.issue}' ({other} was sent "
        f"under that name); nothing was sent: rename {shown} so that its file name differs "
        "(the file name is the issue's key in the delivery log, the outbox and the archive)"
    )


@dataclass
class DryRunReport:
    """What a send would do, every message rendered."""

    rendered: int = 0
    skipped: int = 0
    total_bytes: int = 0
    largest: int = 0
    problems: list[str] = field(default_factory=list)


def dry_run(plan: SendPlan) -> DryRunReport:
    """Render every message a send would deliver; send nothing, record nothing."""
    report = DryRunReport()
    if plan.audience is None:
        return report
    log = DeliveryLog(plan.log_path()) if plan.log_path().exists() else None
    try:
        for list_name, chunk in plan.audience.chunks():
            states = log.states(plan.issue, [r.key for r in chunk]) if log else {}
            for reader in chunk:
                if states.get(reader.key) in plan.done_states:
                    report.skipped += 1
                    continue
                envelope = plan.reader_envelope(reader, list_name)
                try:
                    data = message_for(plan.template, envelope)
                except ValueError as exc:
                    report.problems.append(f"{list_name}.csv:{reader.line}: {exc}")
                    continue
                report.rendered += 1
                report.total_bytes += len(data)
                report.largest = max(report.largest, len(data))
    finally:
        if log is not None:
            log.close()
    return report


def test_envelopes(plan: SendPlan, addresses: Sequence[str]) -> list[Envelope]:
    """Envelopes for --test copies (the addresses checked like any other)."""
    envelopes = []
    for address in addresses:
        try:
            check_address(address.strip())
        except ValueError as exc:
            raise UsageError(f"--test {address!r}: {exc}") from None
        key = address_key(address)
        token = make_token(plan.secret, TEST_COPY, key)  # its link shows, and changes nothing
        link = plan.project.newsletter.unsubscribe_link(token)
        envelopes.append(Envelope(key, address.strip(), "", link, token, plan.list_name))
    return envelopes


@dataclass
class ListStatus:
    """Where one list stands for one issue (counting the readers this list reached)."""

    list_name: str
    sent: int
    failed: int
    sending: int
    pending: int
    suppressed: int | None
    failures: list[tuple[str, str, int]]
    refused: int = 0
    unknown: int = 0
    refusals: list[tuple[str, str, int]] = field(default_factory=list)
    unknowns: list[tuple[str, str, int]] = field(default_factory=list)
    elsewhere: int = 0  # readers of this list who got (or get) the issue through another list
    schedule: str | None = None  # send --at, in words


def delivery_status(project: Project, issue_path: Path) -> list[ListStatus]:
    """Per list this issue went (or started going) to: sent, failed, pending, suppressed."""
    issue = issue_path.stem
    path = project.root / STATE_DIR / LOG_FILE
    if not path.exists():
        return []
    statuses = []
    with DeliveryLog(path) as log:
        schedules = {
            s.list_name: _describe_schedule(project, s.schedule, s.schedule_base)
            for s in log.issue_sends(issue)
        }
        for list_name in log.lists(issue):
            counts = log.counts(issue, list_name)
            status = ListStatus(
                list_name, counts[SENT], counts[FAILED], counts["sending"], counts["pending"],
                None, list(log.failures(issue, list_name, FAILED)), counts[REFUSED],
                counts[UNKNOWN], list(log.failures(issue, list_name, REFUSED)),
                list(log.failures(issue, list_name, UNKNOWN)),
                schedule=schedules.get(list_name),
            )  # fmt: skip
            try:
                selection = select(
                    project, list_name, log.segment(issue, list_name), skip_invalid=True
                )
            except ComposeError:
                selection = None
            if selection is not None:
                status.suppressed = selection.suppressed
                logged = 0
                for _, chunk in Audience([selection]).chunks():
                    lists = log.lists_of(issue, [r.key for r in chunk])
                    logged += len(lists)
                    status.elsewhere += sum(1 for name in lists.values() if name != list_name)
                status.pending += selection.count - logged  # in the list now, never tried yet
            statuses.append(status)
    return statuses


def _describe_schedule(project: Project, text: str | None, base: float | None) -> str | None:
    if text is None or base is None:
        return None
    try:
        schedule = parse_at(text, project.newsletter.timezone, base=from_timestamp(base))
    except ComposeError:
        return f"at {text}"
    return schedule.describe()


def status_conflict(project: Project, issue_path: Path) -> str | None:
    """For `status`: the file the log holds under this file's name, when it is another issue."""
    path = project.root / STATE_DIR / LOG_FILE
    if not path.exists() or not issue_path.is_file():
        return None
    try:
        issue = load_issue(issue_path, project.newsletter, display_path(issue_path))
    except ComposeError:  # an invalid file still has a status, by its name
        return None
    with DeliveryLog(path) as log:
        return identity_conflict(
            log, issue_path.stem, source_key(project, issue_path), issue_fingerprint(issue),
            issue.subject,
        )  # fmt: skip
