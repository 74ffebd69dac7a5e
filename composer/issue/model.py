"""Typed models of newsletter.yaml and issue files; pydantic checks shape, loading.py adds places."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from composer.timezones import zone_named

# Control characters and every Unicode line break (NEL, LINE and PARAGRAPH SEPARATOR): any of
# them in a value that reaches a header could end the header line and start a forged one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 2919: a List-Id is a dot-atom, such as newsletter.example.org.
_LIST_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _one_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must be one line without control characters")
    return value


class Mailbox(Strict):
    name: NonEmpty
    email: NonEmpty

    @field_validator("name", "email")
    @classmethod
    def _single_line(cls, value: str) -> str:
        return _one_line(value)

    @field_validator("email")
    @classmethod
    def _ascii_domain(cls, value: str) -> str:
        """newsletter@bücher.example as newsletter@xn--bcher-kva.example: headers are ASCII."""
        local, at, domain = value.rpartition("@")
        if not at or domain.isascii():
            return value
        import idna  # email-validator's own dependency (IDNA 2008)

        try:
            return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
        except idna.IDNAError:
            return value  # the address rules report it with its place


class Contact(Strict):
    name: NonEmpty
    email: str | None = None
    title: str | None = Field(default=None, description="Honorific shown before the name, e.g. Ms.")
    role: str | None = None


# A contact reference: a key of newsletter.yaml `contacts:` or an inline mapping.
ContactRef = str | Contact


class Pillar(Strict):
    title: NonEmpty
    color: str = "#1f6fb2"

    @field_validator("color")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _COLOR.match(value):
            raise ValueError("must be a colour like #1f6fb2")
        return value


class DkimSettings(Strict):
    """`transport.dkim`: the signing domain (d=) and selector (s=) of DKIM signatures."""

    domain: NonEmpty
    selector: NonEmpty

    @field_validator("domain", "selector")
    @classmethod
    def _single_line(cls, value: str) -> str:
        return _one_line(value)


class TransportSettings(Strict):
    kind: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    outbox_dir: str = "outbox"
    host: str | None = None
    port: int | None = None
    starttls: bool | None = None
    username: str | None = None
    concurrency: int = Field(default=4, ge=1, le=64)
    asm_group_id: int | None = None
    categories: list[str] = []
    timeout: float = Field(default=30.0, gt=0)
    max_per_second: float | None = Field(default=None, gt=0)
    max_per_hour: float | None = Field(default=None, gt=0)
    retries: int = Field(
        default=4, ge=1, le=20, description="Attempts per message on 4xx/5xx/drops"
    )
    backoff: float = Field(default=2.0, ge=0, description="First retry delay in seconds; doubles")
    pipelining: bool = Field(default=True, description="Use SMTP PIPELINING when offered")
    batch_size: int | None = Field(
        default=None, ge=1, le=1000, description="Recipients per SendGrid request (max 1000)"
    )
    dkim: DkimSettings | None = Field(
        default=None, description="DKIM signing domain and selector: {domain, selector}"
    )


class SignupSettings(Strict):
    """`signup:` in newsletter.yaml: what the sign-up form of `compose serve` offers."""

    lists: list[NonEmpty] = Field(
        default=["newsletter"], min_length=1, description="Lists a reader may choose"
    )
    interests: bool = Field(default=False, description="Offer the pillars as interests")
    consent: NonEmpty = Field(
        default="I agree to receive this newsletter and know I can unsubscribe at any time.",
        description="The consent sentence, shown verbatim; its SHA-256 is recorded",
    )


class TrackingSettings(Strict):
    """`tracking:` in newsletter.yaml: what `compose serve` may count after a send (all off)."""

    clicks: bool = Field(default=False, description="Links go through `compose serve` /c/<token>")
    per_recipient: bool = Field(
        default=False, description="Keep who clicked; false: only aggregate counts per link"
    )
    utm: dict[Literal["source", "medium", "campaign", "term", "content"], NonEmpty] = Field(
        default={},
        description="UTM parameters added to links to `website` (campaign = the issue slug)",
    )
    opens: bool = Field(
        default=False, description="Count opens (unreliable: mail clients fetch every image)"
    )


class Newsletter(Strict):
    """newsletter.yaml: the masthead, said once."""

    name: NonEmpty
    organization: str | None = None
    language: str = "en"
    website: str | None = None
    archive_url: NonEmpty
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = Field(
        default=None, description="Address for a mailto: List-Unsubscribe alternative"
    )
    list_id: str | None = Field(
        default=None, description="List-Id domain part; default from `from`"
    )
    postal_address: NonEmpty
    from_: Mailbox = Field(alias="from")
    reply_to: Mailbox | None = None
    max_email_kb: int = Field(default=90, ge=10, le=102)
    pillars: dict[str, Pillar] = {}
    contacts: dict[str, Contact] = {}
    footer_contacts: list[ContactRef] = []
    transport: TransportSettings = TransportSettings()
    sdg_targets: Literal["builtin", "numbers"] = Field(
        default="builtin",
        description="builtin: each SDG target with its official UN wording; numbers: just 16.4",
    )
    public_url: str | None = Field(
        default=None, description="Where `compose serve` is reachable; default archive_url"
    )
    signup: SignupSettings | None = Field(
        default=None, description="The sign-up form of `compose serve`"
    )
    timezone: str | None = Field(
        default=None,
        description="IANA time zone (Europe/Vienna): `send --at 09:00` for readers without one",
    )
    languages: list[NonEmpty] = Field(
        default=[], description="Editions offered (BCP 47); the first is the default"
    )

    tracking: TrackingSettings = Field(
        default=TrackingSettings(), description="Click counting after a send (off by default)"
    )

    @property
    def default_language(self) -> str:
        """The edition readers get when theirs is not offered: the first of `languages`."""
        return self.languages[0] if self.languages else self.language

    @property
    def archive_base(self) -> str:
        return self.archive_url if self.archive_url.endswith("/") else self.archive_url + "/"

    @property
    def public_base(self) -> str:
        """`public_url` (else archive_url) ending in `/`: every link `compose serve` writes."""
        base = self.public_url or self.archive_url
        return base if base.endswith("/") else base + "/"

    def preferences_link(self, token: str) -> str:
        """A reader's personal preferences page on `compose serve`, for the token that names them."""
        return f"{self.public_base}preferences/{token}"

    @property
    def unsubscribe_base(self) -> str:
        base = self.unsubscribe_url or self.archive_base + "unsubscribe/"
        return base if base.endswith("/") else base + "/"

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto_one_line(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value

    @field_validator("list_id")
    @classmethod
    def _list_id(cls, value: str | None) -> str | None:
        if value is not None and not _LIST_ID.match(value):
            raise ValueError(
                "must be a dotted name such as newsletter.example.org "
                "(letters, digits, dots and hyphens; no spaces, brackets or line breaks)"
            )
        return value

    def unsubscribe_link(self, token: str) -> str:
        """A reader's personal one-click unsubscribe URL, for the token that names them."""
        return self.unsubscribe_base + token

    def web_url(self, slug: str) -> str:
        return f"{self.archive_base}{slug}/"


class Image(Strict):
    src: NonEmpty
    alt: NonEmpty
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)


