"""Unsubscribe tokens: opaque, unforgeable, deterministic, URL-safe, standard library only.

A token is a deterministic authenticated encryption (SIV-style) of "list NUL address":

    tag        = HMAC-SHA256(k_mac, payload)[:16]
    keystream  = HMAC-SHA256(k_enc, tag || counter) for counter = 0, 1, ...
    ciphertext = payload XOR keystream
    token      = base64url(VERSION || tag || ciphertext), unpadded

The synthetic IV (the tag) makes the same (list, address) always give the same token, so a
re-sent message carries the same link; nobody without the secret can read or mint one.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from composer.audience.records import address_key
from composer.errors import ComposeError

if TYPE_CHECKING:
    from composer.issue.model import Newsletter
    from composer.project import Project

SECRET_ENV = "COMPOSE_SECRET"
SECRET_FILE = "secret"
_VERSION = b"\x01"
_TAG_BYTES = 16
_SEPARATOR = b"\x00"
_MAX_TOKEN_CHARS = 1024


class InvalidToken(ValueError):
    """A token that was tampered with, truncated, or made with another secret."""


def load_secret(project: Project) -> bytes:
    """The token secret: $COMPOSE_SECRET, else `.compose/secret`, created once with mode 0600."""
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env.encode("utf-8")
    path = project.state_dir() / SECRET_FILE
    return _read_or_create(path)


def _read_or_create(path: Path) -> bytes:
    """Read the secret, or create it atomically: readers never see a half-written file."""
    if not path.exists():
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.write_bytes(secrets.token_hex(32).encode("ascii") + b"\n")
        staging.chmod(0o600)
        try:
            os.link(staging, path)  # fails if another process created it first: theirs wins
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    value = path.read_bytes().strip()
    if not value:
        raise ComposeError("the token secret file is empty; delete it to generate a new one", path)
    return value


@functools.lru_cache(maxsize=8)
def _keys(secret: bytes) -> tuple[bytes, bytes]:
    if not secret:
        raise ValueError("the token secret must not be empty")
    mac = hmac.digest(secret, b"composer unsubscribe token: mac", "sha256")
    enc = hmac.digest(secret, b"composer unsubscribe token: enc", "sha256")
    return mac, enc


def _keystream_xor(k_enc: bytes, tag: bytes, data: bytes) -> bytes:
    stream = b"".join(
        hmac.digest(k_enc, tag + counter.to_bytes(4, "big"), "sha256")
        for counter in range((len(data) + 31) // 32)
    )
    mixed = int.from_bytes(data, "big") ^ int.from_bytes(stream[: len(data)], "big")
    return mixed.to_bytes(len(data), "big")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def make_token(secret: bytes, list_name: str, email: str) -> str:
    """An opaque, URL-safe token naming (list, address); the same inputs give the same token."""
    k_mac, k_enc = _keys(secret)
    if "\x00" in list_name or "\x00" in email:
        raise ValueError("list name and address must not contain NUL")
    # surrogatepass: list names come from file names, which may hold undecodable bytes.
    payload = _encode(list_name) + _SEPARATOR + _encode(address_key(email))
    tag = hmac.digest(k_mac, payload, "sha256")[:_TAG_BYTES]
    raw = _VERSION + tag + _keystream_xor(k_enc, tag, payload)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_token(secret: bytes, token: str) -> tuple[str, str]:
    """The (list name, address) a token names; raises InvalidToken unless it is authentic."""
    k_mac, k_enc = _keys(secret)
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise InvalidToken("unsubscribe token has the wrong length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("unsubscribe token is not valid base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken("unsubscribe token is not in canonical form")
    if len(raw) < 1 + _TAG_BYTES + 2 or raw[:1] != _VERSION:
        raise InvalidToken("unsubscribe token is malformed")
    tag, ciphertext = raw[1 : 1 + _TAG_BYTES], raw[1 + _TAG_BYTES :]
    payload = _keystream_xor(k_enc, tag, ciphertext)
    expected = hmac.digest(k_mac, payload, "sha256")[:_TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        raise InvalidToken("unsubscribe token is not authentic")
    list_bytes, _, email_bytes = payload.partition(_SEPARATOR)
    try:
        return list_bytes.decode("utf-8", "surrogatepass"), email_bytes.decode(
            "utf-8", "surrogatepass"
        )
    except UnicodeDecodeError:
        raise InvalidToken("unsubscribe token is malformed") from None


def unsubscribe_url(newsletter: Newsletter, token: str) -> str:
    """The personal one-click unsubscribe URL for a token."""
    return newsletter.unsubscribe_base + token
