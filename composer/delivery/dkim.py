"""DKIM signatures (RFC 6376; Ed25519 per RFC 8463) for the SMTP transport, c=relaxed/relaxed.

Each reader's message differs (To, the unsubscribe token in List-Unsubscribe and in the body),
so every message gets its own signature. dkimpy's `sign()` took 7.2 ms a 17 KB message here,
nearly all of it its pure-Python RSA (a profile of the signed send); this module signs with
`cryptography` (OpenSSL: 0.3 ms for RSA 2048, 0.03 ms for Ed25519) and takes its body hash
from MessageTemplate, which canonicalises the parts every reader shares once per issue.
tests/test_dkim.py checks every signature with dkimpy's verifier.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from composer.delivery.dkim_key import KeyUnreadable, SigningKey, signing_key
from composer.errors import ComposeError
from composer.issue.model import DkimSettings

# What the contract (cli.md) says the signature covers; then what RFC 6376 5.4.1 recommends
# besides (Reply-To: where answers go) and what says how to read the body (MIME-Version,
# Content-Type: its boundary). Each is listed twice in h= ("oversigned", RFC 6376 8.15): a
# verifier then fails the message when anyone adds a second instance, such as a second
# List-Unsubscribe with a link of their own (RFC 8058 section 4 wants both covered).
CONTRACT_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
EXTRA_HEADERS = ("Reply-To", "MIME-Version", "Content-Type")
SIGNED_HEADERS = CONTRACT_HEADERS + EXTRA_HEADERS
# Fields that are the same in every message of an issue: canonicalised once, then looked up.
_SAME_EACH_TIME = frozenset(
    {b"from", b"subject", b"reply-to", b"list-id", b"list-unsubscribe-post", b"mime-version",
     b"content-type"}
)  # fmt: skip
_MEMO_SIZE = 256

_WSP_RUN = re.compile(rb"[ \t]+")
_WSP_EOL = re.compile(rb"[ \t]+\r\n")
_FIELD_START = re.compile(rb"\r\n(?![ \t])")
# A domain or selector: dot-separated labels of letters, digits and hyphens (RFC 6376 3.1).
_DNS_NAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")
_WIDTH = 76


class DkimError(ComposeError):
    """transport.dkim cannot be honoured (no key, a bad key, a bad name): nothing is sent."""


def relaxed_body(piece: bytes) -> bytes:
    """RFC 6376 3.4.4 (relaxed) for a piece of a body: whitespace runs become one space and
    go at line ends. A piece ending mid-line keeps its last space for the piece that follows
    (which, in our messages, never starts with whitespace); trailing empty lines of the whole
    body are the caller's (MessageTemplate's bodies end with one line break)."""
    return _WSP_RUN.sub(b" ", _WSP_EOL.sub(b"\r\n", piece))


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2 (relaxed): lowercase name, unfolded value, one space for each run."""
    value = value.replace(b"\r\n", b"")
    if b"\t" in value or b"  " in value:  # rare in our fields: skip the regex otherwise
        value = _WSP_RUN.sub(b" ", value)
    value = value.strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


