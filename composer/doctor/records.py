"""SPF, DKIM and DMARC records as text -> small typed values; domain alignment."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

# Second-level labels under which a country code's registrable domains sit (example.co.uk).
# Not the Public Suffix List: enough to find the organisational domain of common senders.
_SECOND_LEVEL = frozenset(
    {"ac", "co", "com", "edu", "gov", "govt", "net", "org", "or", "ne", "go", "mil", "nic", "ltd"}
)
_SPF_START = re.compile(r"^v=spf1(\s|$)", re.IGNORECASE)
_DMARC_START = re.compile(r"^v\s*=\s*DMARC1\s*(;|$)")


def org_domain(domain: str) -> str:
    """The organisational (registrable) domain: news.example.org -> example.org."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def aligned(domain: str, from_domain: str, strict: bool = False) -> bool:
    """DMARC identifier alignment: the same domain (strict) or organisational domain (relaxed)."""
    a, b = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return a == b if strict else org_domain(a) == org_domain(b)


# -- SPF (RFC 7208) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpfTerm:
    """One mechanism (`+include:x`, `ip4:1.2.3.0/24`, `-all`) or modifier (`redirect=x`)."""

    qualifier: str  # "+", "-", "~", "?" (modifiers: "")
    name: str  # lower case: all, include, a, mx, ptr, ip4, ip6, exists; redirect, exp, ...
    value: str  # what follows ":" or "=" (may be empty)

    @property
    def is_modifier(self) -> bool:
        return self.qualifier == ""

    def __str__(self) -> str:
        if self.is_modifier:
            return f"{self.name}={self.value}"
        qualifier = "" if self.qualifier == "+" else self.qualifier
        separator = ":" if self.value and not self.value.startswith("/") else ""
        return f"{qualifier}{self.name}{separator}{self.value}"


_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_NEEDS_VALUE = frozenset({"include", "ip4", "ip6", "exists"})


def spf_records(texts: list[str]) -> list[str]:
    """The SPF records among a domain's TXT records."""
    return [text.strip() for text in texts if _SPF_START.match(text.strip())]


def parse_spf(text: str) -> list[SpfTerm]:
    """The terms of an SPF record, in order; ValueError names the first term not understood."""
    terms: list[SpfTerm] = []
    for word in text.split()[1:]:
        modifier = re.match(r"^([A-Za-z][A-Za-z0-9_.-]*)=(.*)$", word)
        if modifier:
            terms.append(SpfTerm("", modifier.group(1).lower(), modifier.group(2)))
            continue
        qualifier = word[0] if word[0] in "+-~?" else "+"
        body = word[1:] if word[0] in "+-~?" else word
        mechanism = re.match(r"^([A-Za-z][A-Za-z0-9]*)(:.*|/.*|)$", body)
        if mechanism is None or mechanism.group(1).lower() not in _MECHANISMS:
            raise ValueError(f"unknown SPF term '{word}'")
        name, rest = mechanism.group(1).lower(), mechanism.group(2)
        value = rest.removeprefix(":")
        if name in _NEEDS_VALUE and not rest.startswith(":"):
            raise ValueError(f"'{word}' needs ':' and a value")
        terms.append(SpfTerm(qualifier, name, value))
    return terms


# -- DKIM (RFC 6376, RFC 8463) -------------------------------------------------------------------


def parse_tags(text: str) -> dict[str, str]:
    """`tag=value; tag=value` (DKIM and DMARC syntax) as a dict; later repeats are ignored."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip()
        if eq and name and name not in tags:
            tags[name] = value.strip()
    return tags


@dataclass(frozen=True)
class DkimKeyRecord:
    """A DKIM key record: its key type and the public key bytes (empty: the key is revoked)."""

    key_type: str  # "rsa" | "ed25519"
    public_key: bytes


def parse_dkim(text: str) -> DkimKeyRecord:
    """A DKIM key record; ValueError says what is wrong with it."""
    tags = parse_tags(text)
    if "v" in tags and tags["v"] != "DKIM1":
        raise ValueError(f"v={tags['v']} is not v=DKIM1")
    if "v" in tags and not text.lstrip().startswith("v"):
        raise ValueError("v=DKIM1 must come first")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        raise ValueError(f"k={key_type} is neither rsa nor ed25519")
    if "p" not in tags:
        raise ValueError("no p= public key")
    try:
        public_key = base64.b64decode(re.sub(r"\s+", "", tags["p"]), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("p= is not valid base64") from None
    return DkimKeyRecord(key_type, public_key)


# -- DMARC (RFC 7489) ----------------------------------------------------------------------------


def dmarc_records(texts: list[str]) -> list[str]:
    """The DMARC records among the TXT records of a `_dmarc.` name."""
    return [text.strip() for text in texts if _DMARC_START.match(text.strip())]


@dataclass(frozen=True)
class DmarcPolicy:
    """What a DMARC record asks of receivers."""

    policy: str  # none | quarantine | reject
    strict_dkim: bool
    strict_spf: bool
    percent: int
    reports: str  # rua=, may be empty


def parse_dmarc(text: str) -> DmarcPolicy:
    """A DMARC record; ValueError says what is wrong with it."""
    tags = parse_tags(text)
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        shown = f"p={tags['p']}" if "p" in tags else "no p="
        raise ValueError(f"{shown} policy (use p=none, p=quarantine or p=reject)")
    try:
        percent = int(tags.get("pct", "100"))
    except ValueError:
        percent = 100
    return DmarcPolicy(
        policy=policy,
        strict_dkim=tags.get("adkim", "r").lower() == "s",
        strict_spf=tags.get("aspf", "r").lower() == "s",
        percent=percent,
        reports=tags.get("rua", ""),
    )
