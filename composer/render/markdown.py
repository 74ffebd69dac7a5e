"""CommonMark for the Markdown fields: raw HTML is shown as text, never passed through."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token


@functools.cache
def _parser() -> MarkdownIt:
    # "html": False makes markdown-it escape raw HTML blocks and inline tags instead of copying them.
    return MarkdownIt("commonmark", {"html": False, "typographer": False})


class _AcceptingParser(MarkdownIt):
    """A parser whose link validation lets every target through, to be judged by our rules."""

    def validateLink(self, url: str) -> bool:
        return True


@functools.cache
def _checking_parser() -> MarkdownIt:
    # The renderer silently leaves javascript: and similar links as text; to report them,
    # validation parses with a parser that accepts every target.
    return _AcceptingParser("commonmark", {"html": False})


def to_html(text: str) -> str:
    """Render Markdown to HTML safe to put in a page."""
    return _parser().render(text)


def tokens(text: str) -> list[Token]:
    return _parser().parse(text)


def link_targets(text: str) -> Iterator[tuple[str, str]]:
    """Every (kind, target) in the text: ("link", href) and ("image", src), autolinks included."""
    for block in _checking_parser().parse(text):
        for token in block.children or ():
            if token.type == "link_open":
                yield "link", str(token.attrGet("href") or "")
            elif token.type == "image":
                yield "image", str(token.attrGet("src") or "")


def paragraphs(text: str) -> list[str]:
    """The source text of each top-level block, for teasers."""
    lines = text.splitlines()
    out = []
    for token in tokens(text):
        if token.level == 0 and token.map and token.nesting in (0, 1):
            start, end = token.map
            out.append("\n".join(lines[start:end]).strip())
    return out
