"""Scratch newsletter projects for delivery tests, and running `compose` against them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "delivery" / "project"
ISSUE = "issues/x.yaml"
NO_STATE = shutil.ignore_patterns(".compose")  # a fixture built in place has a cache there


@dataclass
class Ran:
    """A finished `compose` process."""

    code: int
    stdout: str
    stderr: str


def make_project(
    root: Path,
    readers: int | Iterable[tuple[str, str]] = 3,
    *,
    transport: str = "outbox",
    extra_settings: str = "",
    extra_config: str = "",
) -> Path:
    """A copy of the delivery fixture with `readers` generated subscribers (or the given ones)."""
    target = root / "project"
    shutil.copytree(FIXTURE, target, ignore=NO_STATE)
    config = target / "newsletter.yaml"
    text = config.read_text(encoding="utf-8").replace("kind: outbox", f"kind: {transport}")
    text = text.replace("transport:\n", "transport:\n" + extra_settings, 1) + extra_config
    config.write_text(text, encoding="utf-8")
    rows = (
        [(f"reader{n:04d}@example.org", f"Reader {n}") for n in range(readers)]
        if isinstance(readers, int)
        else list(readers)
    )
    with (target / "subscribers" / "main.csv").open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,country\n")
        for email, name in rows:
            quoted = '"' + name.replace('"', '""') + '"'
            out.write(f"{email},{quoted},Serbia\n")
    return target


def compose_args(project: Path, *args: str) -> list[str]:
    """The argv of `compose --project PROJECT ARGS...` as a child Python process."""
    return [sys.executable, "-m", "composer", "--project", str(project), *args]


def compose_env(**extra: str) -> dict[str, str]:
    """The environment for a child `compose`: no inherited transport settings or secrets."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COMPOSE_SMTP_", "COMPOSE_SENDGRID_", "SENDGRID_"))
    }
    env["COLUMNS"] = "120"
    env.update(extra)
    return env


def run(project: Path, *args: str, timeout: float = 120, **env: str) -> Ran:
    """Run `compose` in a child process, without a terminal, and wait for it."""
    proc = subprocess.run(
        compose_args(project, *args),
        env=compose_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def send(project: Path, *args: str, **env: str) -> Ran:
    """`compose send issues/x.yaml --list main --yes ARGS...`."""
    return run(project, "send", str(project / ISSUE), "--list", "main", "--yes", *args, **env)
