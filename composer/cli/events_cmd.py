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


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a self-contained HTML page with charts to this file.",
)
@click.pass_obj
def report(app: App, file: Path, as_json: bool, html_out: Path | None) -> None:
    """What happened to the issue in FILE after the send: delivered, bounced, complained,
    unsubscribed, clicked, failed (per list and segment). `compose status` is the quick view."""
    import json

    from composer.atomic import write_atomically
    from composer.errors import ComposeError, os_reason
    from composer.events.report import issue_report
    from composer.events.report_view import as_json as report_json
    from composer.events.report_view import as_text
    from composer.project import display_path

    project = app.project(near=file)
    result = issue_report(project, file)
    if html_out is not None:
        from composer.events.report_html import report_page

        try:
            write_atomically(html_out, [report_page(result)])
        except OSError as exc:
            raise ComposeError(
                f"cannot write the report: {os_reason(exc)}", display_path(html_out)
            ) from None
    if as_json:
        click.echo(json.dumps(report_json(result), indent=2, ensure_ascii=False))
    else:
        click.echo(as_text(result), nl=False)
    if html_out is not None:
        click.echo(f"wrote {display_path(html_out)}", err=as_json)
