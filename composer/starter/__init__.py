"""`compose init`: a new newsletter project, made from the starter files shipped in this package.

The starter files live in `files/` beside this module as package data, so an installed wheel
can create a project anywhere. Placeholders `{{ name }}`, `{{ subject }}` and `{{ date }}` are
filled in (as quoted YAML scalars in YAML files); everything is gathered and checked in memory
before the first file is written.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml

from composer.errors import ComposeError, InvalidInput, Problem, UsageError
from composer.project import NEWSLETTER_FILE, display_path

SAMPLE_ISSUE = "issues/vol-1.yaml"  # what the printed next step builds
_FILES = "files"
# setuptools' package-data globs skip names that start with a dot: stored without it.
_RENAMED = {"gitignore": ".gitignore"}
_PLACEHOLDER = re.compile(r"\{\{ (name|subject|date) \}\}")


class ProjectExists(ComposeError):
    """The folder already holds a newsletter project (or files init would write)."""


def default_name(folder: Path) -> str:
    """A newsletter name made from the folder's name: `my-news` becomes `My News`."""
    words = re.sub(r"[-_.\s]+", " ", folder.resolve().name).strip()
    if not words:
        return "My Newsletter"
    return words.title() if words.islower() else words


def yaml_scalar(value: str) -> str:
    """`value` as one double-quoted YAML scalar that reads back as exactly `value`."""
    text = yaml.safe_dump(value, default_style='"', allow_unicode=True, width=1 << 30)
    text = text.rstrip("\n").removesuffix("\n...").rstrip("\n")
    if "\n" in text or yaml.safe_load(text) != value:  # never expected: safe_dump escapes all
        raise ValueError(f"cannot write {value!r} as a one-line YAML scalar")
    return text


def starter_files(name: str, today: dt.date | None = None) -> dict[str, str]:
    """The new project's files (relative POSIX path -> text), with `name` filled in."""
    _check_name(name)
    date = (today or dt.date.today()).isoformat()
    subject = f"{name} — No. 1"
    as_yaml = {"name": yaml_scalar(name), "subject": yaml_scalar(subject), "date": date}
    as_text = {"name": name, "subject": subject, "date": date}
    files: dict[str, str] = {}
    for rel, source in _walk(resources.files(__name__).joinpath(_FILES)):
        values = as_yaml if rel.endswith(".yaml") else as_text
        files[rel] = _fill(source.read_text(encoding="utf-8"), values)
    _check_files(files)
    # newsletter.yaml first, then the folders' files, then the other top-level files.
    return dict(
        sorted(
            files.items(),
            key=lambda item: (item[0] != NEWSLETTER_FILE, "/" not in item[0], item[0]),
        )
    )


def create_project(folder: Path, name: str | None = None) -> list[Path]:
    """Create a newsletter project in `folder` (made if needed); return the files written.

    Every file is made and checked in memory first; a failure while writing removes what was
    written, so no half project is left behind. Nothing existing is ever overwritten.
    """
    files = starter_files(name if name is not None else default_name(folder))
    _refuse_existing(folder, files)
    if folder.exists():
        _write_into(folder, files)
    else:
        _write_new(folder, files)
    return [folder / rel for rel in files]


def _walk(node: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            if child.name != "__pycache__":
                yield from _walk(child, f"{prefix}{child.name}/")
        else:
            yield f"{prefix}{_RENAMED.get(child.name, child.name)}", child


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def _check_name(name: str) -> None:
    if not name.strip():
        raise UsageError("--name must not be empty")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise UsageError("--name must be one line of text, without control characters")


def _check_files(files: dict[str, str]) -> None:
    """The starter must be a valid project whatever the name: read every YAML file back."""
    from composer.issue.model import Issue, Newsletter

    for rel, text in files.items():
        if rel.endswith(".yaml"):
            data = yaml.safe_load(text)
            if rel == NEWSLETTER_FILE:
                Newsletter.model_validate(data)
            elif rel == SAMPLE_ISSUE:
                Issue.model_validate(data)
    if NEWSLETTER_FILE not in files or SAMPLE_ISSUE not in files:
        raise ComposeError("the starter files of this composer installation are incomplete")


def _refuse_existing(folder: Path, files: dict[str, str]) -> None:
    shown = display_path(folder)
    if folder.exists() and not folder.is_dir():
        raise ProjectExists(f"{shown}: exists and is not a folder")
    if (folder / NEWSLETTER_FILE).exists():
        raise ProjectExists(f"{shown}: already holds a {NEWSLETTER_FILE}")
    taken = [rel for rel in files if (folder / rel).exists() or (folder / rel).is_symlink()]
    if taken:
        raise InvalidInput(
            [
                Problem("already exists; compose init writes only new files", f"{shown}/{rel}")
                for rel in taken
            ]
        )


def _write_new(folder: Path, files: dict[str, str]) -> None:
    """Write into a hidden folder beside `folder`, then rename it: all files appear at once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.init-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        for rel, text in files.items():
            _write_file(staging / rel, text)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_into(folder: Path, files: dict[str, str]) -> None:
    """Add the files to an existing folder; on a failure, remove what was added."""
    made: list[Path] = []
    try:
        for rel, text in files.items():
            target = folder / rel
            for parent in reversed(target.relative_to(folder).parents[:-1]):
                if not (folder / parent).exists():
                    (folder / parent).mkdir()
                    made.append(folder / parent)
            _write_file(target, text)
            made.append(target)
    except BaseException:
        for path in reversed(made):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8", newline="\n") as out:  # "x": never overwrite
        out.write(text)
