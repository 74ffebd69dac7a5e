"""Everything a send decides before the first message: build, audience, transport, what's left."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from composer.audience import Recipient, Selection, address_key, select
from composer.build import BuiltIssue, Mode, build_issue
from composer.delivery.log import FAILED, LOG_FILE, REFUSED, SENT, UNKNOWN, DeliveryLog
from composer.delivery.message import MessageTemplate, check_address
from composer.delivery.settings import Settings, resolve_settings
from composer.delivery.tokens import TEST_COPY, load_secret, make_token
from composer.delivery.transports import make_transport
from composer.delivery.transports.base import Envelope, Transport
from composer.errors import ComposeError, SendRefused, UsageError
from composer.events.retry import hand_back_soft_bounces
from composer.issue.load import load_issue
from composer.issue.model import Issue
from composer.project import STATE_DIR, Project, display_path

CHUNK = 1000  # recipients looked up in the log at a time
TEST_LIST = "test"
TEST_OUTBOX = "test"


@dataclass
class SendPlan:
    """A send ready to go: the issue rendered once, the audience checked, the transport built."""

    project: Project
    built: BuiltIssue
    list_name: str
    segment: str | None
    selection: Selection | None
    settings: Settings
    template: MessageTemplate
    transport: Transport
    secret: bytes = field(repr=False)
    already_sent: int = 0
    refused_before: int = 0  # refused for good in an earlier run: never retried
    unknown_before: int = 0  # outcome unknown in an earlier run: retried only with retry_unknown
    retry_unknown: bool = False

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
        return issue_fingerprint(self.built.issue)

    @property
    def done_states(self) -> frozenset[str]:
        """States a run skips: sent, refused for good, and unknown unless asked to retry."""
        done = {SENT, REFUSED}
        if not self.retry_unknown:
            done.add(UNKNOWN)
        return frozenset(done)

    @property
    def recipients(self) -> int:
        """How many readers the list (and segment) reaches."""
        return self.selection.count if self.selection is not None else 0

    @property
    def pending(self) -> int:
        """How many of them this run will try (not sent, not refused, not left as unknown)."""
        skipped_unknown = 0 if self.retry_unknown else self.unknown_before
        return self.recipients - self.already_sent - self.refused_before - skipped_unknown

    @property
    def content_sha(self) -> str:
        """A fingerprint of what is sent, to notice an issue edited between runs."""
        digest = hashlib.sha256()
        for part in (self.built.subject, self.built.email_txt, self.built.email_html):
            digest.update(part.encode("utf-8") + b"\0")
        return digest.hexdigest()[:16]

    def envelope(self, email: str, key: str, name: str) -> Envelope:
        """The envelope of one recipient, with their personal unsubscribe link."""
        token = make_token(self.secret, self.list_name, key)
        return Envelope(key, email, name, self.project.newsletter.unsubscribe_link(token), token)

    def log_path(self) -> Path:
        """Where the delivery log lives."""
        return self.project.root / STATE_DIR / LOG_FILE


def plan_send(
    project: Project,
    issue_path: Path,
    list_name: str | None,
    segment: str | None = None,
    *,
    transport: str | None = None,
    mode: Mode = "auto",
    skip_invalid: bool = False,
    test_only: bool = False,
    retry_unknown: bool = False,
) -> SendPlan:
    """Gather, then send: render the issue, check the list and settings; nothing is sent yet."""
    if list_name is None and not test_only:
        raise UsageError("send needs --list LIST (or --test ADDR for a test copy)")
    built = build_issue(project, issue_path, mode)
    selection = None
    if list_name is not None and not test_only:
        selection = select(project, list_name, segment, skip_invalid=skip_invalid)
        list_name = selection.list_name
    list_name = list_name or TEST_LIST
    settings = resolve_settings(project.root, project.newsletter.transport, transport)
    if test_only:  # test copies go to a folder of their own: outbox/test/<slug>/
        settings = settings.model_copy(
            update={"outbox_dir": str(settings.outbox_path / TEST_OUTBOX)}
        )
    template = MessageTemplate(built, project.newsletter, list_name)
    sender = make_transport(settings, template, built.slug)
    plan = SendPlan(
        project, built, list_name, segment, selection, settings, template, sender,
        load_secret(project), retry_unknown=retry_unknown,
    )  # fmt: skip
    if selection is not None and plan.log_path().exists():
        with DeliveryLog(plan.log_path()) as log:
            check_issue_identity(log, plan)
            hand_back_soft_bounces(project, log, plan.issue, list_name)  # retried by this send
            for keys in _key_chunks(selection):
                states = list(log.states(plan.issue, list_name, keys).values())
                plan.already_sent += states.count(SENT)
                plan.refused_before += states.count(REFUSED)
                plan.unknown_before += states.count(UNKNOWN)
    return plan


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
    other = identity_conflict(log, plan.issue, plan.source, plan.fingerprint, plan.built.subject)
    if other is None:
        return
    shown = display_path(plan.built.source)
    raise SendRefused(
        f"{shown} is not the issue the delivery log holds as '{plan.issue}' ({other} was sent "
        f"under that name); nothing was sent: rename {shown} so that its file name differs "
        "(the file name is the issue's key in the delivery log, the outbox and the archive)"
    )


def _key_chunks(selection: Selection) -> Iterator[list[str]]:
    for chunk in recipient_chunks(selection):
        yield [recipient.key for recipient in chunk]


def recipient_chunks(selection: Selection) -> Iterator[list[Recipient]]:
    """The selected readers, streamed in chunks of CHUNK."""
    assert selection.recipients is not None
    chunk: list[Recipient] = []
    for recipient in selection.recipients:
        chunk.append(recipient)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
    if plan.selection is None:
        return report
    log = DeliveryLog(plan.log_path()) if plan.log_path().exists() else None
    try:
        for chunk in recipient_chunks(plan.selection):
            states = log.states(plan.issue, plan.list_name, [r.key for r in chunk]) if log else {}
            for recipient in chunk:
                if states.get(recipient.key) in plan.done_states:
                    report.skipped += 1
                    continue
                envelope = plan.envelope(recipient.email, recipient.key, recipient.name)
                try:
                    data = plan.template.personalize(
                        envelope.email,
                        envelope.name,
                        envelope.unsubscribe_url,
                        token=envelope.token,
                    )
                except ValueError as exc:
                    report.problems.append(f"{plan.selection.path.name}:{recipient.line}: {exc}")
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
        envelopes.append(Envelope(key, address.strip(), "", link, token))
    return envelopes


@dataclass
class ListStatus:
    """Where one list stands for one issue."""

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


def delivery_status(project: Project, issue_path: Path) -> list[ListStatus]:
    """Per list this issue went (or started going) to: sent, failed, pending, suppressed."""
    issue = issue_path.stem
    path = project.root / STATE_DIR / LOG_FILE
    if not path.exists():
        return []
    statuses = []
    with DeliveryLog(path) as log:
        for list_name in log.lists(issue):
            counts = log.counts(issue, list_name)
            pending = counts["pending"]
            suppressed: int | None = None
            try:
                selection = select(
                    project, list_name, log.segment(issue, list_name), skip_invalid=True
                )
            except ComposeError:
                selection = None
            if selection is not None:
                suppressed = selection.suppressed
                logged = 0
                for keys in _key_chunks(selection):
                    logged += len(log.states(issue, list_name, keys))
                pending += selection.count - logged  # in the list now, never tried yet
            statuses.append(
                ListStatus(
                    list_name, counts["sent"], counts["failed"], counts["sending"], pending,
                    suppressed, list(log.failures(issue, list_name, FAILED)),
                    counts[REFUSED], counts[UNKNOWN], list(log.failures(issue, list_name, REFUSED)),
                    list(log.failures(issue, list_name, UNKNOWN)),
                )
            )  # fmt: skip
    return statuses


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
