"""`compose bounces import` and `compose report`: what happened after the send."""

from __future__ import annotations

from pathlib import Path

import click

from composer.cli import App


@click.group()
def bounces() -> None:
    """Bounce reports that came back to the sender (SMTP sends)."""


@bounces.command("import")
@click.argument("mailbox", type=click.Path(path_type=Path))
@click.pass_obj
def import_(app: App, mailbox: Path) -> None:
    """Read the bounce reports in MAILBOX (an mbox file or a Maildir folder).

    Hard bounces become suppressions with their reason, soft bounces are counted; importing
    the same mailbox again changes nothing. Exit 2 when MAILBOX is neither.
    """
    from composer.events.bounces import import_bounces

    result = import_bounces(app.project(), mailbox)
    applied = result.applied
    click.echo(
        f"{result.reports} message(s) read: {applied.applied} bounce(s) applied, "
        f"{applied.duplicates} already imported, {result.unmatched} not ours, "
        f"{result.not_bounces} not a bounce report"
    )
    click.echo(f"{applied.suppressed} address(es) newly suppressed")
