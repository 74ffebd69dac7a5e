"""`compose init`: a new project that validates and builds at once, and keeps readers out of git."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import composer.starter
from composer.build import build_issue
from composer.issue.load import load_issue
from composer.project import load_project
from composer.starter import SAMPLE_ISSUE, create_project, default_name, starter_files
from tests.conftest import REPO, run_in_process

STARTER_FILES = {
    ".gitignore",
    "README.md",
    "newsletter.yaml",
    SAMPLE_ISSUE,
    "subscribers/readers.csv",
    "subscribers/segments.yaml",
}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its content (None for a folder)."""
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def test_init_makes_a_project_that_validates_and_builds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "news"
    code, out, err = run_in_process(capsys, "init", folder, "--name", "Example News")
    assert (code, err) == (0, "")
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == (
        STARTER_FILES
    )
    assert "newsletter.yaml" in out and "subscribers/readers.csv" in out
    assert f"compose build {SAMPLE_ISSUE}" in out.splitlines()[-1]

    code, out, err = run_in_process(capsys, "--project", folder, "validate", folder / SAMPLE_ISSUE)
    assert (code, err) == (0, ""), out
    code, out, err = run_in_process(capsys, "--project", folder, "validate")
    assert (code, err) == (0, ""), out
    code, out, err = run_in_process(capsys, "--project", folder, "subscribers", "check")
    assert (code, err) == (0, ""), out
    # --strict: any warning of the checks (subject, preheader, contrast, footer...) fails it.
    code, out, err = run_in_process(
        capsys, "--project", folder, "build", folder / SAMPLE_ISSUE, "--strict"
    )
    assert (code, err) == (0, ""), out
    email = (folder / "build" / "vol-1" / "email.html").read_text(encoding="utf-8")
    assert "Example News" in email
    assert "REPLACE WITH YOUR POSTAL ADDRESS" in email  # the placeholder says what to change


def test_init_from_the_project_folder_as_a_user_types_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_in_process(capsys, "init", "my-news")
    assert code == 0
    assert out.splitlines()[-1].strip() == f"cd my-news && compose build {SAMPLE_ISSUE}"
    monkeypatch.chdir(tmp_path / "my-news")
    code, out, err = run_in_process(capsys, "build", SAMPLE_ISSUE)
    assert (code, err) == (0, ""), out
    assert "My News" in (tmp_path / "my-news/build/vol-1/email.html").read_text(encoding="utf-8")


def test_the_starter_is_safe_to_send_from_as_it_is() -> None:
    files = starter_files("Example News")
    addresses = {
        address for text in files.values() for address in re.findall(r"[\w.+-]+@[\w.-]+", text)
    }
    assert addresses and all(a.endswith("@example.org") for a in addresses), addresses
    newsletter = yaml.safe_load(files["newsletter.yaml"])
    assert newsletter["transport"] == {"kind": "outbox"}  # mails nobody
    assert len(newsletter["pillars"]) >= 2 and newsletter["contacts"]
    assert "REPLACE" in newsletter["postal_address"]
    assert "templates/" in files["newsletter.yaml"] and "templates/" in files["README.md"]
    assert "{{" not in "".join(files.values())  # every placeholder filled in


def test_refuses_a_folder_that_holds_a_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "news"
    assert run_in_process(capsys, "init", folder)[0] == 0
    (folder / "newsletter.yaml").write_text("name: Mine\n", encoding="utf-8")
    (folder / "issues" / "vol-1.yaml").unlink()
    before = snapshot(folder)

    code, out, err = run_in_process(capsys, "init", folder, "--name", "Other")
    assert code == 1
    assert err == f"{folder}: already holds a newsletter.yaml\n"
    assert out == ""
    assert snapshot(folder) == before


def test_refuses_to_overwrite_any_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "repo"
    (folder / "subscribers").mkdir(parents=True)
    (folder / "subscribers" / "readers.csv").write_text("email\nreal@example.com\n")
    (folder / "notes.txt").write_text("mine\n")
    before = snapshot(folder)

    code, _, err = run_in_process(capsys, "init", folder)
    assert code == 1
    assert "subscribers/readers.csv: already exists" in err
    assert snapshot(folder) == before


def test_init_adds_to_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    created = create_project(tmp_path, "Example News")
    assert {p.relative_to(tmp_path).as_posix() for p in created} == STARTER_FILES
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert load_project(tmp_path).newsletter.name == "Example News"


