"""The HTML pages the web side renders itself: templates in composer/theme/pages/, autoescaped,
their fixed text from the theme's gettext catalogues (one environment per language)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from composer.render import i18n
from composer.render.i18n import DEFAULT_LANGUAGE

PAGES_PACKAGE = ("composer", "theme/pages")


@functools.cache
def _environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader(*PAGES_PACKAGE),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["long_date"] = functools.partial(i18n.long_date, language=language)
    return env


def render_page(name: str, language: str = DEFAULT_LANGUAGE, **context: Any) -> str:
    """Render one of the built-in pages in `language` (unknown: English), every value escaped.

    `<html lang>` says the language the page is written in, which may differ from the one asked.
    """
    resolved = i18n.resolve_language(language)
    return _environment(resolved).get_template(name).render(language=resolved, **context)


def translate(language: str, message: str, **params: object) -> str:
    """`message` (marked with N_ where it is written) in `language`, `%(name)s` filled from params."""
    text = i18n.translations(i18n.resolve_language(language)).gettext(message)
    return text % params if params else text


@functools.cache
def static_page(name: str) -> bytes:
    """A page served as it is, never filled in (the preview page draws itself from JSON)."""
    return (resources.files("composer.theme") / "pages" / name).read_bytes()
