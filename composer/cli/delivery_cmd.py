"""`compose send` and `compose status`: thin wrappers over composer.delivery."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from composer.cli import App
from composer.cli.options import ISSUE_FILE, mode_option
from composer.errors import Interrupted, SendIncomplete, SendRefused, Terminated
from composer.modes import Mode

if TYPE_CHECKING:
    from composer.delivery.plan import SendPlan


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@click.command()
@click.argument("file", type=ISSUE_FILE)
@click.option(
    "--list",
    "list_names",
    metavar="LIST",
    multiple=True,
    help="Subscriber list (subscribers/LIST.csv); repeatable: an address on several lists gets "
    "one copy.",
)
@click.option("--segment", metavar="SEGMENT", help="Only readers in this segment (segments.yaml).")
@click.option(
    "--transport",
    type=click.Choice(["outbox", "smtp", "sendgrid"]),
    help="How to deliver (default: transport.kind in newsletter.yaml, else outbox).",
)
@mode_option
@click.option(
    "--at",
    "at",
    metavar="TIME",
    help="Schedule: an instant with its offset (2026-12-03T09:00+01:00), or a time of day "
    "(09:00) meaning that time in each reader's time zone.",
)
@click.option("--dry-run", is_flag=True, help="Render every message and report; send nothing.")
@click.option(
    "--test",
    "tests",
    metavar="ADDR",
    multiple=True,
    help="Send one copy to ADDR only (repeatable); records nothing in the delivery log.",
)
@click.option("--yes", is_flag=True, help="Do not ask; required when there is no terminal.")
@click.option(
    "--skip-invalid", is_flag=True, help="Leave out list rows with errors instead of refusing."
)
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Also resend to readers whose outcome is unknown (the server may have accepted the "
    "message before the connection broke: they may get a second copy).",
)
@click.pass_obj
def send(
    app: App,
    file: Path,
    list_names: tuple[str, ...],
    segment: str | None,
    transport: str | None,
    mode: Mode,
    at: str | None,
    dry_run: bool,
    tests: tuple[str, ...],
    yes: bool,
    skip_invalid: bool,
    retry_unknown: bool,
) -> None:
    """Deliver an issue to a list, each reader exactly once; a re-run resumes."""
    from composer.delivery.plan import dry_run as render_all
    from composer.delivery.plan import plan_send, test_envelopes
    from composer.delivery.progress import make_reporter, summary_lines
    from composer.delivery.runner import run_send, send_tests

    plan = plan_send(
        app.project(near=file), file, list_names, segment, transport=transport, mode=mode,
        skip_invalid=skip_invalid, test_only=bool(tests), retry_unknown=retry_unknown, at=at,
    )  # fmt: skip
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        report = render_all(plan)
        _describe(plan, tests)
        if plan.variants is not None:
            from composer.delivery.variants import describe

            click.echo(f"{len(plan.variants.keys)} variant(s), each rendered once:")
            for line in describe(plan.variants):
                click.echo(line)
        click.echo(
            f"dry run: rendered {report.rendered} message(s), {report.total_bytes:,} bytes "
            f"(largest {report.largest:,}); {report.skipped} already sent; nothing was sent"
        )
        for problem in report.problems:
            click.echo(problem, err=True)
        return
    _describe(plan, tests)
    _confirm(yes)
    if tests:
        summary = send_tests(plan, test_envelopes(plan, tests))
    else:
        summary = run_send(plan, make_reporter(_interactive()))
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    for line in summary_lines(summary):
        click.echo(line)
    if summary.terminated:
        raise Terminated(
            "terminated; the messages in flight were recorded; run the same command to resume"
        )
    if summary.interrupted:
        raise Interrupted(
            "interrupted; the messages in flight were recorded; run the same command to resume"
        )
    if summary.unknown or summary.skipped_unknown:
        click.echo(
            f"warning: {summary.unknown + summary.skipped_unknown} recipient(s) with an unknown "
            "outcome were not resent (they may have the issue); compose status lists them, and "
            "compose send --retry-unknown resends them",
            err=True,
        )
    if summary.stopped:
        raise SendIncomplete(f"send stopped: {summary.stopped}")
    if summary.failed:
        raise SendIncomplete(
            f"{summary.failed} recipient(s) failed temporarily; they are in the delivery log "
            "(compose status) and a re-run retries them"
        )


def _describe(plan: SendPlan, tests: tuple[str, ...]) -> None:
    built = plan.built
    click.echo(f"issue:      {built.source} ({built.mode} mode)")
    click.echo(f"subject:    {built.written_subject}")
    audience = plan.audience  # None for a test send
    if audience is None:
        click.echo(f"test to:    {', '.join(tests)} (list {plan.list_name}; nothing is recorded)")
    else:
        lists = ", ".join(plan.list_names)
        label = "lists:     " if len(plan.list_names) > 1 else "list:      "
        click.echo(f"{label} {lists}" + (f", segment {plan.segment}" if plan.segment else ""))
        settled = ""
        if plan.refused_before:
            settled += f", {plan.refused_before} refused for good"
        if plan.unknown_before:
            settled += f", {plan.unknown_before} unknown" + (
                " (resent)" if plan.retry_unknown else " (not resent without --retry-unknown)"
            )
        click.echo(
            f"recipients: {plan.recipients} ({plan.already_sent} already sent{settled}, "
            f"{plan.pending} to go; {audience.suppressed} suppressed, "
            f"{audience.unsubscribed} unsubscribed)"
        )
    click.echo(f"transport:  {plan.transport.describe()}")
    if plan.schedule is not None:
        click.echo(f"scheduled:  {plan.schedule.describe()}")
        how = (
            "handed over now, held by SendGrid until"
            if plan.transport.schedules_itself
            else ("this command waits, then sends at")
        )
        for moment, readers in sorted(plan.waves.items()):
            local = moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")
            click.echo(f"            {readers} reader(s): {how} {local}")


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not _interactive():
        raise SendRefused("not sending without --yes: no terminal to ask for confirmation")
    if not click.confirm("Send now?", default=False):
        raise SendRefused("not sent")


@click.command()
@click.argument("file", type=ISSUE_FILE)
@click.pass_obj
def status(app: App, file: Path) -> None:
    """Per list: sent, failed (with reasons), refused, unknown, pending, suppressed."""
    from composer.delivery.plan import delivery_status, status_conflict
    from composer.delivery.runner import send_running

    project = app.project(near=file)
    other = status_conflict(project, file)
    if other is not None:
        click.echo(
            f"{file.stem}: not sent; the delivery log's '{file.stem}' is {other}, a different issue"
        )
        return
    statuses = delivery_status(project, file)
    if not statuses:
        click.echo(f"{file.stem}: not sent to any list yet")
        return
    running = send_running(project.state_dir())
    for entry in statuses:
        suppressed = "?" if entry.suppressed is None else entry.suppressed
        pending = entry.pending + entry.sending
        click.echo(
            f"{entry.list_name}: sent {entry.sent}, failed {entry.failed}, pending {pending}, "
            f"suppressed {suppressed}, refused {entry.refused}, unknown {entry.unknown}"
        )
        if entry.schedule:
            waiting = (
                "a compose send is running or waiting for it now"
                if running
                else "no compose send is waiting for it: run the same send command to resume"
                if entry.pending + entry.sending
                else "all handed over"
            )
            click.echo(f"  scheduled {entry.schedule}; {waiting}")
        if entry.elsewhere:
            click.echo(f"  {entry.elsewhere} more of its readers were reached through another list")
        if entry.sending:
            click.echo(f"  {entry.sending} in flight when a run stopped; the next run resends them")
        for label, rows in (
            ("failed", entry.failures),
            ("refused", entry.refusals),
            ("unknown", entry.unknowns),
        ):
            for email, reason, attempts in rows:
                click.echo(
                    f"  {label} {email} ({attempts} attempt{'s' if attempts != 1 else ''}): {reason}"
                )
        if entry.unknown:
            click.echo(
                f"  {entry.unknown} unknown: they may have the issue; "
                "compose send --retry-unknown resends them"
            )
