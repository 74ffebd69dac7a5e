"""`compose subscribers check|count|list|import|add|remove|forget|export`: thin commands over
composer.audience."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from composer.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from composer.audience.scan import Tally
    from composer.cli import App

# `count` and `list` show this many row problems, then point at `check` for the rest.
MAX_SHOWN = 50


@click.group()
def subscribers() -> None:
    """Check, count, list and import subscriber lists (subscribers/*.csv)."""


@subscribers.command()
@click.argument("lists", nargs=-1)
@click.pass_obj
def check(app: App, lists: tuple[str, ...]) -> None:
    """Check lists (default: all), segments and suppressions; exit 1 on any error.

    Each bad row is printed as FILE:LINE: reason; warnings alone (repeated addresses) exit 0.
    """
    from composer.audience import check_lists

    report = check_lists(app.project(), list(lists) or None)
    for problem in report.problems:
        click.echo(str(problem), err=True)
    for checked in report.lists:
        if checked.selection is None:
            click.echo(f"{checked.display}: unreadable")
            continue
        click.echo(f"{checked.display}: {_breakdown(checked.selection)}")
    errors = sum(p.severity == "error" for p in report.problems)
    if errors:
        raise InvalidInput(
            [Problem(f"{errors} error{'s' if errors != 1 else ''} in subscriber files")]
        )


@subscribers.command()
@click.option(
    "--list", "list_name", required=True, metavar="L", help="The list (subscribers/L.csv)."
)
@click.option("--segment", metavar="S", help="A segment of subscribers/segments.yaml.")
@click.pass_obj
def count(app: App, list_name: str, segment: str | None) -> None:
    """Count who a send would reach; the last line is the bare number.

    Rows with problems are left out, with a warning each on stderr; the exit status is 0.
    """
    from composer.audience import select

    selection = select(app.project(), list_name, segment, skip_invalid=True)
    _warn(selection.problems, selection.list_name)
    click.echo(_breakdown(selection))
    click.echo(str(selection.count))


@subscribers.command(name="list")
@click.option(
    "--list", "list_name", required=True, metavar="L", help="The list (subscribers/L.csv)."
)
@click.option("--segment", metavar="S", help="A segment of subscribers/segments.yaml.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv"]),
    help="Default: a table on a terminal, CSV otherwise.",
)
@click.pass_obj
def list_(app: App, list_name: str, segment: str | None, fmt: str | None) -> None:
    """Show who a send would reach, in list order."""
    from composer.audience import select

    selection = select(app.project(), list_name, segment, skip_invalid=True)
    _warn(selection.problems, selection.list_name)
    recipients = selection.recipients or ()
    extra = [c for c in selection.columns if c not in ("email", "name")]
    if (fmt or ("table" if sys.stdout.isatty() else "csv")) == "csv":
        from composer.audience.records import ExportLines

        lines = ExportLines()  # for a spreadsheet: a name like =HYPERLINK(...) stays text
        click.echo(lines.line(["email", "name", *extra]), nl=False)
        for reader in recipients:
            row = [reader.email, reader.name, *(reader.attributes[c] for c in extra)]
            click.echo(lines.line(row), nl=False)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # a reader's name is text, never rich markup

    shown = [c for c in ("country", "organization", "interests") if c in extra]
    table = Table(title=selection.list_name, title_justify="left")
    table.add_column("line", justify="right")
    table.add_column("email", no_wrap=True)  # an address cut short is no use
    for column in ("name", *shown):
        table.add_column(column)
    for reader in recipients:
        cells = [reader.email, reader.name, *(reader.attributes[c] for c in shown)]
        table.add_row(str(reader.line), *map(Text, cells))
    Console().print(table)
    click.echo(_breakdown(selection))


@subscribers.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "list_name", required=True, metavar="L", help="The list to merge into.")
@click.pass_obj
def import_(app: App, file: Path, list_name: str) -> None:
    """Merge FILE into list L (created if new), matching addresses ignoring case.

    New readers are added, known ones get FILE's non-empty cells (an import never turns
    unsubscribed back into subscribed), rows with errors are rejected with their line. The list
    is replaced atomically: a crash never leaves it half-written.
    """
    from composer.audience import import_list
    from composer.project import display_path

    report = import_list(app.project(), file, list_name)
    for problem in report.rejected:
        click.echo(f"{problem} (rejected)", err=True)
    for problem in report.notes:
        click.echo(str(problem), err=True)
    rejected = len({p.line for p in report.rejected})
    verb = "created" if report.created and report.changed else "merged into"
    click.echo(
        f"{display_path(file)} {verb} {display_path(report.path)}: {report.added} added, "
        f"{report.updated} updated, {report.unchanged} unchanged, {rejected} rejected"
    )


def _address(email: str) -> str:
    """EMAIL as email-validator normalizes it, or a usage error saying what is wrong."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise click.BadParameter(str(exc), param_hint="ADDR") from None


def _fields(app: App, pairs: tuple[str, ...]) -> list[tuple[str, str]]:
    """--field KEY=VALUE pairs as (column, value), each checked as a list cell would be."""
    from composer.audience.rowcheck import CellJudge, status_problem

    judge = CellJudge(app.project().newsletter.pillars)
    cells: list[tuple[str, str]] = []
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or not key or key == "email":
            raise click.BadParameter(
                f"'{pair}' is not KEY=VALUE (KEY not email)", param_hint="--field"
            )
        if any(ch in value for ch in "\r\n"):
            raise click.BadParameter(f"the value of {key} must be one line", param_hint="--field")
        why = judge.interests_problem(value) if key == "interests" else None
        if key == "status" and judge.subscribed(value) is None:
            why = status_problem(value)
        if why:
            raise click.BadParameter(why, param_hint="--field")
        cells.append((key, value))
    return cells


@subscribers.command()
@click.argument("addr")
@click.option(
    "--list", "list_name", required=True, metavar="L", help="The list (subscribers/L.csv)."
)
@click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", help="A column to set.")
@click.pass_obj
def add(app: App, addr: str, list_name: str, fields: tuple[str, ...]) -> None:
    """Add ADDR to list L (or update their row with --field values).

    A suppressed address is refused (exit 1): `compose suppressions remove ADDR` lifts it. The
    addition is recorded in subscribers/consent.csv (action subscribe, form cli).
    """
    from composer.audience.consent import ConsentRecord, append_consent, utc_now
    from composer.audience.lists import list_path
    from composer.audience.membership import Change, change_list
    from composer.audience.suppressions import is_suppressed
    from composer.errors import ComposeError

    project = app.project()
    email = _address(addr)
    name = list_path(project, list_name).stem
    cells = _fields(app, fields)
    if is_suppressed(project, email):
        raise ComposeError(
            f"{email} is suppressed (unsubscribed, bounced or complained) and is not added; "
            f"if they asked to be added again, `compose suppressions remove {email}` lifts it"
        )
    (result,) = change_list(project, name, [Change(email, "join", tuple(cells))])
    if result in ("added", "updated"):
        append_consent(project, [ConsentRecord(email, name, "subscribe", utc_now(), form="cli")])
    click.echo(f"{email}: {result} ({name})")


@subscribers.command()
@click.argument("addr")
@click.option(
    "--list", "list_name", required=True, metavar="L", help="The list (subscribers/L.csv)."
)
@click.pass_obj
def remove(app: App, addr: str, list_name: str) -> None:
    """Remove ADDR's row from list L (recorded in consent.csv as unsubscribe, form cli)."""
    from composer.audience.consent import ConsentRecord, append_consent, utc_now
    from composer.audience.lists import list_path
    from composer.audience.membership import Change, change_list

    project = app.project()
    email = _address(addr)
    name = list_path(project, list_name).stem
    (result,) = change_list(project, name, [Change(email, "remove")])
    if result == "removed":
        append_consent(project, [ConsentRecord(email, name, "unsubscribe", utc_now(), form="cli")])
        click.echo(f"{email}: removed ({name})")
    else:
        click.echo(f"{email} is not on {name}; nothing changed")


@subscribers.command()
@click.argument("addr")
@click.pass_obj
def forget(app: App, addr: str) -> None:
    """Erase ADDR: every list, consent records, suppressions, the delivery log, the outbox.

    Only a keyed hash is kept (.compose/forgotten), so that `subscribers import` of an old
    spreadsheet does not add the reader back silently. Prints what was erased.
    """
    from composer.audience.forget import forget as erase
    from composer.delivery.tokens import load_secret

    project = app.project()
    email = addr.strip()
    if "@" not in email:
        raise click.BadParameter("not an e-mail address", param_hint="ADDR")
    report = erase(project, email, load_secret(project))
    for name, rows in report.list_rows.items():
        click.echo(f"list {name}: {rows} row(s)")
    click.echo(f"consent records: {report.consent_records}")
    click.echo(f"suppressions: {report.suppressions}")
    for where, rows in report.log_rows.items():
        click.echo(f"log {where}: {rows} row(s)")
    click.echo(f"outbox files: {report.outbox_files}")
    click.echo(f"forgot {report.email}; a keyed hash is kept so that no import re-adds it")


@subscribers.command()
@click.argument("addr")
@click.pass_obj
def export(app: App, addr: str) -> None:
    """Everything held about ADDR as JSON: list rows, consent records, suppressions, deliveries."""
    import json

    from composer.audience.forget import export as gather

    held = gather(app.project(), addr.strip())
    click.echo(json.dumps(held, indent=2, ensure_ascii=False, default=str))


def _warn(problems: list[Problem], list_name: str) -> None:
    """Row problems as warnings on stderr (the rows are left out), at most MAX_SHOWN of them."""
    for problem in problems[:MAX_SHOWN]:
        if problem.severity == "error":
            problem = replace(
                problem, severity="warning", message=f"{problem.message}; row left out"
            )
        click.echo(str(problem), err=True)
    if len(problems) > MAX_SHOWN:
        more = len(problems) - MAX_SHOWN
        click.echo(
            f"warning: {more} more problems; run `compose subscribers check {list_name}`", err=True
        )


def _breakdown(s: Tally) -> str:
    """`52 rows: 47 to send; left out: 2 unsubscribed, 3 suppressed`, leaving out zeros."""
    parts = [
        (s.invalid, "invalid"),
        (s.duplicates, "duplicate"),
        (s.outside_segment, "outside the segment"),
        (s.unsubscribed, "unsubscribed"),
        (s.suppressed, "suppressed"),
    ]
    left_out = ", ".join(f"{n} {what}" for n, what in parts if n)
    rows = f"{s.rows} row{'s' if s.rows != 1 else ''}"
    return f"{rows}: {s.count} to send" + (f"; left out: {left_out}" if left_out else "")
