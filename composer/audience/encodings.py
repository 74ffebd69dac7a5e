"""The encodings of subscriber files: what Excel saves, and what a file that is not text is.

Excel saves "CSV" in the Windows code page of its locale (Windows-1250 in Central Europe and
the Western Balkans, Windows-1252 in the West) and "CSV UTF-8" with a BOM.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from composer.errors import Problem

LEGACY_NAMES = {"cp1250": "Windows-1250", "cp1252": "Windows-1252"}
SAVE_AS_CSV = 'in Excel, save it with File > Save As > "CSV UTF-8 (Comma delimited)"'
# Bytes where the two code pages differ, sorted by the letter they more likely are: the region's
# letters in Windows-1250 (č ć đ ł ą ľ ź ţ) against Western letters that Windows-1250 lacks
# (à ñ å ì ò ù). The rest (ő/õ, ű/û, ř/ø, ę/ê, ś/œ, ă/ã, ş/º...) are as likely either way and
# do not vote. è/È against č/Č votes for č, unless the text has letters French and Italian
# write beside è (é ë ç ô î, the same in both pages; South Slavic languages do not use them).
_CENTRAL = tuple("ćĆđĐłąĄľĽźţŢ".encode("cp1250"))
_WESTERN = tuple("àÀñÑåÅìÌòÒùÙ".encode("cp1252"))
_GRAVE_E = tuple("èÈ".encode("cp1252"))
_FRENCH = tuple("éÉëçÇôîÎ".encode("cp1252"))
# What the first bytes of a file that is not text say it is.
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
)


class DecodeFailure(Exception):
    """A byte the file's encoding cannot read, at `offset` bytes into the file."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def text_codec(head: bytes) -> str:
    """The codec a file starting with `head` is read with: its byte-order mark's, else UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"  # Excel's "Unicode Text"
    return "utf-8"


def binary_kind(head: bytes) -> str | None:
    """What a file starting with `head` is when it is not text at all, else None."""
    for signature, what in _SIGNATURES:
        if head.startswith(signature):
            return what
    if text_codec(head) != "utf-16" and b"\0" in re.split(rb"[\r\n]", head, maxsplit=1)[0]:
        return "a binary file"  # text never has NUL bytes in its first line
    return None


def legacy_codec(sample: bytes) -> str | None:
    """Windows-1250 or Windows-1252 for bytes that are not UTF-8, or None when neither reads
    them: the one that reads them all, else the one whose letters they more often are."""
    fits = []
    for codec in LEGACY_NAMES:
        try:
            sample.decode(codec)
        except UnicodeDecodeError:
            continue
        fits.append(codec)
    if len(fits) < 2:
        return fits[0] if fits else None
    central = sum(map(sample.count, _CENTRAL))
    western = sum(map(sample.count, _WESTERN))
    grave = sum(map(sample.count, _GRAVE_E))
    if any(map(sample.count, _FRENCH)):
        western += grave
    else:
        central += grave
    return "cp1250" if central > western else "cp1252"


def legacy_note(display: str, codec: str) -> Problem:
    """The warning that a file was read in a Windows code page."""
    message = f'not UTF-8; read as {LEGACY_NAMES[codec]} (save as "CSV UTF-8" to silence this)'
    return Problem(message, display, severity="warning")


def decode_problem(path: Path, display: str, offset: int, codec: str) -> Problem:
    """The error for the byte at `offset` that `codec` cannot read, on its physical line."""
    try:
        with path.open("rb") as raw:
            before = raw.read(offset + 1)
    except OSError:
        before = b""
    line = len(re.findall(rb"\r\n|\r|\n", before[:offset])) + 1
    byte = f" (byte 0x{before[offset]:02x})" if offset < len(before) else ""
    if codec in LEGACY_NAMES:
        what = f"read as {LEGACY_NAMES[codec]}, the file has a byte that is not text{byte}"
    elif codec == "utf-8":  # UTF-8 in earlier lines, or bytes no Windows code page has
        what = f"not UTF-8 text{byte}"
    else:
        what = f"not {codec.removesuffix('-sig').upper()} text{byte}"
    return Problem(f"{what}; {SAVE_AS_CSV}", display, line if offset < len(before) else None)
