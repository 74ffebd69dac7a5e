"""README's two set-up commands stay true: CI runs exactly the test command README gives."""

from __future__ import annotations

import re

from tests.conftest import REPO


def readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", readme)[:2]


def test_readme_starts_with_the_build_and_the_test_command() -> None:
    build, test = readme_commands()
    # Debian refuses a bare `pip install`: both commands make and use a virtualenv.
    assert "python3 -m venv .venv" in build and ".venv/bin/pip install ." in build
    assert build.endswith(".venv/bin/compose build issues/vol-36.yaml")
    assert "python3 -m venv .venv" in test and ".venv/bin/pip install -e '.[test]'" in test
    assert test.endswith(".venv/bin/python -m pytest -n auto")
    for check in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert check in test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci_lines[-1] == readme_commands()[1]
