"""`compose validate`, `build` and `schema`: thin wrappers over loading and build_issue()."""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer.cli import App
from composer.cli.options import ISSUE_FILE, mode_option
from composer.errors import ComposeError, InvalidInput, Problem
from composer.modes import Mode


@click.command()
@click.argument("files", nargs=-1, type=ISSUE_FILE)
@click.pass_obj
def validate(app: App, files: tuple[Path, ...]) -> None:
    """Check issue files (and newsletter.yaml); print every problem."""
    from composer.issue.load import issue_problems
    from composer.project import display_path

    # newsletter.yaml problems raise and are printed by the root
    project = app.project(near=files[0] if files else None)
    problems: list[Problem] = []
    for path in files:
        if not path.is_file():
            problems.append(Problem("no such file", display_path(path)))
            continue
        found = issue_problems(path, project.newsletter)
        problems.extend(found)
        if not found:
            click.echo(f"{display_path(path)}: ok")
    if problems:
        raise InvalidInput(problems)
    if not files:
        click.echo(f"{display_path(project.config_path)}: ok")


@click.command()
@click.argument("file", type=ISSUE_FILE)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the build (default: build/ in the project).",
)
@mode_option
@click.option("--strict", is_flag=True, help="Exit 1 when any check warns (for CI).")
@click.pass_obj
def build(app: App, file: Path, out_dir: Path | None, mode: Mode, strict: bool) -> None:
    """Render one issue into OUT/<slug>/: email.html, email.txt, web.html, message.eml."""
    from composer.build import build_issue, edition_web_versions, write_build
    from composer.cli.summary import print_build_summary
    from composer.delivery.message import sample_message

    project = app.project(near=file)
    built = build_issue(project, file, mode)
    target = write_build(
        built,
        out_dir or project.root / "build",
        sample_message(built, project.newsletter),
        edition_web_versions(project, built),
    )
    print_build_summary(built, target)
    if strict and built.warnings:
        raise ComposeError(f"{len(built.warnings)} warning(s) with --strict")


@click.command()
def schema() -> None:
    """Print the JSON Schema of issue files (for editors with a YAML language server)."""
    from composer.issue.schema import issue_schema

    click.echo(json.dumps(issue_schema(), indent=2, ensure_ascii=False))
