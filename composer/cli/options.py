"""Arguments and options that several commands share, defined once."""

from __future__ import annotations

from pathlib import Path

import click

from composer.modes import MODES

ISSUE_FILE = click.Path(dir_okay=False, path_type=Path)

mode_option = click.option(
    "--mode",
    type=click.Choice(MODES),
    default="auto",
    show_default=True,
    help="full articles, teasers (digest), or full when it fits max_email_kb.",
)
