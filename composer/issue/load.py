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
    _sdg_as_written(doc)
    model = _validate(doc, Issue)
    rules.check_issue(doc, newsletter)
    _raise_if_errors(doc)
    assert model is not None
    return model


def _sdg_as_written(doc: MarkedYaml) -> None:
    """Every article's `sdg` as a list of the texts the file spells.

    YAML reads `sdg: 16.10` as the float 16.1 and `sdg: 16` as an integer; a target is a name, so
    each number becomes the text it was written as ("16.10"), and a single target becomes a
    one-item list. Translations repeat `sections`, so every `articles` list in the file is visited.
    """
    for path, article in _articles(doc.data, ()):
        if "sdg" not in article:
            continue
        value, where = article["sdg"], (*path, "sdg")
        if isinstance(value, list):
            article["sdg"] = [_target_text(doc, (*where, n), item) for n, item in enumerate(value)]
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            article["sdg"] = [_target_text(doc, where, value)]


def _target_text(doc: MarkedYaml, path: Path_, value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value  # the model reports it
    return doc.number_texts.get(path, str(value)).strip()


def _articles(data: object, path: Path_) -> list[tuple[Path_, dict[str, object]]]:
    """Each article mapping under a `sections` list, wherever it stands, with its path."""
    found: list[tuple[Path_, dict[str, object]]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "sections" and isinstance(value, list):
                for s, section in enumerate(value):
                    articles = section.get("articles") if isinstance(section, dict) else None
                    for a, article in enumerate(articles if isinstance(articles, list) else []):
                        if isinstance(article, dict):
                            found.append(((*path, key, s, "articles", a), article))
            else:
                found.extend(_articles(value, (*path, key)))
    return found


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
    if _is_sdg(path) and kind in ("string_type", "list_type"):
        doc.problem(path, f'{name}: expected an SDG target such as "16.4", or a list of them')
    elif len(expected) > 1:  # a value of neither alternative of a union (volume: int or text)
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


def _is_sdg(path: Path_) -> bool:
    """An article's `sdg` or one item of it."""
    tail = path[-2:] if path and isinstance(path[-1], int) else path[-1:]
    return bool(tail) and tail[0] == "sdg" and "articles" in path


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