@pytest.mark.parametrize("existing", [False, True])
def test_a_failure_while_writing_leaves_no_half_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    folder = tmp_path / "news"
    if existing:
        folder.mkdir()
    real_write = composer.starter._write_file
    calls = []

    def failing_write(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, text)

    monkeypatch.setattr(composer.starter, "_write_file", failing_write)
    with pytest.raises(OSError, match="No space"):
        create_project(folder, "Example News")
    assert len(calls) == 3
    assert os.listdir(tmp_path) == (["news"] if existing else [])
    if existing:
        assert os.listdir(folder) == []


def test_gitignore_keeps_subscriber_data_out_of_git(tmp_path: Path) -> None:
    create_project(tmp_path, "Example News")
    personal = [
        "subscribers/readers.csv",
        "subscribers/suppressions.csv",
        "subscribers/consent.csv",
        "subscribers/partners-2024.csv",
        ".compose/delivery.sqlite",
        "build/vol-1/message.eml",
        "outbox/vol-1/0001.eml",
    ]
    kept = ["newsletter.yaml", SAMPLE_ISSUE, "subscribers/segments.yaml", ".gitignore"]
    for rel in personal:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )

    assert git("init", "-q").returncode == 0
    ignored = git("check-ignore", *personal)
    assert ignored.returncode == 0, ignored.stderr
    assert ignored.stdout.split() == personal
    assert git("check-ignore", *kept).returncode == 1  # none of them ignored
    staged = git("add", "--dry-run", ".").stdout
    assert "subscribers/segments.yaml" in staged and ".csv" not in staged

    why = (tmp_path / ".gitignore").read_text(encoding="utf-8")
    assert "cannot be erased" in why
    for pattern in ("/subscribers/*.csv", "/.compose/", "/build/", "/outbox/"):
        block = why.split(f"\n{pattern}\n")[0]
        assert block.rstrip().splitlines()[-1].startswith("#"), f"{pattern} has no comment"


@pytest.mark.parametrize(
    "name",
    [
        'He said "hi": yes',
        "O'Brien's #1 News: Vol: 2",
        "- [x] {a}: &b *c | >",
        "yes",
        "2024-01-01",
        "Ünïcode – Ñews ✉",
        "back\\slash %s \\1 \\g<0>",
    ],
)
def test_a_name_with_quotes_and_colons_stays_valid_yaml(tmp_path: Path, name: str) -> None:
    create_project(tmp_path, name)
    project = load_project(tmp_path)
    assert project.newsletter.name == name
    assert project.newsletter.from_.name == name
    issue = load_issue(tmp_path / SAMPLE_ISSUE, project.newsletter)
    assert issue.subject == f"{name} — No. 1"
    assert f"# {name}\n" in (tmp_path / "README.md").read_text(encoding="utf-8")
    built = build_issue(project, tmp_path / SAMPLE_ISSUE, "auto")
    assert not built.warnings


@pytest.mark.parametrize("name", ["", "   ", "two\nlines", "tab\there", "nul\x00"])
def test_a_name_that_cannot_be_a_masthead_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, _, err = run_in_process(capsys, "init", tmp_path / "news", "--name", name)
    assert code == 2
    assert err.startswith("--name must")
    assert not (tmp_path / "news").exists()


def test_project_option_does_not_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_in_process(capsys, "--project", tmp_path, "init", tmp_path / "news")
    assert code == 2
    assert "--project does not apply to init" in err
    assert not (tmp_path / "news").exists()


@pytest.mark.parametrize(
    ("folder", "name"),
    [("my-news", "My News"), ("unodc_see", "Unodc See"), ("ACME Weekly", "ACME Weekly")],
)
def test_default_name_comes_from_the_folder(tmp_path: Path, folder: str, name: str) -> None:
    assert default_name(tmp_path / folder) == name


def test_this_repository_keeps_new_subscriber_lists_out_of_git() -> None:
    """Only the two fictional sample files are tracked; any real list added here is ignored."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "--no-index",
            "subscribers/ministry.csv",
            "subscribers/consent.csv",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["subscribers/ministry.csv", "subscribers/consent.csv"]
    tracked = subprocess.run(
        ["git", "ls-files", "subscribers"], cwd=REPO, capture_output=True, text=True, check=True
    )
    for name in tracked.stdout.split():
        if name.endswith(".csv"):
            text = (REPO / name).read_text(encoding="utf-8")
            domains = {
                line.split(",")[0].rpartition("@")[2].lower() for line in text.splitlines()[1:]
            }
            assert all(d.endswith(("example.org", "example.com")) for d in domains), name
