"""Delivery ids: a short keyed hash naming one (issue, list, address), sent as a custom arg.

The key is the reader's unsubscribe token (itself made from the project's secret), so the id
can be made where the token is at hand (the transport) and checked where the secret is (the
webhook), while the address never travels in it and nobody without the secret can forge one.
"""

from __future__ import annotations

import base64
import functools
import hmac

from composer.delivery.tokens import make_token

_LABEL = b"composer delivery id v1\x00"
ID_CHARS = 16


def delivery_id(token: str, issue: str) -> str:
    """The delivery id of the message of `issue` to the reader named by `token`."""
    digest = hmac.digest(token.encode("ascii"), _LABEL + issue.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(digest).decode("ascii")[:ID_CHARS]


# A message brings several events (processed, delivered, open, click), often in later batches:
# each id is worked out once (an AES-SIV token and an HMAC, ~35 us).
@functools.lru_cache(maxsize=65536)
def expected_id(secret: bytes, issue: str, list_name: str, email: str) -> str:
    """The delivery id a message of `issue` to `email` on `list_name` was sent with."""
    return delivery_id(make_token(secret, list_name, email), issue)


def id_matches(secret: bytes, issue: str, list_name: str, email: str, claimed: str) -> bool:
    """Whether `claimed` is the delivery id of (issue, list, email)."""
    try:
        expected = expected_id(secret, issue, list_name, email)
    except ValueError:  # NUL in a name: never ours
        return False
    return hmac.compare_digest(expected, claimed)
