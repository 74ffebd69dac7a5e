"""What `compose build` prints: a summary table of the build and its warnings."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from composer.build import KB, BuiltIssue
from composer.project import display_path


def print_build_summary(built: BuiltIssue, target: Path) -> None:
    """Sections, articles, size against budget, mode and warnings; warnings also on stderr."""
    console = Console(highlight=False)
    table = Table(title=f"Built {display_path(target)}/", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    size, budget = built.email_size, built.budget
    table.add_row("Issue", Text(built.issue.subject))  # user text: no markup
    table.add_row("Sections", str(len(built.issue.sections)))
    table.add_row("Articles", str(built.view.article_count))
    share = f"{size / KB:.1f} KB of {budget // KB} KB ({100 * size / budget:.0f}%)"
    table.add_row("email.html", share if size <= budget else f"[red]{share}[/red]")
    if built.full_size > 0 and built.mode == "digest":
        table.add_row(
            "Full text", f"over {built.full_size / KB:.0f} KB: over budget, so teasers are sent"
        )
    table.add_row("Mode", built.mode)
    table.add_row("Warnings", str(len(built.warnings)) if built.warnings else "none")
    console.print(table)
    errors = Console(stderr=True, highlight=False)
    for warning in built.warnings:
        errors.print(Text("warning: ", style="yellow") + Text(warning), soft_wrap=True)
