"""PyYAML's syntax errors said as what to do, for people who write issues, not parsers.

PyYAML says "mapping values are not allowed here" or "expected <block end>, but found '?'";
the person needs "put the title in quotes" or "line this key up with the one above".
"""

from __future__ import annotations

import re

import yaml

_KEY_THEN_VALUE = re.compile(r"^(\s*(?:- )?)([^\s:#][^:#]*?):\s+(\S.*)$")


def explain(exc: yaml.MarkedYAMLError, lines: list[str]) -> tuple[str, int | None, int | None]:
    """A message that says what to change, and the 1-based line and column it is about."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    col = mark.column + 1 if mark else None
    problem = exc.problem or ""
    context = exc.context or ""
    text = lines[line - 1] if line is not None and 0 < line <= len(lines) else ""
    opened = exc.context_mark

    if problem == "mapping values are not allowed here":
        found = _KEY_THEN_VALUE.match(text)
        if found and ": " in found.group(3) + " ":
            key, value = found.group(2), found.group(3)
            quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            return (
                (
                    f"the value of '{key}' contains ': ', which YAML reads as a new key; "
                    f"put the value in quotes: {key}: {quoted}"
                ),
                line,
                found.start(3) + 1,
            )
        return (
            (
                "this line is indented further than the key above it, so it cannot start a key "
                "there; line it up with the key it belongs beside"
            ),
            line,
            col,
        )
    if "'\\t'" in problem:
        return "tab character where YAML expects spaces; indent with spaces", line, col
    if context == "while scanning a quoted scalar" and opened is not None:
        return (
            (
                f"the quote opened at line {opened.line + 1}, column {opened.column + 1} is never "
                "closed; add the closing quote"
            ),
            opened.line + 1,
            opened.column + 1,
        )
    if context.startswith("while parsing a flow ") and "<stream end>" in problem:
        return "the file ends inside a [ ] list or { } mapping; add the closing ] or }", line, col
    if context.startswith("while parsing a flow ") and opened is not None:
        kind, close = ("list", "]") if "sequence" in context else ("mapping", "}")
        return (
            (
                f"the {kind} opened with {'[' if close == ']' else '{'} at line {opened.line + 1} "
                f"is not closed with {close} (or items are not separated by commas)"
            ),
            line,
            col,
        )
    if context == "while scanning an alias" and opened is not None:
        return (
            "a value cannot start with *; put the whole value in quotes",
            opened.line + 1,
            opened.column + 1,
        )
    if problem.startswith("found character"):
        return f"a value cannot start with {_quoted_char(problem)}; put it in quotes", line, col
    if problem.startswith("expected <block end>"):
        if "'<scalar>'" in problem and text[: (col or 1) - 1].count('"') >= 2:
            return (
                (
                    'text continues after the closing quote; to put a " inside a quoted value '
                    'write \\" or put the value in single quotes'
                ),
                line,
                col,
            )
        if "'-'" in problem:
            return (
                "a list item (- ...) must stand indented under its key, not beside other keys",
                line,
                col,
            )
        return (
            (
                "this line is not lined up with the lines around it; indent it exactly as far as "
                "the key it belongs beside (YAML indents with spaces)"
            ),
            line,
            col,
        )
    what = problem or context or "syntax error"
    if context and problem and opened is not None:
        what += f" ({context} at line {opened.line + 1})"
    return f"YAML syntax error: {what}", line, col


def _quoted_char(problem: str) -> str:
    found = re.search(r"found character '(.+?)'", problem)
    return found.group(1) if found else "this character"
