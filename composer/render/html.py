"""MJML to HTML (mjml-python), then the theme's CSS inlined with premailer for mail clients."""

from __future__ import annotations

import logging
import re

from composer.errors import ComposeError
from composer.render.cache import cached

_STYLE_TAG = re.compile(r"<style(?=[\s>])")


def mjml_to_html(mjml: str, template_name: str) -> str:
    """Render MJML with MRML; no web fonts are linked (mail clients block or slow them)."""
    return cached("mjml", (mjml,), lambda: _mjml_to_html(mjml, template_name))


def _mjml_to_html(mjml: str, template_name: str) -> str:
    from mjml import mjml2html  # imported here: only builds need it

    try:
        return mjml2html(mjml, fonts={})
    except Exception as exc:  # MRML reports template mistakes as one generic error
        raise ComposeError(f"MJML error in the rendered template: {exc}", template_name) from None


# MJML hides the preheader in a white-on-page div; spam filters score text coloured like its
# background (SpamAssassin HTML_FONT_LOW_CONTRAST, or FONT_INVIS_MSGID without a colour).
# The div stays hidden by display:none; it just gets the footer's ordinary grey.
_HIDDEN_PREHEADER_COLOR = "display:none;font-size:1px;color:#ffffff;"


def without_preheader_color(html: str) -> str:
    """Give MJML's hidden preheader div a colour that is not the page background's."""
    return html.replace(_HIDDEN_PREHEADER_COLOR, "display:none;font-size:1px;color:#57606a;", 1)


def with_theme(html: str, css: str) -> str:
    """Add the theme's stylesheet at the end of <head> (the web version keeps it as is)."""
    return html.replace("</head>", f'<style type="text/css">{css}</style></head>', 1)


def inline_css(html: str, css: str) -> str:
    """Inline the theme's CSS into style attributes; MJML's own head styles stay in <head>.

    MJML's reset rules (table, td, p ...) belong in <head>: inlined onto every table cell they
    cost about a third of the message. Its media queries must keep `!important`.
    """
    return cached("inlined", (html, css), lambda: _inline_css(html, css))


def _inline_css(html: str, css: str) -> str:
    import cssutils
    from premailer import Premailer

    # cssutils logs a warning for every property it does not know (mso-*, -webkit-*): silence it.
    cssutils.log.setLevel(logging.CRITICAL)
    kept = _STYLE_TAG.sub('<style data-premailer="ignore"', without_preheader_color(html))
    return Premailer(
        with_theme(kept, css),
        strip_important=False,  # dark-mode and phone rules need their !important
        allow_network=False,  # never fetch remote stylesheets
        keep_style_tags=False,
        disable_validation=True,
        disable_link_rewrites=True,
        disable_basic_attributes=["width", "height"],  # keep the template's own; never "auto"
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
