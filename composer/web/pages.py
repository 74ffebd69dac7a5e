"""The HTML pages the web side renders itself: templates in composer/theme/pages/, autoescaped."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

PAGES_PACKAGE = ("composer", "theme/pages")

_ENV = Environment(
    loader=PackageLoader(*PAGES_PACKAGE),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(name: str, **context: Any) -> str:
    """Render one of the built-in pages with `context`, every value HTML-escaped."""
    return _ENV.get_template(name).render(**context)


@functools.cache
def static_page(name: str) -> bytes:
    """A page served as it is, never filled in (the preview page draws itself from JSON)."""
    return (resources.files("composer.theme") / "pages" / name).read_bytes()
