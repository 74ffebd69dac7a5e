"""Arguments and options that several commands share, defined once."""

from __future__ import annotations

from pathlib import Path

import click

ISSUE_FILE = click.Path(dir_okay=False, path_type=Path)

# The same choices as composer.build.MODES (not imported: the CLI starts without the renderer).
mode_option = click.option(
    "--mode",
    type=click.Choice(["auto", "full", "digest"]),
    default="auto",
    show_default=True,
    help="full articles, teasers (digest), or full when it fits max_email_kb.",
)
