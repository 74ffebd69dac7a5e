"""An issue's file name becomes a folder and a web address: only safe names are accepted.

Before, `..yaml` built into `out/..old.*` and its outbox send wrote `.eml` files into the
project root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from composer.build import inside
from composer.errors import ComposeError
from tests.conftest import run_compose


@pytest.mark.parametrize("name", ["..yaml", "...yaml", ".hidden.yaml", "two words.yaml", "-x.yaml"])
def test_an_unsafe_file_name_is_refused_by_build_and_send(small_project: Path, name: str) -> None:
    shutil.copy(small_project / "issues" / "small.yaml", small_project / "issues" / name)
    (small_project / "subscribers").mkdir()
    (small_project / "subscribers" / "main.csv").write_text("email\nana@example.org\n")
    before = sorted(p.name for p in small_project.iterdir())

    built = run_compose("build", f"issues/{name}", "--out", "out", cwd=small_project)
    sent = run_compose("send", f"issues/{name}", "--list", "main", "--yes", cwd=small_project)

    for result in (built, sent):
        assert result.code == 1
        assert result.stderr.splitlines() == [
            (
                f"issues/{name}: the file name '{name}' cannot name an issue: it becomes a folder "
                "and a web address, so use letters, digits, - and _ (for example vol-37.yaml)"
            )
        ]
    assert sorted(p.name for p in small_project.iterdir()) == before
    assert not list(small_project.glob("*.eml"))


@pytest.mark.parametrize("name", ["vol-36", "2022-05", "vol_37", "issue.v2"])
def test_ordinary_names_are_accepted(small_project: Path, name: str) -> None:
    shutil.copy(small_project / "issues" / "small.yaml", small_project / "issues" / f"{name}.yaml")
    result = run_compose("build", f"issues/{name}.yaml", "--out", "out", cwd=small_project)
    assert result.code == 0, result.stderr
    assert (small_project / "out" / name / "email.html").is_file()


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "/etc"])
def test_inside_refuses_every_path_that_leaves_its_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(ComposeError):
        inside(tmp_path, name)
    assert inside(tmp_path, "vol-36") == tmp_path / "vol-36"
