"""`compose preview` (live local preview) and `compose check` (the checks, for CI)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from composer.cli import App
from composer.cli.options import ISSUE_FILE, mode_option
from composer.errors import ComposeError
from composer.modes import Mode

if TYPE_CHECKING:
    from composer.web.preview import Snapshot

DEFAULT_PORT = 8000
_COLOURS = {"ok": "green", "info": "blue", "warning": "yellow"}


@click.command()
@click.argument("file", type=ISSUE_FILE)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help=f"Port on 127.0.0.1 (default {DEFAULT_PORT}, or the next free one; 0: any free port).",
)
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@mode_option
@click.pass_obj
def preview(app: App, file: Path, port: int | None, no_open: bool, mode: Mode) -> None:
    """Serve a live preview of FILE on 127.0.0.1: desktop, phone, dark and plain-text views,
    the checks, and the built files; every edit to the issue, newsletter.yaml or the theme
    rebuilds it and updates the open page. Stop with Ctrl-C.
    """
    from composer.project import display_path
    from composer.web.preview import open_browser, open_preview

    if not file.is_file():
        raise ComposeError("no such issue file", display_path(file))  # exit 1, as in build
    if not app.traceback:  # a bug in a rebuild shows as one line in the page and terminal
        logging.getLogger("composer.web.preview").addHandler(logging.NullHandler())
    root = app.root(near=file)  # an invalid newsletter.yaml still previews: the page says why
    try:
        preview = open_preview(
            root,
            file,
            DEFAULT_PORT if port is None else port,
            mode=mode,
            exact_port=port is not None,
            on_build=_report,
        )
    except KeyboardInterrupt:  # during the first build
        click.echo("preview stopped")
        return
    try:
        click.echo(f"Previewing {display_path(file)} at {preview.url}  (Ctrl-C stops)")
        if not no_open:
            open_browser(preview.url, click.echo)
        preview.serve_forever()
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a preview ends: not an error
    finally:
        preview.close()
    click.echo("preview stopped")


def _report(snapshot: Snapshot) -> None:
    """One line per build in the terminal, and the problems of a failed one."""
    when = snapshot.finished.strftime("%H:%M:%S")
    if snapshot.built is not None:
        warnings = len(snapshot.built.warnings)
        said = f"{warnings} warning(s)" if warnings else "no warnings"
        click.echo(f"{when} built in {snapshot.seconds:.2f} s, mode {snapshot.built.mode}, {said}")
    else:
        click.echo(f"{when} build failed:", err=True)
        for problem in snapshot.problems:
            click.echo(f"  {problem}", err=True)


@click.command()
@click.argument("file", type=ISSUE_FILE)
@mode_option
@click.pass_obj
def check(app: App, file: Path, mode: Mode) -> None:
    """Build FILE in memory and print every check; exit 1 if any warns (for CI)."""
    from composer.build import build_issue

    built = build_issue(app.project(near=file), file, mode)
    checks = built.checks
    width = max(len(c.code) for c in checks)
    for item in checks:
        level = click.style(f"{item.level:<7}", fg=_COLOURS[item.level])
        click.echo(f"{level}  {item.code:<{width}}  {item.message}")
    if built.warnings:
        raise ComposeError(f"{len(built.warnings)} warning(s)")