def _fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value) of each header field in `block`, in order, folding kept."""
    fields = []
    for field in _FIELD_START.split(block.removesuffix(b"\r\n")):
        name, _, value = field.partition(b":")
        fields.append((name, value))
    return fields


def _fold(tag: str, items: list[str], separator: str, start: int) -> str:
    """`tag=` and items joined by `separator`, broken onto new lines before _WIDTH."""
    out, column = [tag + "="], start + len(tag) + 1
    for index, item in enumerate(items):
        piece = item + (separator if index < len(items) - 1 else "")
        if column + len(piece) > _WIDTH and column > 1:
            out.append("\r\n ")
            column = 1
        out.append(piece)
        column += len(piece)
    return "".join(out)


class DkimSigner:
    """Signs messages for one d= and s= with one key; safe to share between threads."""

    def __init__(self, domain: str, selector: str, key: SigningKey) -> None:
        for what, name in (("domain", domain), ("selector", selector)):
            if not _DNS_NAME.match(name):
                raise DkimError(
                    f"newsletter.yaml: transport.dkim.{what} {name!r} is not a DNS name "
                    "(letters, digits, hyphens, dots)"
                )
        self.domain, self.selector = domain.lower(), selector
        self._key = key
        self.algorithm = (
            "ed25519-sha256" if isinstance(key, ed25519.Ed25519PrivateKey) else ("rsa-sha256")
        )
        self._wanted = [name.lower().encode("ascii") for name in SIGNED_HEADERS]
        self._h_tags: dict[tuple[bytes, ...], str] = {}  # the same few lists, message after message
        self._memo: dict[bytes, bytes] = {}

    def _h_tag(self, names: tuple[bytes, ...]) -> str:
        tag = self._h_tags.get(names)
        if tag is None:
            tag = _fold("h", [name.decode("ascii") for name in names], ":", 16)
            self._h_tags[names] = tag
        return tag

    def __repr__(self) -> str:  # never the key
        return f"<DkimSigner d={self.domain} s={self.selector} a={self.algorithm}>"

    def _canonical(self, name: bytes, value: bytes) -> bytes:
        if name.lower() not in _SAME_EACH_TIME:
            return relaxed_header(name, value)
        key = name + b":" + value
        found = self._memo.get(key)
        if found is None:
            found = relaxed_header(name, value)
            if len(self._memo) < _MEMO_SIZE:
                self._memo[key] = found
        return found

    def signature_header(self, head: bytes, body_hash: bytes, now: float | None = None) -> bytes:
        """The DKIM-Signature field for a message with header block `head` (CRLF-ended fields)
        and the SHA-256 of its relaxed-canonical body; to go before the other fields."""
        fields = _fields(head)
        where: dict[bytes, list[int]] = {}
        for index, (name, _) in enumerate(fields):
            where.setdefault(name.strip().lower(), []).append(index)
        canonical: list[bytes] = []
        h_list: list[bytes] = []
        for wanted in self._wanted:
            found = where.get(wanted, [])
            # Every instance, bottom-up as a verifier takes them (RFC 6376 5.4.2), then the name
            # once more, standing for an instance that must not exist (oversigning).
            canonical.extend(self._canonical(*fields[index]) for index in reversed(found))
            h_list.extend([wanted] * (len(found) + 1) if found else [])
        stamp = int(time.time() if now is None else now)
        tags = (
            f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector};"
            f"\r\n t={stamp}; {self._h_tag(tuple(h_list))};"
            f"\r\n bh={base64.b64encode(body_hash).decode('ascii')};\r\n b="
        )
        value = b" " + tags.encode("ascii")
        canonical.append(relaxed_header(b"DKIM-Signature", value).removesuffix(b"\r\n"))
        data = b"".join(canonical)
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            signature = self._key.sign(hashlib.sha256(data).digest())  # RFC 8463 section 3
        else:
            signature = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        b64 = base64.b64encode(signature).decode("ascii")
        lines = [b64[i : i + _WIDTH - 4] for i in range(0, len(b64), _WIDTH - 4)]
        return b"DKIM-Signature:" + value + "\r\n  ".join(lines).encode("ascii") + b"\r\n"

    def sign_message(self, message: bytes) -> bytes:
        """`message` (CRLF line ends) with its DKIM-Signature in front, for messages built
        whole, such as the sign-up confirmation (a send's messages hash their body in parts)."""
        head, _, body = message.partition(b"\r\n\r\n")
        canonical = relaxed_body(body)
        if canonical and not canonical.endswith(b"\r\n"):
            canonical += b"\r\n"
        while canonical.endswith(b"\r\n\r\n"):  # empty lines at the end do not count
            canonical = canonical[:-2]
        if canonical == b"\r\n":
            canonical = b""
        body_hash = hashlib.sha256(canonical).digest()
        return self.signature_header(head + b"\r\n", body_hash) + message


def dkim_signer(settings: DkimSettings, env: Mapping[str, str] | None = None) -> DkimSigner:
    """The signer for `transport.dkim`, its key from the environment; DkimError (exit 1) when
    the key is missing, unreadable or of a kind or size DKIM should not use."""
    try:
        key = signing_key(os.environ if env is None else env)
    except KeyUnreadable as exc:
        raise DkimError(str(exc)) from None
    return DkimSigner(settings.domain, settings.selector, key)
