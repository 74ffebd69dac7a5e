"""Shared fixtures: a copy of the small compose project, and running `compose` as a process."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SMALL_PROJECT = FIXTURES / "compose" / "project"
THEME = REPO / "composer" / "theme"  # the default theme, package data
# A fixture built in place keeps a render cache in .compose/: a copy starts without state.
NO_STATE = shutil.ignore_patterns(".compose")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_compose(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    process: bool = False,
) -> Result:
    """Run `compose ARGS` through its real entry point and error boundary, as a user would.

    In this process by default (a child costs about half a second of start-up); `process=True`
    starts a real child for what only a process shows (the console script, signals, imports).
    Either way there is no terminal: stdin is empty, as in CI.
    """
    if not process:
        return _run_in_this_process([str(a) for a in args], cwd, env)
    proc = subprocess.run(
        [sys.executable, "-m", "composer", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,  # no terminal, as in CI
        check=False,  # the exit code is what tests assert
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _run_in_this_process(args: list[str], cwd: Path | None, env: dict[str, str] | None) -> Result:
    from composer.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_cwd, saved_env, saved_stdin = os.getcwd(), dict(os.environ), sys.stdin
    try:
        if cwd is not None:
            os.chdir(cwd)
        os.environ.update({"COLUMNS": "120", **(env or {})})
        sys.stdin = io.StringIO("")
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
            main(args)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdin = saved_stdin
    code = exited.value.code
    return Result(
        code if isinstance(code, int) else 0 if code is None else 1, out.getvalue(), err.getvalue()
    )


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run `compose ARGS` in this process through the real entry point and its error boundary."""
    from composer.cli import main

    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def copy_project(fixture: Path, tmp_path: Path) -> Path:
    """A writable copy of a fixture project folder, as tmp_path/project."""
    target = tmp_path / "project"
    shutil.copytree(fixture, target, ignore=NO_STATE)
    return target


def override_theme_file(root: Path, name: str) -> Path:
    """Copy one file of the default theme into the project's templates/, which overrides it."""
    target = root / "templates" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(THEME / name, target)
    return target


def mark_sent(root: Path, slug: str) -> None:
    """Record in the real delivery log that one reader of a list got `slug` (it is public)."""
    from composer.delivery.log import DeliveryLog, Outcome, SendRecord
    from composer.project import load_project

    with DeliveryLog.for_project(load_project(root).state_dir()) as log:
        log.begin_send(slug, "main", SendRecord("Subject", "full", "sha", "outbox"))
        log.enqueue(slug, "main", ["reader@example.org"], "outbox")
        log.record(slug, [Outcome("reader@example.org", "sent")])


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test process, shared by every browser test (pages are fresh)."""
    from tests.browser import chromium_browser

    with chromium_browser() as launched:
        yield launched


@pytest.fixture
def small_project(tmp_path: Path) -> Path:
    """A writable copy of tests/fixtures/compose/project (newsletter.yaml + issues/small.yaml)."""
    return copy_project(SMALL_PROJECT, tmp_path)


@pytest.fixture(scope="session")
def editions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample project with an edition of both seeds in each language: the theme's strings
    follow the edition a reader gets (an issue not translated into a language is English)."""
    root = tmp_path_factory.mktemp("editions")
    (root / "issues").mkdir()
    shutil.copy(REPO / "newsletter.yaml", root / "newsletter.yaml")
    vol36 = (REPO / "issues" / "vol-36.yaml").read_text(encoding="utf-8")
    vol36 = vol36.replace(
        "\ntranslations:\n",
        '\ntranslations:\n  sq:\n    subject: "UNODC në Evropën Juglindore"\n',
        1,
    )
    (root / "issues" / "vol-36.yaml").write_text(vol36, encoding="utf-8")
    may = (REPO / "issues" / "2022-05.yaml").read_text(encoding="utf-8")
    may += (
        '\ntranslations:\n  sr-Latn:\n    subject: "UNODC u Jugoistočnoj Evropi"\n'
        '  sq:\n    subject: "UNODC në Evropën Juglindore"\n'
    )
    (root / "issues" / "2022-05.yaml").write_text(may, encoding="utf-8")
    return root
