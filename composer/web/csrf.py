"""CSRF tokens for our own forms: a signed random nonce, in a hidden field and in a cookie.

Double submit: a POST is ours when its `csrf` field equals its SameSite=Strict cookie and the
value carries our signature (HMAC of the nonce with a key derived from the project secret). A
page on another site can neither read the cookie nor make a value that verifies.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "compose_csrf"
FIELD = "csrf"
_NONCE_BYTES = 16
_MAC_BYTES = 16


class CsrfGuard:
    """Makes and checks the tokens of one app (one secret)."""

    def __init__(self, secret: bytes, *, secure_cookie: bool) -> None:
        self._key = hmac.digest(secret, b"composer csrf v1", "sha256")
        self._secure = secure_cookie

    def _mac(self, nonce: bytes) -> bytes:
        return hmac.digest(self._key, nonce, "sha256")[:_MAC_BYTES]

    def is_ours(self, value: str | None) -> bool:
        """Whether `value` is a token this app made."""
        if not value or len(value) > 64:
            return False
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            return False
        nonce, mac = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return len(raw) == _NONCE_BYTES + _MAC_BYTES and hmac.compare_digest(mac, self._mac(nonce))

    def token_for(self, request: Request) -> str:
        """The request's cookie token when it is ours (other tabs keep working), else a new one."""
        current = request.cookies.get(COOKIE)
        if current and self.is_ours(current):
            return current
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return base64.urlsafe_b64encode(nonce + self._mac(nonce)).rstrip(b"=").decode("ascii")

    def attach(self, response: Response, token: str) -> Response:
        """Set the cookie a page's form needs; returns `response`."""
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=self._secure, path="/"
        )
        return response

    def verify(self, request: Request, submitted: str | None) -> bool:
        """Whether a POST's `csrf` field is ours and matches its cookie."""
        cookie = request.cookies.get(COOKIE)
        if not submitted or not cookie or not self.is_ours(submitted):
            return False
        return hmac.compare_digest(
            submitted.encode("ascii", "replace"), cookie.encode("ascii", "replace")
        )
