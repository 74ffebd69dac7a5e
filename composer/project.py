"""Find the newsletter project (the folder holding newsletter.yaml) and load its masthead."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ComposeError, UsageError, os_reason
from composer.issue.load import load_newsletter
from composer.issue.model import Newsletter

NEWSLETTER_FILE = "newsletter.yaml"
STATE_DIR = ".compose"
THEME_DIR = "templates"  # a project's own theme files, each overriding the package's default


@dataclass(frozen=True)
class Project:
    """A loaded newsletter project: its root folder and validated newsletter.yaml."""

    root: Path
    newsletter: Newsletter

    @property
    def config_path(self) -> Path:
        return self.root / NEWSLETTER_FILE

    @property
    def subscribers_dir(self) -> Path:
        return self.root / "subscribers"

    @property
    def theme_dir(self) -> Path:
        """The project's theme overrides (may not exist: then the default theme is used whole)."""
        return self.root / THEME_DIR

    def state_dir(self) -> Path:
        """The git-ignored folder for the delivery log and secrets, created on first use."""
        path = self.root / STATE_DIR
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ComposeError(
                f"cannot create the state folder: {os_reason(exc)}", display_path(path)
            ) from None
        return path


def find_root(start: Path | None = None, near: Path | None = None) -> Path:
    """The nearest folder holding newsletter.yaml, upward from `start` (the working folder),
    else upward from the file `near` (so `compose build ~/news/issues/vol-37.yaml` works from
    anywhere)."""
    origins = [(start or Path.cwd()).resolve()]
    if near is not None:
        origins.append(near.resolve().parent)
    for here in origins:
        for folder in (here, *here.parents):
            if (folder / NEWSLETTER_FILE).is_file():
                return folder
    beside = f" nor above {display_path(near)}" if near is not None else ""
    raise UsageError(
        f"no {NEWSLETTER_FILE} in {origins[0]} or any folder above it{beside}; "
        "run inside a newsletter project or pass --project DIR"
    )


def load_project(root: Path | None = None, near: Path | None = None) -> Project:
    """Load the project at `root`, else the nearest one upward (see find_root)."""
    if root is not None and not (root / NEWSLETTER_FILE).is_file():
        raise UsageError(
            f"{root}: no {NEWSLETTER_FILE} here (--project must name a project folder)"
        )
    folder = root.resolve() if root is not None else find_root(near=near)
    config = folder / NEWSLETTER_FILE
    newsletter = load_newsletter(config, display_path(config))
    return Project(folder, newsletter)


def display_path(path: Path) -> str:
    """`path` relative to the working folder when that is shorter, as error messages show it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
