"""MIME messages built once per issue and personalised per recipient by joining byte chunks."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import html
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime
from typing import TYPE_CHECKING, Protocol

from composer.delivery.dkim import relaxed_body
from composer.events.ids import ID_CHARS, delivery_id
from composer.issue import merge
from composer.render import PREFERENCES_PLACEHOLDER, READER_PLACEHOLDER, UNSUBSCRIBE_PLACEHOLDER

if TYPE_CHECKING:
    from composer.delivery.dkim import DkimSigner
    from composer.issue.model import Newsletter

CRLF = b"\r\n"
MAX_LINE = 998  # RFC 5322 hard limit, without the CRLF
MAX_NAME_CHARS = 100
SAMPLE_TOKEN = "SAMPLE-TOKEN-not-a-real-token"
SAMPLE_RECIPIENT = ("reader@example.org", "Sample Reader")
# Characters that would end or fold a header, or hide as line breaks in some mail readers.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_ADDRESS = re.compile(r"^[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+$")
_URL = re.compile(r"^[!#-;=?-~]+$")  # printable ASCII without space, quote, < or >
_LIST_LABEL = re.compile(r"[^a-z0-9-]+")
_SPECIALS = re.compile(r"[][\\()<>@,:;\".]")  # RFC 5322 specials: a phrase with one is quoted
_WORD_BYTES = 45  # base64 of 45 bytes is 60 characters: each encoded-word stays within 75
# What the unsubscribe URL may grow to, to decide whether a part stays within MAX_LINE as 8bit.
_MAX_TOKEN_CHARS = 460


class BuiltLike(Protocol):
    """What a message needs from composer.build.BuiltIssue (read-only, as a frozen dataclass is)."""

    @property
    def slug(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def email_html(self) -> str: ...

    @property
    def email_txt(self) -> str: ...


def clean_name(name: str | None) -> str:
    """A display name safe for any context: no control characters or line breaks, bounded."""
    if not name:
        return ""
    return " ".join(_CONTROL.sub(" ", name).split())[:MAX_NAME_CHARS]


def check_address(email: str) -> str:
    """`email` if it is safe to put in a header; ValueError otherwise (header injection)."""
    if len(email) > 254 or not _ADDRESS.match(email):
        raise ValueError(f"refusing to address a message to {email!r}: not a plain address")
    return email


def check_url(url: str) -> str:
    """`url` if it is safe inside <...> in a header; ValueError otherwise."""
    if not _URL.match(url):
        raise ValueError(f"refusing unsafe unsubscribe URL {url!r}")
    return url


def encode_header(name: str, value: str) -> bytes:
    """One folded header field, RFC 2047-encoded when not ASCII, CRLF-terminated."""
    value = _CONTROL.sub(" ", value)
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset, maxlinelen=78, header_name=name).encode(linesep="\r\n")
    if any(len(line) > MAX_LINE - 2 for line in folded.split("\r\n")):
        folded = Header(value, "utf-8", maxlinelen=78, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def subject_header(value: str) -> bytes:
    """A per-reader Subject: as encode_header() writes it, without its cost when it is short
    ASCII, else as base64 encoded-words (each line within 78 characters)."""
    value = " ".join(_CONTROL.sub(" ", value).split())
    if value.isascii():
        if len(value) <= 69 and not value.startswith("=?") and "=?" not in value:
            return f"Subject: {value}\r\n".encode("ascii")
        return encode_header("Subject", value)
    # "Subject: " and a word of 42 bytes (56 base64 characters) keep the first line within 78.
    return f"Subject: {encoded_words(value, first=42)}\r\n".encode("ascii")


def encoded_words(text: str, first: int = _WORD_BYTES) -> str:
    """`text` as RFC 2047 base64 encoded-words of at most 75 characters, folded with CRLF SP;
    `first`: bytes in the first word, shorter when a header name stands before it."""
    data = text.encode("utf-8")
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + (first if not words else _WORD_BYTES), len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # never split a character
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return "\r\n ".join(words)


def encode_phrase(name: str) -> str:
    """A display name as a header phrase: quoted when it has specials, RFC 2047 when not ASCII."""
    name = clean_name(name)
    if name.isascii():
        if not _SPECIALS.search(name):
            return name
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encoded_words(name)


def format_mailbox(name: str | None, email: str) -> str:
    """`Name <addr>`, the name quoted or RFC 2047-encoded as it needs."""
    check_address(email)
    name = clean_name(name)
    return f"{encode_phrase(name)} <{email}>" if name else email


def list_id(newsletter: Newsletter, list_name: str) -> str:
    """The List-Id value (RFC 2919): `Newsletter name <list.domain>`."""
    domain = newsletter.list_id or newsletter.from_.email.rpartition("@")[2]
    label = _LIST_LABEL.sub("-", list_name.lower()).strip("-") or "list"
    return f"{encode_phrase(newsletter.name)} <{label}.{domain}>"


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_TAG = re.compile(r"<[a-zA-Z](?:[^<>\"']|\"[^\"]*\"|'[^']*')*>")
_ATTR_GAP = re.compile(r"\"[^\"]*\"|'[^']*'|(\s+)(?=[a-zA-Z_:@/])")
REFLOW_WIDTH = 200


def reflow_html(text: str, width: int = REFLOW_WIDTH) -> str:
    """Break long HTML lines between attributes inside tags, where a newline equals a space."""
    lines = []
    for line in _lines(text).split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        gaps = [
            (tag.start() + gap.start(1), tag.start() + gap.end(1))
            for tag in _TAG.finditer(line)
            for gap in _ATTR_GAP.finditer(tag.group(0))
            if gap.group(1) is not None
        ]
        pieces, start, last = [], 0, None
        for gap in gaps:
            if gap[0] - start > width and last is not None:
                pieces.append(line[start : last[0]])
                start = last[1]
            last = gap
        if last is not None and len(line) - start > width and last[0] > start:
            pieces.append(line[start : last[0]])
            start = last[1]
        pieces.append(line[start:])
        lines.extend(pieces)
    return "\n".join(lines)


def _qp(text: str) -> bytes:
    # b2a_qp picks its line ending from the input; feed LF only and convert after.
    encoded = binascii.b2a_qp(_lines(text).encode("utf-8"), quotetabs=False, istext=True)
    return encoded.replace(b"\n", CRLF)


def _stuff(piece: bytes) -> bytes:
    """Dot-stuffing (RFC 5321 4.5.2) inside `piece`: a dot after a line break is doubled."""
    return piece.replace(b"\n.", b"\n..") if b"\n." in piece else piece


def _stuff_starts(pieces: list[bytes]) -> None:
    """Dot-stuff the line starts where pieces meet: a piece that begins a line with a dot."""
    after_break = True  # the message starts a line
    for index, piece in enumerate(pieces):
        if not piece:
            continue
        if after_break and piece[0] == 0x2E:  # "."
            pieces[index] = b"." + piece
        after_break = piece[-1] == 0x0A  # "\n"


class _Part:
    """One body part split into static byte chunks around slots for per-recipient values."""

    def __init__(
        self, text: str, slots: dict[str, str], max_value: dict[str, int], seven_bit: bool
    ) -> None:
        text = _lines(text)
        if not text.endswith("\n"):
            text += "\n"
        pattern = re.compile("|".join(re.escape(marker) for marker in slots))
        pieces: list[str | None] = []
        kinds: list[str] = []
        position = 0
        for match in pattern.finditer(text):
            pieces.append(text[position : match.start()])
            pieces.append(None)
            kinds.append(slots[match.group(0)])
            position = match.end()
        pieces.append(text[position:])
        self.kinds = kinds
        if not self._fits(text, pattern, slots, max_value):
            self.encoding = "quoted-printable"
        elif text.isascii():
            self.encoding = "7bit"
        else:
            self.encoding = "quoted-printable" if seven_bit else "8bit"
        self.raw = self.encoding != "quoted-printable"
        self.eight_bit = self.encoding == "8bit"
        self.chunks: list[bytes] = []
        for piece in pieces:
            if piece is None:
                continue
            if self.raw:
                self.chunks.append(piece.replace("\n", "\r\n").encode("utf-8"))
            else:
                chunk = _qp(piece)
                # A soft break before each value keeps every encoded line within 76 characters.
                if chunk and not chunk.endswith(CRLF):
                    chunk += b"=" + CRLF
                self.chunks.append(chunk)
        # The same chunks dot-stuffed for SMTP DATA, once per issue rather than once per message.
        self.stuffed = [_stuff(chunk) for chunk in self.chunks]
        # And in DKIM's relaxed form, for the body hash: the values filled in between are URLs,
        # without whitespace, so canonicalising piece by piece equals doing it to the whole.
        self.relaxed = [relaxed_body(chunk) for chunk in self.chunks]

    @staticmethod
    def _fits(
        text: str, pattern: re.Pattern[str], slots: dict[str, str], max_value: dict[str, int]
    ) -> bool:
        for line in text.split("\n"):
            room = len(pattern.sub("", line).encode("utf-8"))
            room += sum(max_value[slots[m.group(0)]] for m in pattern.finditer(line))
            if room > MAX_LINE - 2:
                return False
        return True

    def render(
        self, values: dict[str, str], out: list[bytes], stuffed: bool = False, relaxed: bool = False
    ) -> None:
        """Append this part's bytes with `values` (already escaped for the part) filled in;
        `stuffed`: dot-stuffed within each piece (a piece's leading dot is the caller's);
        `relaxed`: DKIM-canonical instead (for the body hash only)."""
        chunks = self.relaxed if relaxed else self.stuffed if stuffed else self.chunks
        out.append(chunks[0])
        for index, kind in enumerate(self.kinds, start=1):
            value = values[kind]
            if self.raw:
                encoded = value.encode("utf-8")
            else:
                encoded = _qp(value)
                encoded = encoded + b"=" + CRLF if encoded else b""
            out.append(_stuff(encoded) if stuffed else encoded)
            out.append(chunks[index])


def issue_tag(slug: str) -> str:
    """A short tag naming an issue in our Message-IDs (dot-atom safe, whatever the slug)."""
    return "i" + hashlib.sha256(slug.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class MessageTemplate:
    """A built issue turned into pre-encoded MIME chunks, once, for one (issue, list)."""

    def __init__(
        self,
        built: BuiltLike,
        newsletter: Newsletter,
        list_name: str,
        *,
        unsubscribe_marker: str = UNSUBSCRIBE_PLACEHOLDER,
        seven_bit: bool = False,
    ) -> None:
        self.newsletter = newsletter
        self.list_name = list_name
        self.unsubscribe_marker = unsubscribe_marker
        self.subject = built.subject
        self.text = built.email_txt
        self.html = built.email_html
        self.domain = newsletter.from_.email.rpartition("@")[2] or "localhost"
        mailto = newsletter.unsubscribe_mailto
        self.mailto = mailto.removeprefix("mailto:") if mailto else None
        self.list_id = list_id(newsletter, list_name)
        self._list_ids: dict[str, bytes] = {}
        url_room = len(html.escape(newsletter.unsubscribe_base)) + _MAX_TOKEN_CHARS
        prefs_room = (
            len(html.escape(newsletter.public_base)) + len("preferences/") + _MAX_TOKEN_CHARS
        )
        room = {
            "url_text": url_room,
            "url_html": url_room,
            "prefs_text": prefs_room,
            "prefs_html": prefs_room,
        }
        # A theme of the project's own may leave the preferences link out: its slot is then unused.
        text_slots = {unsubscribe_marker: "url_text", PREFERENCES_PLACEHOLDER: "prefs_text"}
        html_slots = {unsubscribe_marker: "url_html", PREFERENCES_PLACEHOLDER: "prefs_html"}
        # tracking.per_recipient: each click link ends in the reader's delivery id.
        self.per_reader = READER_PLACEHOLDER in self.html
        self.slug: str = getattr(built, "slug", "")
        if self.per_reader:
            html_slots[READER_PLACEHOLDER] = "reader_html"
            room["reader_html"] = ID_CHARS
        # Merge fields are slots like the links: filled per reader, plain in text, escaped in HTML.
        self.merge_fields: tuple[merge.Field, ...] = tuple(getattr(built, "merge_fields", ()))
        for n in range(len(self.merge_fields)):
            marker = merge.MARKER_FORMAT.format(n)
            text_slots[marker] = f"m{n}_text"
            html_slots[marker] = f"m{n}_html"
            room[f"m{n}_text"] = merge.MAX_VALUE_CHARS * 4  # UTF-8
            room[f"m{n}_html"] = merge.MAX_VALUE_CHARS * 6  # &quot;
        self._defaults = tuple(f.default or "" for f in self.merge_fields)
        self._subject_merged = merge.MARKER.search(self.subject) is not None
        self._built = built
        self._text = _Part(self.text, text_slots, room, seven_bit)
        self._html = _Part(reflow_html(self.html), html_slots, room, seven_bit)
        self.eight_bit = self._text.eight_bit or self._html.eight_bit
        self._boundary = self._pick_boundary()
        # A subject with merge fields is encoded per reader, in its place after From.
        self._from_line, subject, self._head_rest = self._static_head()
        self._head = self._from_line + subject + self._head_rest
        self._text_head, self._html_head, self._tail = self._part_heads()
        # For DKIM: the header fields after the personal ones, and the body's fixed pieces.
        trailer, _, body_start = self._text_head.partition(CRLF + CRLF)
        self._trailer = trailer + CRLF
        self._body_start = body_start
        self._relaxed = [relaxed_body(p) for p in (body_start, self._html_head, self._tail)]
        self._date_second = -1
        self._date = b""
        # The issue's tag lets a bounce report that quotes our Message-ID name the issue.
        self._id_prefix = f"{secrets.token_hex(12)}.{issue_tag(built.slug)}"
        self._id_serial = itertools.count(1)

    def seven_bit(self) -> MessageTemplate:
        """The same message with every part 7-bit clean, for servers without 8BITMIME."""
        if not self.eight_bit:
            return self
        return MessageTemplate(
            self._built,
            self.newsletter,
            self.list_name,
            unsubscribe_marker=self.unsubscribe_marker,
            seven_bit=True,
        )

    def _pick_boundary(self) -> str:
        while True:
            boundary = "=_composer_" + secrets.token_hex(12)
            if boundary not in self.text and boundary not in self.html:
                return boundary

    def _static_head(self) -> tuple[bytes, bytes, bytes]:
        """From, Subject (empty when filled per reader), and the rest of the shared head."""
        news = self.newsletter
        sender = format_mailbox(news.from_.name, news.from_.email)
        subject = b"" if self._subject_merged else encode_header("Subject", self.subject)
        head = []
        if news.reply_to is not None:
            reply_to = format_mailbox(news.reply_to.name, news.reply_to.email)
            head.append(b"Reply-To: " + reply_to.encode("utf-8") + CRLF)
        return b"From: " + sender.encode("utf-8") + CRLF, subject, b"".join(head)

    def _list_id_header(self, list_name: str | None) -> bytes:
        """The List-Id line of the list that reaches a reader (a send may span several lists)."""
        name = list_name or self.list_name
        header = self._list_ids.get(name)
        if header is None:
            value = self.list_id if name == self.list_name else list_id(self.newsletter, name)
            header = self._list_ids[name] = b"List-Id: " + value.encode("ascii") + CRLF
        return header

    def _part_heads(self) -> tuple[bytes, bytes, bytes]:
        boundary = self._boundary.encode("ascii")
        trailer = (
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n\r\n'
        )

        def part(subtype: str, encoding: str) -> bytes:
            return (
                b"--"
                + boundary
                + CRLF
                + f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode("ascii")
            )

        text_head = trailer + part("plain", self._text.encoding)
        # The CRLF before a delimiter belongs to the delimiter, not to the part (RFC 2046 5.1.1).
        html_head = CRLF + part("html", self._html.encoding)
        return text_head, html_head, CRLF + b"--" + boundary + b"--" + CRLF

    def _date_header(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._date_second:
            stamp = dt.datetime.fromtimestamp(second, dt.UTC)
            self._date = b"Date: " + format_datetime(stamp).encode("ascii") + CRLF
            self._date_second = second
        return self._date

    def new_message_id(self) -> str:
        """A fresh, globally unique Message-ID in the sender's domain."""
        # 96 random bits once per template, then a counter: as unique, without a getrandom()
        # call a message (13 us each). next() on a count is atomic under the GIL.
        return f"<{int(time.time())}.{self._id_prefix}.{next(self._id_serial)}@{self.domain}>"

    def list_unsubscribe(
        self, unsubscribe_url: str, token: str | None = None, *, fold: bool = True
    ) -> str:
        """The List-Unsubscribe value: the one-click URL, plus mailto when configured."""
        value = f"<{check_url(unsubscribe_url)}>"
        if self.mailto:
            subject = "unsubscribe" + (f"%20{token}" if token else "")
            value += ",\r\n " if fold else ", "
            value += f"<mailto:{check_url(self.mailto)}?subject={subject}>"
        return value

    def personalize(
        self,
        recipient_email: str,
        recipient_name: str | None,
        unsubscribe_url: str,
        *,
        token: str | None = None,
        message_id: str | None = None,
        smtp_data: bool = False,
        list_name: str | None = None,
        dkim: DkimSigner | None = None,
        fill: Fill | None = None,
    ) -> bytes:
        """The complete RFC 5322 message for one recipient, CRLF line endings throughout.

        `smtp_data`: as SMTP DATA wants it, dot-stuffed and ended by the final ".": the
        static chunks were stuffed once, so a message costs no pass over its bytes.
        `list_name`: the list that reaches this reader (its List-Id), else the template's.
        `dkim`: signed by it, its DKIM-Signature the first field.
        `fill`: the reader's merge values (defaults when None).
        """
        name = clean_name(recipient_name)
        url = check_url(unsubscribe_url)
        if token is None:
            token = url.rsplit("/", 1)[-1]
        prefs = check_url(self.newsletter.preferences_link(token))
        values = {
            "url_text": url,
            "url_html": html.escape(url, quote=True),
            "prefs_text": prefs,
            "prefs_html": html.escape(prefs, quote=True),
        }
        if self.per_reader:
            values["reader_html"] = delivery_id(token, self.slug)
        merged = self._merge_values(fill, values)
        out = [
            *(
                [
                    self._from_line,
                    subject_header(merge.fill(self.subject, merged)),
                    self._head_rest,
                ]
                if self._subject_merged
                else [self._head]
            ),
            self._list_id_header(list_name),
            b"To: " + format_mailbox(name, recipient_email).encode("utf-8") + CRLF,
            self._date_header(),
            b"Message-ID: " + (message_id or self.new_message_id()).encode("ascii") + CRLF,
            b"List-Unsubscribe: " + self.list_unsubscribe(url, token).encode("ascii") + CRLF,
            self._text_head,
        ]
        if dkim is not None:  # over every field above the text part's head
            out.insert(0, self._signature(dkim, out[:-1], values))
        if not smtp_data:
            self._text.render(values, out)
            out.append(self._html_head)
            self._html.render(values, out)
            out.append(self._tail)
            return b"".join(out)
        out = [_stuff(piece) for piece in out]  # the head: a few hundred bytes
        self._text.render(values, out, stuffed=True)
        out.append(_stuff(self._html_head))
        self._html.render(values, out, stuffed=True)
        out.append(_stuff(self._tail))
        _stuff_starts(out)
        out.append(b"." + CRLF)
        return b"".join(out)

    def _signature(self, dkim: DkimSigner, personal: list[bytes], values: dict[str, str]) -> bytes:
        """The DKIM-Signature field: the body hashed from the pieces canonicalised up front."""
        head = b"".join(personal) + self._trailer
        # Merge values may hold spaces, which relaxed canonicalisation folds together with the
        # text around them: such a message's body is canonicalised whole.
        if self._defaults:
            canonical = relaxed_body(self._body(values, relaxed=False))
        else:
            canonical = self._body(values, relaxed=True)
        return dkim.signature_header(head, hashlib.sha256(canonical).digest())

    def _body(self, values: dict[str, str], *, relaxed: bool) -> bytes:
        """The body as sent (without dot-stuffing), or in its relaxed canonical form."""
        start, middle, end = (
            self._relaxed if relaxed else (self._body_start, self._html_head, self._tail)
        )
        out = [start]
        self._text.render(values, out, relaxed=relaxed)
        out.append(middle)
        self._html.render(values, out, relaxed=relaxed)
        out.append(end)
        return b"".join(out)

    def merge_values(self, fill: Fill | None) -> tuple[str, ...]:
        """The reader's value of each merge field (defaults where they have none); a value
        that could break a line is refused."""
        given = fill.values if fill is not None else ()
        merged = given[: len(self._defaults)] + self._defaults[len(given) :]
        for value in merged:
            if _CONTROL.search(value):
                raise ValueError(
                    f"refusing a merge value with a line break or control character: {value!r}"
                )
        return merged

    def _merge_values(self, fill: Fill | None, values: dict[str, str]) -> tuple[str, ...]:
        """Put the reader's merge values into `values` for the parts' slots."""
        merged = self.merge_values(fill)
        for n, value in enumerate(merged):
            values[f"m{n}_text"] = value
            values[f"m{n}_html"] = html.escape(value, quote=True)
        return merged


@dataclass(frozen=True)
class Fill:
    """What one reader's message needs beyond the shared variant: which variant, their values."""

    variant: int = 0
    values: tuple[str, ...] = ()


def sample_message(built: BuiltLike, newsletter: Newsletter) -> bytes:
    """The sample `message.eml` that `compose build` writes, addressed to a sample reader."""
    template = MessageTemplate(built, newsletter, "sample")
    email, name = SAMPLE_RECIPIENT
    return template.personalize(email, name, newsletter.unsubscribe_link(SAMPLE_TOKEN))
