"""Time a whole `compose build` of Vol. 36 against the official MJML CLI rendering the same MJML.

    python benchmarks/build.py [--runs 7]

Prints the median wall time of each, as processes, and of an in-process rebuild (what
`compose preview` does on every save). The MJML CLI (npm package `mjml`) is installed on first
use into benchmarks/.data/mjml (git-ignored); it needs node and npm.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISSUE = REPO / "issues" / "vol-36.yaml"
MJML_DIR = REPO / "benchmarks" / ".data" / "mjml"


def mjml_cli() -> Path:
    """The official MJML command line, installed from npm on first use."""
    binary = MJML_DIR / "node_modules" / ".bin" / "mjml"
    if not binary.exists():
        if not shutil.which("npm"):
            sys.exit("npm is needed to install the official MJML CLI (apt-get install npm)")
        MJML_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(MJML_DIR),
                "mjml",
            ],
            check=True,
        )
    return binary


def median_seconds(command: list[str], runs: int, cwd: Path) -> float:
    """Median wall time of `command` over `runs` runs, after one warm-up run."""
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vol36_mjml() -> str:
    """The MJML our pipeline hands to MRML for Vol. 36's full email (the largest document)."""
    from composer.build import EMAIL_TEMPLATE
    from composer.issue.load import load_issue
    from composer.project import load_project
    from composer.render import PREFERENCES_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER, templates
    from composer.render.view import build_view

    project = load_project(REPO)
    view = build_view(load_issue(ISSUE, project.newsletter), project.newsletter, ISSUE.stem)
    return templates.render(
        project.theme_dir,
        EMAIL_TEMPLATE,
        v=view,
        mode="full",
        web=False,
        unsubscribe_url=UNSUBSCRIBE_PLACEHOLDER,
        preferences_url=PREFERENCES_PLACEHOLDER,
    )


def in_process_rebuild(runs: int, language: str | None = None) -> float:
    """Median time of build_issue() in a warm process, as the preview server runs it (in the
    theme's `language`, default the newsletter's: each language keeps its own environment)."""
    from composer.build import build_issue
    from composer.project import load_project

    build_issue(load_project(REPO), ISSUE, language=language)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        build_issue(load_project(REPO), ISSUE, language=language)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    cli = mjml_cli()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "vol-36.mjml"
        source.write_text(vol36_mjml(), encoding="utf-8")
        official = median_seconds(
            [str(cli), str(source), "-o", str(folder / "mjml.html")], args.runs, folder
        )
        ours = median_seconds(
            [sys.executable, "-m", "composer", "build", str(ISSUE), "--out", str(folder / "build")],
            args.runs,
            REPO,
        )
        version = subprocess.run(
            [str(cli), "--version"], capture_output=True, text=True, check=True
        ).stdout.split()
        document_kb = source.stat().st_size / 1024
    rebuild = in_process_rebuild(args.runs)
    rebuild_sq = in_process_rebuild(args.runs, "sq")
    print(f"MJML document                         : {document_kb:7.0f} KB (Vol. 36, full text)")
    print(
        f"official MJML CLI {version[-1] if version else '?'}, render only: {official * 1000:7.0f} ms (median of {args.runs})"
    )
    print(
        f"compose build vol-36, whole build     : {ours * 1000:7.0f} ms (validate, render, inline, text, eml)"
    )
    print(f"ratio compose / MJML CLI             : {ours / official:7.2f}  (goal <= 0.50)")
    print(f"in-process rebuild (preview on save)  : {rebuild * 1000:7.0f} ms")
    print(f"the same in Albanian (theme catalogue): {rebuild_sq * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
