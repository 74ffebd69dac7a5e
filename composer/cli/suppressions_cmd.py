"""`compose suppressions sync|add|remove|list`: keep subscribers/suppressions.csv in step."""

from __future__ import annotations

import sys

import click

from composer.cli import App


@click.group()
def suppressions() -> None:
    """Addresses that must never be mailed again (subscribers/suppressions.csv)."""


@suppressions.command()
@click.pass_obj
def sync(app: App) -> None:
    """Pull global and group unsubscribes, bounces and spam reports from SendGrid.

    Needs SENDGRID_API_KEY in the environment; COMPOSE_SENDGRID_HOST overrides the API host.
    Safe to repeat: addresses already suppressed are left as they are. Exit 1 when SendGrid
    cannot be reached or refuses (nothing is written then), 2 when the key is missing.
    """
    from composer.delivery.transports.sendgrid_sync import sync_suppressions

    project = app.project()
    report = sync_suppressions(project)
    for source in report.sources:
        click.echo(f"{source.source}: {source.fetched}")
    for skipped in report.skipped:
        click.echo(f"skipped {skipped}", err=True)
    from composer.project import display_path

    target = display_path(project.subscribers_dir / "suppressions.csv")
    click.echo(f"{report.added} new address(es) added to {target}")


@suppressions.command()
@click.argument("email")
@click.option("--reason", default="added by hand", show_default=True, help="Why (free text).")
@click.pass_obj
def add(app: App, email: str, reason: str) -> None:
    """Suppress EMAIL from every list from now on."""
    from email_validator import EmailNotValidError, validate_email

    from composer.audience.suppressions import add_suppressions, utc_today

    try:
        address = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    if not reason.strip() or any(ch in reason for ch in "\r\n"):
        raise click.BadParameter("must be one non-empty line", param_hint="--reason")
    project = app.project()
    added = add_suppressions(project, [(address, reason.strip(), utc_today())])
    click.echo(f"suppressed {address}" if added else f"{address} was already suppressed")


@suppressions.command()
@click.argument("email")
@click.pass_obj
def remove(app: App, email: str) -> None:
    """Lift the suppression of EMAIL: it may be mailed again.

    The lifting is recorded in subscribers/consent.csv (action resubscribe, form cli).
    """
    from composer.audience.consent import ConsentRecord, append_consent, utc_now
    from composer.audience.membership import lift_suppression

    project = app.project()
    lifted = lift_suppression(project, email.strip())
    if not lifted:
        click.echo(f"{email.strip()} is not suppressed; nothing changed")
        return
    address = lifted[0][0]
    append_consent(project, [ConsentRecord(address, "", "resubscribe", utc_now(), form="cli")])
    for found, reason, date in lifted:
        click.echo(
            f"lifted the suppression of {found} ({reason or 'no reason'}, {date or 'no date'})"
        )


@suppressions.command(name="list")
@click.pass_obj
def list_(app: App) -> None:
    """Print every suppressed address with its reason and date (tab-separated when piped).

    Piped, each value is one line, and a value a spreadsheet would run as a formula
    (=, +, -, @) starts with a `'`.
    """
    from composer.audience.records import export_tsv_line
    from composer.audience.suppressions import suppression_rows

    project = app.project()
    rows = list(suppression_rows(project))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text  # values are text, never rich markup

        table = Table("email", "reason", "date")
        for row in rows:
            table.add_row(*map(Text, row))
        Console().print(table)
        click.echo(f"{len(rows)} suppressed")
        return
    for row in rows:
        click.echo(export_tsv_line(row))
