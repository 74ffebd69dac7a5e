"""Load newsletter.yaml and issue files into models, reporting every problem of a file at once."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from composer.errors import InvalidInput, Problem, suggest
from composer.issue import rules
from composer.issue.marks import MarkedYaml, Path_, read_marked_yaml
from composer.issue.model import Issue, Newsletter, Strict

M = TypeVar("M", bound=BaseModel)


def load_newsletter(path: Path, display: str | None = None) -> Newsletter:
    """Read and validate newsletter.yaml."""
    doc = read_marked_yaml(path, display)
    model = _validate(doc, Newsletter)
    rules.check_newsletter(doc)
    _raise_if_errors(doc)
    assert model is not None
    return model


def load_issue(path: Path, newsletter: Newsletter, display: str | None = None) -> Issue:
    """Read and validate one issue file against the newsletter's pillars and contacts."""
    doc = read_marked_yaml(path, display)
    model = _validate(doc, Issue)
    rules.check_issue(doc, newsletter)
    _raise_if_errors(doc)
    assert model is not None
    return model


def _raise_if_errors(doc: MarkedYaml) -> None:
    if any(p.severity == "error" for p in doc.problems):
        # Reading order: a person fixes a file from the top.
        raise InvalidInput(sorted(doc.problems, key=lambda p: (p.line or 0, p.col or 0)))


def _validate(doc: MarkedYaml, model: type[M]) -> M | None:
    if not isinstance(doc.data, dict):
        doc.problem((), "the file must be a mapping of keys to values")
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        by_path: dict[Path_, list[ErrorDetails]] = {}
        for error in exc.errors():
            path = _data_path(doc.data, error["loc"])
            if not any(path[: len(bad)] == bad for bad in doc.bad_paths):
                by_path.setdefault(path, []).append(error)
        for path, errors in by_path.items():
            _report(doc, path, errors)  # one message per place; unions report each alternative
            doc.bad_paths.add(path)  # the rules need not say it again
        return None


def _data_path(data: object, loc: tuple[str | int, ...]) -> Path_:
    """Keep the parts of a pydantic location that name real keys or indexes in the data."""
    path: list[str | int] = []
    here = data
    for part in loc:
        if isinstance(here, dict) and part in here:  # noqa: SIM114 (two branches narrow apart)
            here = here[part]
        elif isinstance(here, list) and isinstance(part, int) and part < len(here):
            here = here[part]
        elif isinstance(here, dict) and isinstance(part, str) and _is_field_name(part):
            path.append(part)  # a missing key: point at the mapping that lacks it
            return tuple(path)
        else:
            continue  # a union member's name or a tag, not a place in the file
        path.append(part)
    return tuple(path)


@functools.cache
def _field_names() -> frozenset[str]:
    names: set[str] = set()
    for cls in _all_models(Strict):
        for name, info in cls.model_fields.items():
            names.add(info.alias or name)
    return frozenset(names)


def _all_models(root: type[BaseModel]) -> list[type[BaseModel]]:
    out = []
    for sub in root.__subclasses__():
        out.append(sub)
        out.extend(_all_models(sub))
    return out


def _is_field_name(name: str) -> bool:
    return name in _field_names()


_MESSAGES = {
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values",
    "model_attributes_type": "expected a mapping of keys to values",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "expected a date (YYYY-MM-DD), not a date and time",
    "string_too_short": "must not be empty",
}


def _report(doc: MarkedYaml, path: Path_, errors: list[ErrorDetails]) -> None:
    error = errors[0]
    kind = error["type"]
    name = _describe(path)
    expected = sorted(
        {_MESSAGES[e["type"]].removeprefix("expected ") for e in errors if e["type"] in _MESSAGES}
    )
    if len(expected) > 1:  # a value of neither alternative of a union (volume: int or text)
        doc.problem(path, f"{name}: expected {' or '.join(expected)}")
    elif kind == "missing":
        doc.problem(path[:-1], f"missing required key '{path[-1]}'{_where(path[:-1])}")
    elif kind == "extra_forbidden":
        key = str(path[-1])
        hint = suggest(key, sorted(_field_names()), cutoff=0.75)
        suggestion = f" (did you mean '{hint}'?)" if hint else ""
        doc.problem(path, f"unknown key '{key}'{suggestion}", key=True)
    elif kind == "too_short":
        doc.problem(path, f"{name}: needs at least one item")
    elif kind == "value_error":
        doc.problem(path, f"{name}: {error['ctx']['error']}")
    elif kind in _MESSAGES:
        doc.problem(path, f"{name}: {_MESSAGES[kind]}")
    else:
        message = error["msg"]
        doc.problem(path, f"{name}: {message[0].lower()}{message[1:]}")


def _describe(path: Path_) -> str:
    """`sections[2].articles[0].title` for a path, as a person would look for it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "file"


def _where(path: Path_) -> str:
    return f" in {_describe(path)}" if path else ""


def issue_problems(path: Path, newsletter: Newsletter) -> list[Problem]:
    """Every problem of an issue file, or none (for validate and preview)."""
    try:
        load_issue(path, newsletter)
    except InvalidInput as exc:
        return exc.problems
    return []
