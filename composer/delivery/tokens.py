"""Unsubscribe tokens: opaque, unforgeable, deterministic, URL-safe.

A token is AES-SIV (RFC 5297, deterministic authenticated encryption) of "list NUL address":

    key    = HKDF-SHA256(secret, info="composer unsubscribe token v2"), 64 bytes (AES-256-SIV)
    token  = base64url(0x02 || AES-SIV(key, payload, associated data = [0x02])), unpadded

The synthetic IV makes the same (list, address) always give the same token, so a re-sent
message carries the same link; nobody without the secret can read or mint one. Tokens of
version 0x01 (an HMAC keystream SIV of earlier releases) are still in inboxes: they are read,
never made (see `_read_legacy_v1`).
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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from composer.atomic import write_bytes_atomically
from composer.audience.records import address_key
from composer.errors import ComposeError, os_reason

if TYPE_CHECKING:
    from composer.project import Project

SECRET_ENV = "COMPOSE_SECRET"
# The list a `send --test` copy's token names: no list file can be called that, so the link in
# a test copy shows what a reader would see and changes nothing.
TEST_COPY = ""
SECRET_FILE = "secret"
VERSION = 0x02
_LEGACY_VERSION = 0x01
_TAG_BYTES = 16  # the synthetic IV, in both versions
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
    try:
        if not path.exists():
            fresh = secrets.token_hex(32).encode("ascii") + b"\n"
            # Exclusive: when another process created it first, theirs wins and is read below.
            write_bytes_atomically(path, fresh, mode=0o600, exclusive=True)
        value = path.read_bytes().strip()
    except OSError as exc:
        raise ComposeError(f"cannot create the token secret: {os_reason(exc)}", path) from None
    if not value:
        raise ComposeError("the token secret file is empty; delete it to generate a new one", path)
    return value


@functools.lru_cache(maxsize=16)
def siv_cipher(secret: bytes, label: bytes) -> AESSIV:
    """AES-SIV with a key of its own for each kind of token (`label`), derived from the secret."""
    if not secret:
        raise ValueError("the token secret must not be empty")
    key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=label).derive(secret)
    return AESSIV(key)


def _cipher(secret: bytes) -> AESSIV:
    return siv_cipher(secret, b"composer unsubscribe token v2")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def make_token(secret: bytes, list_name: str, email: str) -> str:
    """An opaque, URL-safe token naming (list, address); the same inputs give the same token."""
    cipher = _cipher(secret)
    if "\x00" in list_name or "\x00" in email:
        raise ValueError("list name and address must not contain NUL")
    # surrogatepass: list names come from file names, which may hold undecodable bytes.
    payload = _encode(list_name) + _SEPARATOR + _encode(address_key(email))
    version = bytes([VERSION])
    raw = version + cipher.encrypt(payload, [version])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_token(secret: bytes, token: str) -> tuple[str, str]:
    """The (list name, address) a token names; raises InvalidToken unless it is authentic."""
    cipher = _cipher(secret)
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise InvalidToken("unsubscribe token has the wrong length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("unsubscribe token is not valid base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken("unsubscribe token is not in canonical form")
    if len(raw) < 1 + _TAG_BYTES + 2:
        raise InvalidToken("unsubscribe token is malformed")
    if raw[0] == VERSION:
        try:
            payload = cipher.decrypt(raw[1:], [raw[:1]])
        except InvalidTag:
            raise InvalidToken("unsubscribe token is not authentic") from None
    elif raw[0] == _LEGACY_VERSION:
        payload = _read_legacy_v1(secret, raw[1:])
    else:
        raise InvalidToken("unsubscribe token is malformed")
    list_bytes, _, email_bytes = payload.partition(_SEPARATOR)
    try:
        return list_bytes.decode("utf-8", "surrogatepass"), email_bytes.decode(
            "utf-8", "surrogatepass"
        )
    except UnicodeDecodeError:
        raise InvalidToken("unsubscribe token is malformed") from None


def _legacy_keys(secret: bytes) -> tuple[bytes, bytes]:
    mac = hmac.digest(secret, b"composer unsubscribe token: mac", "sha256")
    enc = hmac.digest(secret, b"composer unsubscribe token: enc", "sha256")
    return mac, enc


def _read_legacy_v1(secret: bytes, body: bytes) -> bytes:
    """The payload of a version 0x01 token body (tag || ciphertext); InvalidToken if forged."""
    k_mac, k_enc = _legacy_keys(secret)
    tag, ciphertext = body[:_TAG_BYTES], body[_TAG_BYTES:]
    stream = b"".join(
        hmac.digest(k_enc, tag + counter.to_bytes(4, "big"), "sha256")
        for counter in range((len(ciphertext) + 31) // 32)
    )
    payload = bytes(c ^ s for c, s in zip(ciphertext, stream, strict=False))
    expected = hmac.digest(k_mac, payload, "sha256")[:_TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        raise InvalidToken("unsubscribe token is not authentic")
    return payload
