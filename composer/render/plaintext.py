"""Markdown to wrapped plain text for the text/plain part: links written out, nothing lost."""

from __future__ import annotations

import textwrap

from markdown_it.token import Token

from composer.render import markdown

WIDTH = 76


def markdown_to_text(text: str, width: int = WIDTH) -> str:
    """Plain text of a Markdown field, paragraphs wrapped at `width`, links as 'words <url>'."""
    out: list[tuple[str, bool]] = []  # (block text, is a list item)
    prefix_stack: list[str] = []
    ordered: list[int] = []
    pending_bullet: str | None = None
    for token in markdown.tokens(text):
        kind = token.type
        if kind == "bullet_list_open":
            ordered.append(0)
        elif kind == "ordered_list_open":
            ordered.append(int(token.attrGet("start") or 1))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            ordered.pop()
        elif kind == "list_item_open":
            if ordered and ordered[-1]:
                pending_bullet = f"{ordered[-1]}. "
                ordered[-1] += 1
            else:
                pending_bullet = "- "
        elif kind == "blockquote_open":
            prefix_stack.append("> ")
        elif kind == "blockquote_close":
            prefix_stack.pop()
        elif kind == "inline":
            indent = "  " * len(ordered)
            first = indent[:-2] + pending_bullet if pending_bullet else indent
            rest = indent if pending_bullet or ordered else ""
            quote = "".join(prefix_stack)
            out.append(
                (wrap(inline_text(token), width, quote + first, quote + rest), bool(ordered))
            )
            pending_bullet = None
        elif kind in ("fence", "code_block"):
            out.append((textwrap.indent(token.content.rstrip("\n"), "    "), False))
        elif kind == "hr":
            out.append(("-" * 20, False))
    text_out = ""
    for n, (part, in_list) in enumerate(out):
        if n:  # list items stay on consecutive lines, other blocks get a blank line between
            text_out += "\n" if in_list and out[n - 1][1] else "\n\n"
        text_out += part
    return text_out


def inline_text(token: Token) -> str:
    """The words of an inline token, with each link's target after its words."""
    words: list[str] = []
    href_stack: list[tuple[str, int]] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            words.append(child.content)
        elif child.type == "softbreak":
            words.append(" ")
        elif child.type == "hardbreak":
            words.append("\n")
        elif child.type == "link_open":
            href_stack.append((str(child.attrGet("href") or ""), len(words)))
        elif child.type == "link_close" and href_stack:
            href, start = href_stack.pop()
            label = "".join(words[start:]).strip()
            target = href.removeprefix("mailto:")
            if target and target != label:
                words.append(f" <{href}>" if not href.startswith("mailto:") else f" <{target}>")
        elif child.type == "image":
            words.append(f"[image: {child.content}]")
    return "".join(words)


def wrap(text: str, width: int = WIDTH, first: str = "", rest: str = "") -> str:
    """Wrap one paragraph, keeping hard line breaks and never splitting a URL."""
    lines = []
    for n, piece in enumerate(text.split("\n")):
        lines.append(
            textwrap.fill(
                " ".join(piece.split()),
                width=width,
                initial_indent=first if n == 0 else rest,
                subsequent_indent=rest,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)
