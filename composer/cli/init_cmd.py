"""`compose init`: create a new newsletter project from the starter files in the package."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from composer.cli import App
from composer.errors import UsageError


@click.command()
@click.argument("folder_arg", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--name", help="The newsletter's name (default: made from DIR's name).")
@click.pass_obj
def init(app: App, folder_arg: str, name: str | None) -> None:
    """Create a new newsletter project in DIR: newsletter.yaml, a sample issue, subscribers/
    with an example list and segments.yaml, and a .gitignore that keeps subscriber data out of
    git. Refused (exit 1) if DIR already holds a newsletter.yaml.
    """
    from composer.project import display_path
    from composer.starter import SAMPLE_ISSUE, create_project

    if app.project_dir is not None:
        raise UsageError("--project does not apply to init: name the new project's folder as DIR")
    if not folder_arg:
        raise UsageError("DIR must not be empty (use . for the current folder)")
    folder = Path(folder_arg)
    created = create_project(folder, name)
    shown = display_path(folder)
    click.echo(f"Created a newsletter project in {shown}/:")
    for path in created:
        click.echo(f"  {path.relative_to(folder).as_posix()}")
    click.echo("Next, build the sample issue (then edit it, or preview it with `compose preview`):")
    cd = "" if shown == "." else f"cd {shlex.quote(shown)} && "
    click.echo(f"  {cd}compose build {SAMPLE_ISSUE}")
