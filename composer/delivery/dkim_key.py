"""The DKIM private key, from the environment only: read, checked, never shown.

Shared by the SMTP transport (which signs with it) and `compose doctor` (which compares its
public half with DNS). No message here quotes the key or the key file's content.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

KEY_ENV = "COMPOSE_DKIM_PRIVATE_KEY"
KEY_FILE_ENV = "COMPOSE_DKIM_PRIVATE_KEY_FILE"
# RFC 8301: signers use 2048 bits or more; verifiers need only handle keys up to 4096 bits.
RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096

SigningKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class KeyUnreadable(Exception):
    """The configured private key cannot be used; the message never contains key material."""


def read_pem(env: Mapping[str, str]) -> tuple[bytes, str] | None:
    """The PEM text and the variable it came from (the inline one first); None when unset."""
    inline = env.get(KEY_ENV, "")
    if inline.strip():
        return inline.encode("utf-8"), KEY_ENV
    path = env.get(KEY_FILE_ENV, "").strip()
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes(), KEY_FILE_ENV
    except OSError as exc:
        raise KeyUnreadable(
            f"cannot read the DKIM private key file in {KEY_FILE_ENV} ({exc.strerror or 'error'})"
        ) from None


def load_private_key(pem: bytes, source: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The key in `pem` when it is RSA or Ed25519; KeyUnreadable otherwise (size not checked)."""
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyUnreadable(
            f"{source} does not hold an unencrypted PEM private key (RSA or Ed25519)"
        ) from None
    if isinstance(private, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return private
    raise KeyUnreadable(f"{source} holds a key DKIM cannot use (use RSA or Ed25519)")


def signing_key(env: Mapping[str, str]) -> SigningKey:
    """The key to sign with: RSA of 2048 to 4096 bits, or Ed25519; KeyUnreadable otherwise."""
    found = read_pem(env)
    if found is None:
        raise KeyUnreadable(
            f"transport.dkim is set in newsletter.yaml but no DKIM private key is: put the PEM "
            f"in {KEY_ENV} or its file's path in {KEY_FILE_ENV}"
        )
    pem, source = found
    key = load_private_key(pem, source)
    if isinstance(key, rsa.RSAPrivateKey) and not RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
        raise KeyUnreadable(
            f"the RSA key in {source} is {key.key_size}-bit; DKIM wants {RSA_MIN_BITS} to "
            f"{RSA_MAX_BITS} bits (RFC 8301): generate a 2048-bit key (see docs/dkim.md)"
        )
    return key
