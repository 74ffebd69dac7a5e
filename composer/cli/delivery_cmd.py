"""`compose send` and `compose status`: thin wrappers over composer.delivery."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from composer.cli import App
from composer.cli.options import ISSUE_FILE, mode_option
from composer.errors import Interrupted, SendIncomplete, SendRefused
from composer.modes import Mode

if TYPE_CHECKING:
    from composer.delivery.plan import SendPlan


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


@click.command()
@click.argument("file", type=ISSUE_FILE)
@click.option("--list", "list_name", metavar="LIST", help="Subscriber list (subscribers/LIST.csv).")
@click.option("--segment", metavar="SEGMENT", help="Only readers in this segment (segments.yaml).")
@click.option(
    "--transport",
    type=click.Choice(["outbox", "smtp", "sendgrid"]),
    help="How to deliver (default: transport.kind in newsletter.yaml, else outbox).",
)
@mode_option
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
@click.pass_obj
def send(
    app: App,
    file: Path,
    list_name: str | None,
    segment: str | None,
    transport: str | None,
    mode: Mode,
    dry_run: bool,
    tests: tuple[str, ...],
    yes: bool,
    skip_invalid: bool,
) -> None:
    """Deliver an issue to a list, each reader exactly once; a re-run resumes."""
    from composer.delivery.plan import dry_run as render_all
    from composer.delivery.plan import plan_send, test_envelopes
    from composer.delivery.progress import make_reporter, summary_lines
    from composer.delivery.runner import run_send, send_tests

    plan = plan_send(
        app.project(near=file), file, list_name, segment, transport=transport, mode=mode,
        skip_invalid=skip_invalid, test_only=bool(tests),
    )  # fmt: skip
    for warning in plan.built.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        report = render_all(plan)
        _describe(plan, tests)
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
    if summary.interrupted:
        raise Interrupted(
            "interrupted; the messages in flight were recorded; run the same command to resume"
        )
    if summary.stopped:
        raise SendIncomplete(f"send stopped: {summary.stopped}")
    if summary.failed:
        raise SendIncomplete(
            f"{summary.failed} recipient(s) failed; they are in the delivery log "
            "(compose status) and a re-run retries them"
        )


def _describe(plan: SendPlan, tests: tuple[str, ...]) -> None:
    built = plan.built
    click.echo(f"issue:      {built.source} ({built.mode} mode)")
    click.echo(f"subject:    {built.subject}")
    selection = plan.selection  # None for a test send
    if selection is None:
        click.echo(f"test to:    {', '.join(tests)} (list {plan.list_name}; nothing is recorded)")
    else:
        click.echo(
            f"list:       {plan.list_name}" + (f", segment {plan.segment}" if plan.segment else "")
        )
        click.echo(
            f"recipients: {plan.recipients} ({plan.already_sent} already sent, {plan.pending} to go; "
            f"{selection.suppressed} suppressed, {selection.unsubscribed} unsubscribed)"
        )
    click.echo(f"transport:  {plan.transport.describe()}")


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
    """Per list: sent, failed (with reasons), pending, suppressed."""
    from composer.delivery.plan import delivery_status

    statuses = delivery_status(app.project(near=file), file)
    if not statuses:
        click.echo(f"{file.stem}: not sent to any list yet")
        return
    for entry in statuses:
        suppressed = "?" if entry.suppressed is None else entry.suppressed
        pending = entry.pending + entry.sending
        click.echo(
            f"{entry.list_name}: sent {entry.sent}, failed {entry.failed}, pending {pending}, "
            f"suppressed {suppressed}"
        )
        if entry.sending:
            click.echo(f"  {entry.sending} in flight when a run stopped; the next run resends them")
        for email, reason, attempts in entry.failures:
            click.echo(
                f"  failed {email} ({attempts} attempt{'s' if attempts != 1 else ''}): {reason}"
            )
