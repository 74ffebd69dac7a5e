"""The theme's languages: gettext catalogues (Babel) in composer/theme/locale, picked by BCP 47 tag.

A language is named by its BCP 47 tag everywhere outside this module (`sr-Latn`, as newsletter.yaml
and a list's `language` column write it); the catalogue folder uses the locale name Babel and
gettext use (`sr_Latn`). English is the source language: it has no catalogue of its own.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.core import negotiate_locale
from babel.dates import format_date
from babel.support import NullTranslations, Translations

DEFAULT_LANGUAGE = "en"
DOMAIN = "messages"
# A reader who asks for Serbian without a script reads the Latin catalogue (the only one there is;
# Serbian readers read both scripts), rather than falling back to English.
_ALIASES = {"sr": "sr_Latn"}
# UN documents write "15 January 2021"; CLDR's English "long" date is "January 15, 2021".
_DATE_PATTERNS = {"en": "d MMMM y"}


def locale_dir() -> Path:
    """The folder holding <locale>/LC_MESSAGES/messages.po and .mo, inside the package."""
    return Path(str(resources.files("composer.theme").joinpath("locale")))


def tag_of(locale_name: str) -> str:
    """`sr_Latn` -> `sr-Latn`: the BCP 47 tag of a catalogue folder's name."""
    return locale_name.replace("_", "-")


@functools.cache
def available_languages() -> tuple[str, ...]:
    """English first, then every language the package has a compiled catalogue for."""
    folder = locale_dir()
    found = sorted(
        tag_of(child.name)
        for child in folder.iterdir()
        if (child / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file()
    ) if folder.is_dir() else []  # fmt: skip
    return (DEFAULT_LANGUAGE, *found)


def negotiate(preferred: Iterable[str], offered: Iterable[str] | None = None) -> str | None:
    """The first of `preferred` (tags, best first) that a catalogue exists for, else None.

    `sr-Latn-RS` matches `sr-Latn`, then `sr`; Babel's negotiate_locale only tries the first subtag.
    """
    canonical = {tag.lower(): tag for tag in (offered or available_languages())}
    expanded: list[str] = []
    for tag in preferred:
        parts = tag.strip().replace("_", "-").split("-")
        expanded += ["-".join(parts[:n]) for n in range(len(parts), 0, -1) if parts[0]]
    chosen = negotiate_locale(expanded, list(canonical), sep="-", aliases=_ALIASES)
    return canonical.get(chosen.lower()) if chosen else None


@functools.cache
def resolve_language(tag: str | None) -> str:
    """The catalogue's tag for `tag` (`SQ`, `sq-AL` -> `sq`); an unknown or empty tag: English."""
    return (negotiate([tag]) if tag else None) or DEFAULT_LANGUAGE


def accept_language(header: str | None) -> list[str]:
    """The tags of an Accept-Language header, best first (q=0 dropped, ties in written order)."""
    weighted: list[tuple[float, int, str]] = []
    for n, item in enumerate((header or "").split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*" and q > 0:
            weighted.append((-q, n, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


@functools.cache
def translations(language: str) -> NullTranslations:
    """The gettext catalogue of `language` (a resolved tag); English is the source, untranslated."""
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(locale_dir(), [locale(language)], DOMAIN)


@functools.cache
def locale(language: str) -> Locale:
    """Babel's locale for a tag; English when Babel does not know it."""
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LANGUAGE)


def long_date(value: dt.date, language: str = DEFAULT_LANGUAGE) -> str:
    """A date as the language writes it in full: 15 January 2021, 15. januar 2021., 15 janar 2021."""
    loc = locale(language)
    return format_date(value, _DATE_PATTERNS.get(language, "long"), locale=loc)


def month_year(value: dt.date, language: str = DEFAULT_LANGUAGE) -> str:
    """The month and year, as a title says it on its own: May 2022, maj 2022."""
    return format_date(value, "LLLL y", locale=locale(language))


def N_(message: str) -> str:
    """Mark `message` for the catalogue where it is written; it is translated where it is shown."""
    return message


@functools.cache
def display_name(language: str) -> str:
    """A language's name in itself, as a reader looks for it: English, srpski (latinica), shqip."""
    try:
        loc = Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return language
    return loc.get_display_name(loc) or language
