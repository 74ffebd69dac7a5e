"""Merge fields: `{{ field }}` and `{{ field | default("text") }}`, and nothing else.

Each expression is parsed by jinja2's SandboxedEnvironment and its syntax tree must be one of
the two forms (or a string constant, `{{ "{{" }}` for a literal brace pair): no attribute
access, no calls, no loops, no statements. An accepted expression is then a plain lookup, so
sending never evaluates a template per reader: the text is rendered once with a marker where
each field goes, and the cheap per-reader fill puts the value there (escaped for HTML).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

# `{{ ... }}`, `{% ... %}` and `{# ... #}`, each up to its own closing delimiter.
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\{\{|\{%|\{#", re.DOTALL)
_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
# Where a field's value goes in rendered output: plain ASCII letters and digits survive
# Markdown, MJML, inlining and wrapping untouched, and never occur in real prose.
MARKER_FORMAT = "zqMERGE{}qz"
MARKER = re.compile(r"zqMERGE(\d+)qz")
MAX_VALUE_CHARS = 100  # a longer cell is cut: a greeting is not the place for an essay
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class Field:
    """One merge field as written: the column it reads and the text used when that is empty."""

    name: str
    default: str | None = None


class MergeError(ValueError):
    """An expression outside the two allowed forms; `offset` is where it starts in the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@functools.cache
def sandbox() -> SandboxedEnvironment:
    """The sandbox that parses (and, in tests, renders) merge expressions."""
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


Piece = str | Field  # literal text, or a field to fill


def parse(text: str) -> list[Piece]:
    """The text as literal pieces and fields; MergeError at the first expression refused."""
    pieces: list[Piece] = []
    position = 0
    for match in _TAG.finditer(text):
        pieces.append(text[position : match.start()])
        pieces.append(_expression(match.group(), match.start()))
        position = match.end()
    pieces.append(text[position:])
    return [p for p in pieces if p != ""]


def _expression(tag: str, offset: int) -> Piece:
    if not tag.startswith("{{") or not tag.endswith("}}") or len(tag) < 4:
        shown = tag if len(tag) <= 40 else tag[:37] + "..."
        raise MergeError(
            f"'{shown}' is not a merge field: only {{{{ field }}}} and "
            '{{ field | default("text") }} are allowed (write a literal {{ as {{ "{{" }})',
            offset,
        )
    try:
        tree = sandbox().parse(tag)
    except TemplateSyntaxError as exc:
        raise MergeError(f"merge field {tag!r}: {exc.message}", offset) from None
    body = tree.body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1:
        node = body[0].nodes[0]
        if isinstance(node, nodes.Const) and isinstance(node.value, str):
            return node.value  # {{ "{{" }}: a literal
        if isinstance(node, nodes.Name) and node.ctx == "load":
            return _field(node.name, None, tag, offset)
        if (
            isinstance(node, nodes.Filter)
            and node.name == "default"
            and isinstance(node.node, nodes.Name)
            and len(node.args) == 1
            and isinstance(node.args[0], nodes.Const)
            and isinstance(node.args[0].value, str)
            and not node.kwargs
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            return _field(node.node.name, node.args[0].value, tag, offset)
    raise MergeError(
        f"{tag!r} is not a merge field: only {{{{ field }}}} and "
        '{{ field | default("text") }} are allowed: no attributes, calls, other filters or loops',
        offset,
    )


def _field(name: str, default: str | None, tag: str, offset: int) -> Field:
    if not _FIELD.match(name):
        raise MergeError(
            f"merge field {tag!r}: a field is `email` or a list column in lower case", offset
        )
    if default is not None and _CONTROL.search(default):
        raise MergeError(f"merge field {tag!r}: the default must be one line", offset)
    return Field(name, default)


def fields_in(text: str | None) -> list[Field]:
    """The fields a (validated) text uses, in order."""
    if not text:
        return []
    return [p for p in parse(text) if isinstance(p, Field)]


class Slots:
    """The fields of one issue, numbered: each has one marker in every rendered variant."""

    def __init__(self) -> None:
        self.fields: list[Field] = []
        self._index: dict[Field, int] = {}

    def marker(self, item: Field) -> str:
        if item not in self._index:
            self._index[item] = len(self.fields)
            self.fields.append(item)
        return MARKER_FORMAT.format(self._index[item])

    def mark(self, text: str | None) -> str | None:
        """`text` with each field replaced by its marker and each literal kept as written."""
        if text is None or ("{{" not in text and "{%" not in text and "{#" not in text):
            return text
        return "".join(p if isinstance(p, str) else self.marker(p) for p in parse(text))


def clean_value(value: str) -> str:
    """A cell as a merge value: one line, no control characters, bounded."""
    return " ".join(_CONTROL.sub(" ", value).split())[:MAX_VALUE_CHARS]


def reader_values(fields: Sequence[Field], columns: Mapping[str, str]) -> tuple[str, ...]:
    """Each field's value for one reader: the cell, else the default, else the empty string."""
    out = []
    for item in fields:
        value = clean_value(columns.get(item.name, ""))
        out.append(value if value else (item.default or ""))
    return tuple(out)


def fill(text: str, values: tuple[str, ...], escape: bool = False) -> str:
    """Markers replaced by values (HTML-escaped when `escape`): for previews and web copies."""
    if "zqMERGE" not in text:
        return text
    import html

    return MARKER.sub(
        lambda m: html.escape(values[int(m.group(1))]) if escape else values[int(m.group(1))],
        text,
    )
