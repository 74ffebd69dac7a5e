"""The DKIM private key from the environment, reduced at once to its public half.

The private key is read, its public key derived, and the private object dropped: nothing here
prints, logs or keeps it, and no error message quotes the file's content.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from composer.delivery.dkim_key import (
    KEY_ENV,
    KEY_FILE_ENV,
    KeyUnreadable,
    load_private_key,
    read_pem,
)
from composer.doctor.records import DkimKeyRecord

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KeyUnreadable",
    "PublicKey",
    "configured_public_key",
    "published_key",
]


@dataclass(frozen=True)
class PublicKey:
    """The public half of the signing key, as DKIM publishes it."""

    key_type: str  # "rsa" | "ed25519"
    data: bytes  # RSA: DER SubjectPublicKeyInfo; Ed25519: the raw 32 bytes (RFC 8463)
    bits: int  # RSA modulus size; 256 for Ed25519
    source: str  # which environment variable it came from

    @property
    def record(self) -> str:
        """The TXT value to publish at SELECTOR._domainkey.DOMAIN."""
        return f"v=DKIM1; k={self.key_type}; p={base64.b64encode(self.data).decode('ascii')}"


def configured_public_key(env: Mapping[str, str]) -> PublicKey | None:
    """The public key of the configured DKIM private key; None when none is configured."""
    found = read_pem(env)
    if found is None:
        return None
    pem, source = found
    public = load_private_key(pem, source).public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return PublicKey("rsa", data, public.key_size, source)
    if isinstance(public, ed25519.Ed25519PublicKey):
        data = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return PublicKey("ed25519", data, 256, source)
    raise KeyUnreadable(f"{source} holds a key DKIM cannot use (use RSA or Ed25519)")


def published_key(record: DkimKeyRecord) -> bytes:
    """The key bytes of a DNS record in the form `PublicKey.data` has, to compare the two.

    RSA keys are published as SubjectPublicKeyInfo, sometimes as a bare PKCS#1 RSAPublicKey;
    both are normalised to SubjectPublicKeyInfo. ValueError when the bytes are no such key.
    """
    if record.key_type == "ed25519":
        if len(record.public_key) != 32:
            raise ValueError("an Ed25519 key must be 32 bytes")
        return record.public_key
    try:
        loaded = serialization.load_der_public_key(record.public_key)
    except (ValueError, UnsupportedAlgorithm):
        body = base64.encodebytes(record.public_key).decode("ascii")
        pkcs1 = f"-----BEGIN RSA PUBLIC KEY-----\n{body}-----END RSA PUBLIC KEY-----\n"
        try:
            loaded = serialization.load_pem_public_key(pkcs1.encode("ascii"))
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError("p= is not an RSA public key") from None
    if not isinstance(loaded, rsa.RSAPublicKey):
        raise ValueError("p= is not an RSA public key")
    return loaded.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
