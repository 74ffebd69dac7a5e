"""Golden files: email.html, email.txt and message.eml of the small fixture, compared whole.

Regenerate after an intended change of the theme or the message format with:
    COMPOSE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
and review the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_compose

GOLDEN = Path(__file__).resolve().parent / "golden" / "small"
UPDATE = os.environ.get("COMPOSE_UPDATE_GOLDEN") == "1"

# Fields that change on every build: the message's date, id and MIME boundary.
_VOLATILE = [
    (re.compile(rb"^Date: .*$", re.MULTILINE), b"Date: <date>\r"),
    (re.compile(rb"^Message-ID: <[^>]+>", re.MULTILINE), b"Message-ID: <id>"),
    (re.compile(rb"=_composer_[0-9a-f]+"), b"=_composer_<boundary>"),
]


def normalize(name: str, data: bytes) -> bytes:
    if name == "message.eml":
        for pattern, replacement in _VOLATILE:
            data = pattern.sub(replacement, data)
        data = data.replace(b"\r\r", b"\r")
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import SMALL_PROJECT, copy_project

    # A copy: a build keeps its render cache in the project's state folder.
    project = copy_project(SMALL_PROJECT, tmp_path_factory.mktemp("golden-project"))
    out = tmp_path_factory.mktemp("golden-build")
    result = run_compose(
        "--project", project, "build", project / "issues" / "small.yaml", "--out", out
    )
    assert result.code == 0, result.stderr
    return out / "small"


@pytest.mark.parametrize("name", ["email.html", "email.txt", "message.eml"])
def test_output_matches_golden_file(built: Path, name: str) -> None:
    actual = normalize(name, (built / name).read_bytes())
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual)
    assert golden.exists(), f"no golden file {golden}; run with COMPOSE_UPDATE_GOLDEN=1"
    assert actual == golden.read_bytes(), (
        f"{name} differs from {golden}; if the change is intended, regenerate with "
        "COMPOSE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py"
    )
