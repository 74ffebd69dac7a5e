"""Expiring tokens for one purpose (a sign-up's confirmation link): sealed, dated, URL-safe.

The same secret and cipher as the unsubscribe tokens (composer/delivery/tokens.py), with a key
of its own, so a token of one kind is never read as the other:

    key    = HKDF-SHA256(secret, info="composer signed token v1"), 64 bytes (AES-256-SIV)
    token  = base64url(0x01 || AES-SIV(key, JSON {"p": purpose, "t": unix time, "d": data},
                                       associated data = [0x01, purpose])), unpadded

The reader's address inside is encrypted (a link in a log or a proxy shows nothing); a changed
character makes it unreadable; `t` makes it expire.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from composer.delivery.tokens import siv_cipher

VERSION = 0x01
MAX_TOKEN_CHARS = 2048
# A token a few minutes "from the future" is a clock step between two servers, not a forgery.
CLOCK_SKEW_SECONDS = 300


class BadToken(ValueError):
    """A token that was tampered with, truncated, made for another purpose or another secret."""


class ExpiredToken(BadToken):
    """An authentic token that is too old."""


def _cipher(secret: bytes) -> AESSIV:
    return siv_cipher(secret, b"composer signed token v1")


def _associated(purpose: str) -> list[bytes]:
    return [bytes([VERSION]), purpose.encode("utf-8")]


def make_signed(secret: bytes, purpose: str, data: Any, now: float | None = None) -> str:
    """A token carrying `data` (JSON-able) for `purpose`, dated now."""
    issued = int(time.time() if now is None else now)
    payload = json.dumps(
        {"p": purpose, "t": issued, "d": data}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    raw = bytes([VERSION]) + _cipher(secret).encrypt(payload, _associated(purpose))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def read_signed(
    secret: bytes, purpose: str, token: str, max_age: float, now: float | None = None
) -> tuple[Any, int]:
    """(data, issued unix time) of an authentic token for `purpose` at most `max_age` old.

    Raises ExpiredToken for an old one, BadToken for anything else that is not right.
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise BadToken("token has the wrong length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadToken("token is not valid base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise BadToken("token is not in canonical form")
    if len(raw) < 1 + 16 + 2 or raw[0] != VERSION:
        raise BadToken("token is malformed")
    try:
        payload = _cipher(secret).decrypt(raw[1:], _associated(purpose))
        body = json.loads(payload)
    except (InvalidTag, ValueError):
        raise BadToken("token is not authentic") from None
    if not isinstance(body, dict) or body.get("p") != purpose or not isinstance(body.get("t"), int):
        raise BadToken("token is malformed")
    issued: int = body["t"]
    current = time.time() if now is None else now
    if issued > current + CLOCK_SKEW_SECONDS:
        raise BadToken("token is dated in the future")
    if current - issued > max_age:
        raise ExpiredToken("token has expired")
    return body.get("d"), issued
