"""Unsubscribe tokens: opaque, unforgeable, deterministic, URL-safe; the secret kept once, 0600."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer.delivery.tokens import (
    InvalidToken,
    load_secret,
    make_token,
    read_token,
)
from composer.project import load_project
from tests.conftest import NO_STATE

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "delivery" / "project"
SECRET = b"test secret"
URL_SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

addresses = st.emails().map(str.lower)
list_names = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=40)


@given(list_names, addresses)
def test_round_trip(list_name: str, email: str) -> None:
    token = make_token(SECRET, list_name, email)
    assert read_token(SECRET, token) == (list_name, email)
    assert set(token) <= URL_SAFE


@given(addresses)
def test_the_address_is_never_in_clear(email: str) -> None:
    token = make_token(SECRET, "main", email)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert email.encode() not in raw
    assert email not in token


def test_deterministic_and_distinct() -> None:
    assert make_token(SECRET, "main", "ana@example.org") == make_token(
        SECRET, "main", "ana@example.org"
    )
    # Addresses compare case-insensitively, as the audience compares them.
    assert make_token(SECRET, "main", "Ana@Example.org") == make_token(
        SECRET, "main", "ana@example.org"
    )
    assert make_token(SECRET, "main", "ana@example.org") != make_token(
        SECRET, "other", "ana@example.org"
    )
    assert make_token(SECRET, "main", "ana@example.org") != make_token(
        b"other", "main", "ana@example.org"
    )


def test_every_single_change_is_refused() -> None:
    token = make_token(SECRET, "main", "ana@example.org")
    for position in range(len(token)):
        for replacement in "AQw-_":
            if token[position] == replacement:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(InvalidToken):
                read_token(SECRET, tampered)


@pytest.mark.parametrize("bad", ["", "x", "!!!!", "A" * 2000, "AQ", "AQ==", "abc def"])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(InvalidToken):
        read_token(SECRET, bad)


def test_another_secret_cannot_read_it() -> None:
    token = make_token(SECRET, "main", "ana@example.org")
    with pytest.raises(InvalidToken):
        read_token(b"another secret", token)
    assert issubclass(InvalidToken, ValueError)


def test_secret_file_created_once_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(FIXTURE, tmp_path / "p", ignore=NO_STATE)
    monkeypatch.delenv("COMPOSE_SECRET", raising=False)
    project = load_project(tmp_path / "p")
    first = load_secret(project)
    path = tmp_path / "p" / ".compose" / "secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) >= 32
    assert load_secret(project) == first  # created once, then read back


def test_secret_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copytree(FIXTURE, tmp_path / "p", ignore=NO_STATE)
    monkeypatch.setenv("COMPOSE_SECRET", "from-env")
    assert load_secret(load_project(tmp_path / "p")) == b"from-env"
    assert not (tmp_path / "p" / ".compose" / "secret").exists()


def test_unsubscribe_url_hangs_off_the_configured_base() -> None:
    project = load_project(FIXTURE)
    token = make_token(SECRET, "main", "ana@example.org")
    assert (
        project.newsletter.unsubscribe_link(token)
        == f"https://news.example.org/unsubscribe/{token}"
    )


# Made by the version 0x01 code (HMAC keystream SIV) before AES-SIV replaced it:
# make_token(b"fixed-secret", "newsletter", "reader@example.org"). Links like it are in inboxes.
LEGACY_SECRET = b"fixed-secret"
LEGACY_TOKEN = "Aae3ohnFe4Eihfd2gjBqilVdBJ8zVgsupYUO0ja5TIxoewBgZO5LZIne52IlVw"


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_a_version_1_token_already_in_an_inbox_still_resolves() -> None:
    assert _raw(LEGACY_TOKEN)[0] == 0x01
    assert read_token(LEGACY_SECRET, LEGACY_TOKEN) == ("newsletter", "reader@example.org")
    with pytest.raises(InvalidToken):
        read_token(b"another secret", LEGACY_TOKEN)
    tampered = LEGACY_TOKEN[:-3] + ("A" if LEGACY_TOKEN[-3] != "A" else "B") + LEGACY_TOKEN[-2:]
    with pytest.raises(InvalidToken):
        read_token(LEGACY_SECRET, tampered)


def test_new_tokens_are_version_2_aes_siv() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    token = make_token(LEGACY_SECRET, "newsletter", "Reader@Example.org")
    assert token != LEGACY_TOKEN and set(token) <= URL_SAFE
    assert token == make_token(LEGACY_SECRET, "newsletter", "reader@example.org")
    raw = _raw(token)
    assert raw[0] == 0x02
    key = HKDF(hashes.SHA256(), 64, None, b"composer unsubscribe token v2").derive(LEGACY_SECRET)
    assert AESSIV(key).decrypt(raw[1:], [b"\x02"]) == b"newsletter\x00reader@example.org"
    # Relabelled as a version 1 token, it is refused all the same.
    relabelled = base64.urlsafe_b64encode(b"\x01" + raw[1:]).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        read_token(LEGACY_SECRET, relabelled)
