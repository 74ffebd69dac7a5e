"""The Jinja2 environment of a theme folder: autoescaped (except text), strict, with our filters."""

from __future__ import annotations

import datetime as dt
import functools
import re
from importlib import resources
from pathlib import Path
from typing import Protocol

import jinja2
from babel.support import NullTranslations
from markupsafe import Markup

from composer.errors import ComposeError
from composer.issue.model import Contact
from composer.render import i18n, plaintext, view
from composer.render.i18n import DEFAULT_LANGUAGE

_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_english = NullTranslations()


class Gettext(Protocol):
    """What the filters need of a catalogue."""

    def gettext(self, message: str) -> str: ...


def long_date(value: dt.date, language: str = DEFAULT_LANGUAGE) -> str:
    """15 January 2021, as UN documents write dates (in `language`, as it writes them)."""
    return i18n.long_date(value, language)


def volume_label(
    volume: int | str, language: str = DEFAULT_LANGUAGE, tr: Gettext = _english
) -> str:
    """'Vol. 36' for numbered issues, 'May 2022' for year-month ones, else the text as given."""
    text = str(volume)
    if text.isdigit():
        return tr.gettext("Vol. %(number)s") % {"number": text}
    match = _YEAR_MONTH.match(text)
    if match and 1 <= int(match.group(2)) <= 12:
        return i18n.month_year(dt.date(int(match.group(1)), int(match.group(2)), 1), language)
    return text


def people_text(contacts: list[Contact], via: str | None = None, tr: Gettext = _english) -> str:
    """'Ms. A, Role (a@x), B (via n@x) and C (c@x)' for the text part, as the HTML macro says."""
    names = []
    for c in contacts:
        name = " ".join(filter(None, [c.title, c.name])) + (f", {c.role}" if c.role else "")
        reach = c.email or (tr.gettext("via %(address)s") % {"address": via} if via else None)
        names.append(name + (f" ({reach})" if reach else ""))
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + f" {tr.gettext('and')} " + names[-1]


def read_more(teaser_html: Markup, url: str, tr: Gettext = _english) -> Markup:
    """Append a "Read more" link to the teaser's last paragraph (a separate one costs bytes)."""
    link = Markup(
        ' <a class="more" href="{}">{}<span aria-hidden="true"> &#8594;</span></a>'
    ).format(url, tr.gettext("Read more"))
    head, found, tail = str(teaser_html).rpartition("</p>")
    if not found:
        return teaser_html + Markup("<p>") + link + Markup("</p>")
    return Markup(head) + link + Markup(found + tail)


# The default theme inside the package; a project's own templates/ folder is searched first.
THEME_PACKAGE = ("composer", "theme")


def environment(overrides: Path, language: str = DEFAULT_LANGUAGE) -> jinja2.Environment:
    """The environment of a project theme folder in `language` (a BCP 47 tag; unknown: English).

    `overrides` need not exist: a template missing there comes from the package's default theme.
    """
    return _environment(overrides, i18n.resolve_language(language))


@functools.cache
def _environment(overrides: Path, language: str) -> jinja2.Environment:
    """One environment per theme folder and language, cached so rebuilds reuse compiled templates
    (the compiled code is the same in every language: gettext is looked up when rendering)."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(overrides)), jinja2.PackageLoader(*THEME_PACKAGE)]
        ),
        autoescape=lambda name: name is None or not name.endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
        auto_reload=True,  # preview edits templates while running
        keep_trailing_newline=True,
        # Compiled templates cached in the system temp folder: a cold `compose build` skips compiling.
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        extensions=["jinja2.ext.i18n"],
    )
    tr = i18n.translations(language)
    env.install_gettext_translations(tr, newstyle=True)  # type: ignore[attr-defined]
    env.globals["language"] = language
    env.filters.update(
        long_date=functools.partial(long_date, language=language),
        volume_label=functools.partial(volume_label, language=language, tr=tr),
        people_text=functools.partial(people_text, tr=tr),
        md=plaintext.markdown_to_text,
        wrap=plaintext.wrap,
        read_more=functools.partial(read_more, tr=tr),
        sdg_lines=functools.partial(view.sdg_lines, gettext=tr.gettext),
    )
    return env


STYLESHEET = "partials/email.css"


def stylesheet(overrides: Path) -> str:
    """The theme's CSS (the project's own, else the default), inlined into the email."""
    own = overrides / STYLESHEET
    if own.is_file():
        return own.read_text(encoding="utf-8")
    return resources.files("composer.theme").joinpath(STYLESHEET).read_text(encoding="utf-8")


def render(overrides: Path, name: str, language: str = DEFAULT_LANGUAGE, **context: object) -> str:
    """Render template `name` of the theme in `language`; a template mistake is a one-line error."""
    try:
        template = environment(overrides, language).get_template(name)
        return template.render(**context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise ComposeError(f"template error: {exc.message}", where, exc.lineno) from None
    except (jinja2.TemplateError, TypeError, AttributeError) as exc:
        file, line = _template_frame(exc)
        raise ComposeError(f"template error: {exc}", file or name, line) from None


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line a render error happened on, from the traceback Jinja rewrites."""
    tb, file, line = exc.__traceback__, None, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            file, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return file, line