class Link(Strict):
    text: NonEmpty
    url: NonEmpty


# In the file, `sdg` is one target or a list, each text or a bare number ("16.4", 16.4, 16.10):
# the loader turns it into a list of the texts as written before the model sees it.
_SDG_TARGET_SCHEMA = {"type": ["string", "number"], "examples": ["16.4", "16.a"]}
_SDG_SCHEMA = {
    "anyOf": [_SDG_TARGET_SCHEMA, {"type": "array", "items": _SDG_TARGET_SCHEMA}],
    "description": "SDG targets this contributes to, e.g. 16.4 or [16.4, 16.a]",
}


class Article(Strict):
    title: NonEmpty
    dateline: NonEmpty
    body: NonEmpty
    summary: str | None = None
    image: Image | None = None
    links: list[Link] = []
    contacts: list[ContactRef] = []
    sdg: Annotated[list[str], WithJsonSchema(_SDG_SCHEMA)] = []
    funding: str | None = None


class Section(Strict):
    title: NonEmpty
    pillar: str | None = None

    @field_validator("pillar", mode="before")
    @classmethod
    def _pillar_key_as_text(cls, value: object) -> object:
        """`pillar: 3` means the key "3": the rules then say whether the masthead has it."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    intro: str | None = None
    contacts: list[ContactRef] = []
    articles: list[Article] = Field(min_length=1)


class ArticleText(Strict):
    """An article given again in another language; what is left out stays as the original."""

    title: NonEmpty | None = None
    dateline: NonEmpty | None = None
    body: NonEmpty | None = None
    summary: str | None = None


class SectionText(Strict):
    """A section given again in another language: one entry per article of the original."""

    title: NonEmpty | None = None
    intro: str | None = None
    articles: list[ArticleText | None] | None = None


class Translation(Strict):
    """`translations: {sr-Latn: ...}`: the issue's texts again, in the shape of the original."""

    subject: NonEmpty | None = None
    preheader: str | None = None
    intro: str | None = None
    sections: list[SectionText | None] | None = None

    @field_validator("subject", "preheader")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value)


class Issue(Strict):
    """One issue file under issues/."""

    volume: int | NonEmpty
    date: dt.date
    subject: NonEmpty
    preheader: str | None = None
    intro: str | None = None
    sections: list[Section] = Field(min_length=1)
    footer_contacts: list[ContactRef] | None = None
    published: bool = Field(
        default=False, description="true: listed in the web archive before it is sent"
    )
    tailor: Literal["off", "lead", "only"] = Field(
        default="off",
        description="lead: each reader's pillar interests first; only: just their pillars",
    )
    translations: dict[str, Translation] = Field(
        default={}, description="The texts again per language of newsletter.yaml `languages`"
    )

    @field_validator("subject", "preheader")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value)

    @field_validator("tailor", mode="before")
    @classmethod
    def _off_as_written(cls, value: object) -> object:
        """YAML reads a bare `off` as false: `tailor: off` means "off", as written."""
        return "off" if value is False else value

    @field_validator("date", mode="before")
    @classmethod
    def _no_datetime(cls, value: object) -> object:
        if isinstance(value, dt.datetime):
            raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
        return value
