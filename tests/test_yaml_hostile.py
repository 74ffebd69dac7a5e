"""Hostile YAML: alias bombs, deep nesting, control characters and huge files end in one line.

Each runs `compose validate` as a real process under a memory limit: before the guard, the alias
bomb ran for minutes or ended in MemoryError, and deep nesting in RecursionError.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from composer.issue.marks import MAX_DEPTH

MEMORY_LIMIT = 1024 * 1024 * 1024  # a child that tries to expand a bomb dies instead of the machine

# The classic "billion laughs": nine levels of ten aliases each, about 340 bytes.
ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]\n" for n in range(8)
)


def validate(root: Path, text: str | bytes, name: str = "hostile.yaml") -> tuple[int, list[str]]:
    """`compose validate issues/NAME` in a child process limited to MEMORY_LIMIT of memory."""
    target = root / "issues" / name
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    proc = subprocess.run(
        [sys.executable, "-m", "composer", "validate", f"issues/{name}"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a latency bound: a regressed bomb runs for minutes
        stdin=subprocess.DEVNULL,
        preexec_fn=limit_memory,
        check=False,
    )
    return proc.returncode, proc.stderr.splitlines()


def test_an_alias_bomb_is_refused_at_its_first_alias(small_project: Path) -> None:
    assert len(ALIAS_BOMB) < 400
    code, lines = validate(small_project, ALIAS_BOMB)
    assert code == 1
    assert lines == [
        "issues/hostile.yaml:2:8: YAML aliases (*a) are not allowed; write the value out"
    ]


def test_a_harmless_alias_is_refused_too(small_project: Path) -> None:
    text = (small_project / "issues" / "small.yaml").read_text(encoding="utf-8")
    text = text.replace("contacts: [marko-horvat]", "contacts: &people [marko-horvat]", 1)
    text += "footer_contacts: *people\n"
    code, lines = validate(small_project, text)
    assert code == 1 and len(lines) == 1
    assert "YAML aliases (*people) are not allowed" in lines[0]


@pytest.mark.parametrize(
    "text",
    [
        "[" * 2000 + "]" * 2000 + "\n",
        "".join(f"{'  ' * n}k{n}:\n" for n in range(2000)) + "  " * 2000 + "end\n",
    ],
    ids=["flow", "block"],
)
def test_deep_nesting_is_one_line_not_a_recursion_error(small_project: Path, text: str) -> None:
    code, lines = validate(small_project, text)
    assert code == 1
    assert len(lines) == 1 and f"nested more than {MAX_DEPTH} levels deep" in lines[0]
    assert lines[0].startswith("issues/hostile.yaml:")


def test_a_nul_byte_is_named_with_its_place(small_project: Path) -> None:
    code, lines = validate(small_project, b"volume: 7\ndate: 2024-03-01\nsubject: a\x00b\n")
    assert code == 1
    assert lines == [
        "issues/hostile.yaml:3:11: control character U+0000 is not allowed in YAML; delete it"
    ]


def test_a_huge_file_is_refused_without_reading_it_whole(small_project: Path) -> None:
    code, lines = validate(small_project, "# padding\n" * 500_000)
    assert code == 1
    assert lines == ["issues/hostile.yaml: file is larger than 4 MB; is it the right file?"]


def test_segments_yaml_is_guarded_too(small_project: Path) -> None:
    (small_project / "subscribers").mkdir(exist_ok=True)
    (small_project / "subscribers" / "segments.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "composer", "subscribers", "check"],
        cwd=small_project,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 1
    assert "subscribers/segments.yaml:2:8: YAML aliases (*a) are not allowed" in proc.stderr
    assert "Traceback" not in proc.stderr
