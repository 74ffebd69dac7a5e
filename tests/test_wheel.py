"""The wheel works outside this repository: init, build and preview from a fresh virtualenv.

The default theme, the starter files and every page are package data; a file missing from the
wheel shows only here, since every other test imports composer from the working tree.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import site
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

from composer.starter import SAMPLE_ISSUE, starter_files
from tests.conftest import REPO

NAME = "Wheel Test News"
PREVIEW_LINE = re.compile(r"^Previewing (?P<file>.+) at (?P<url>http://127\.0\.0\.1:\d+/)")


def clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user who installed the wheel: nothing points into the repository."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        PYTHONUNBUFFERED="1",  # the preview's URL line must arrive while it runs
        PIP_NO_INDEX="1",  # everything is local: no network
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_ROOT_USER_ACTION="ignore",
        COLUMNS="120",
    )
    return env


def run(
    args: Sequence[str | Path], cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    """A wheel of the working tree, built from a copy so the repository gets no build/ folder."""
    source = tmp / "source"
    shutil.copytree(
        REPO / "composer",
        source / "composer",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    dist = tmp / "dist"
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-w", str(dist), str(source)],
        cwd=tmp,
        env=env,
    )
    assert built.returncode == 0, (
        "building the wheel failed; without network this needs setuptools>=70.1 or the `wheel` "
        f"package in the test environment:\n{built.stdout[-2000:]}\n{built.stderr[-3000:]}"
    )
    (wheel,) = dist.glob("composer-*.whl")
    return wheel


def make_venv(tmp: Path, env: dict[str, str]) -> Path:
    """A fresh virtualenv whose dependencies come from this machine, not from a registry."""
    venv = tmp / "venv"
    made = run([sys.executable, "-m", "venv", "--system-site-packages", venv], cwd=tmp, env=env)
    assert made.returncode == 0, made.stderr
    # When the tests run in a virtualenv, the dependencies are there, not in the system's
    # site-packages: list those folders as plain paths (their .pth files, such as the
    # editable install of composer, are not run), after the new venv's own site-packages.
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    (purelib / "_outer_site.pth").write_text(
        "".join(f"{folder}\n" for folder in site.getsitepackages()), encoding="utf-8"
    )
    return venv


def read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode("utf-8")


def test_an_installed_wheel_inits_builds_and_previews_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may come from the working tree by accident
    venv = tmp_path / "venv"
    env = clean_env(venv)
    wheel = build_wheel(tmp_path, env)
    make_venv(tmp_path, env)
    bin_dir = venv / "bin"
    installed = run(
        [bin_dir / "pip", "install", "--no-deps", "--force-reinstall", wheel], tmp_path, env
    )
    assert installed.returncode == 0, installed.stderr

    where = run(
        [bin_dir / "python", "-c", "import composer; print(composer.__file__)"], tmp_path, env
    )
    assert where.returncode == 0, where.stderr
    module = Path(where.stdout.strip()).resolve()
    assert module.is_relative_to(venv.resolve()), module
    assert not module.is_relative_to(REPO), module
    # The compiled catalogues are package data too: the theme speaks its languages when installed.
    catalogues = "from composer.render.i18n import available_languages as a; print(*a())"
    languages = run([bin_dir / "python", "-c", catalogues], tmp_path, env)
    assert languages.stdout.split() == ["en", "sq", "sr-Latn"], languages.stdout + languages.stderr

    compose = bin_dir / "compose"
    project = tmp_path / "x"
    init = run([compose, "init", project, "--name", NAME], tmp_path, env)
    assert init.returncode == 0, init.stderr
    assert f"compose build {SAMPLE_ISSUE}" in init.stdout
    made = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert made == set(starter_files(NAME)), "a starter file is missing from the wheel"

    built = run([compose, "build", SAMPLE_ISSUE], project, env)
    assert built.returncode == 0, built.stdout + built.stderr
    email = project / "build" / Path(SAMPLE_ISSUE).stem / "email.html"
    assert NAME in email.read_text(encoding="utf-8")

    preview = subprocess.Popen(
        [str(compose), "preview", SAMPLE_ISSUE, "--port", "0", "--no-open"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert preview.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=read_lines, args=(preview.stdout, lines), daemon=True).start()
    said: list[str] = []
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline and preview.poll() is None:
            try:
                said.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if match := PREVIEW_LINE.match(said[-1]):
                url = match["url"]
        while url is None and not lines.empty():  # what it said before it stopped
            said.append(lines.get())
        assert url is not None, (
            f"no 'Previewing ... at URL' line; the preview said:\n{''.join(said)}"
        )

        status, page = get(url)  # the page itself: a template of the theme, package data too
        assert status == 200
        assert "<html" in page and "preview" in page.lower()
        status, sent = get(url + "email.html")
        assert status == 200
        assert NAME in sent and "A newsletter starts" in sent
    finally:
        preview.terminate()
        try:
            preview.wait(timeout=15)
        except subprocess.TimeoutExpired:
            preview.kill()
            preview.wait()
