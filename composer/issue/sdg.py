"""The 17 Sustainable Development Goals and their 169 targets, in the UN's own words.

The wording is that of General Assembly resolution A/RES/70/1, "Transforming our world: the 2030
Agenda for Sustainable Development" (2015), as listed on the UN SDG site. sdg_targets.json maps
"16.4" to target 16.4's text and "16" to the title of goal 16; it ships inside the package.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib.resources import files

GOALS = 17
_KEY = re.compile(r"^(\d{1,2})(?:\.([0-9a-z]{1,2}))?$", re.IGNORECASE)
_INDICATOR = re.compile(r"^(\d{1,2}\.[0-9a-z]{1,2})\.\d{1,2}$")  # 16.4.1 measures target 16.4


@dataclass(frozen=True)
class SdgTarget:
    """One entry of an article's `sdg` list, resolved: a target or, alone, a goal."""

    key: str  # "16.4", or "16" for the goal
    text: str  # the official wording, without a final full stop

    @property
    def is_goal(self) -> bool:
        return "." not in self.key


@functools.cache
def _table() -> dict[str, str]:
    raw = files("composer.issue").joinpath("sdg_targets.json").read_text(encoding="utf-8")
    table: dict[str, str] = json.loads(raw)
    return table


def target_text(key: str) -> str | None:
    """The official wording of target `key` ("16.4", "16.a"), or None when there is no such target."""
    return _table().get(key) if is_target(key) else None


def is_target(key: str) -> bool:
    """Whether `key` names one of the 169 targets (a goal alone, such as "16", is not a target)."""
    return "." in key and key in _table()


def is_goal(key: str) -> bool:
    """Whether `key` is the number of one of the 17 goals, written as "1" to "17"."""
    return "." not in key and key in _table()


def goal_title(number: int) -> str | None:
    """The title of goal `number` (1 to 17), or None."""
    return _table().get(str(number)) if 1 <= number <= GOALS else None


def targets_of(goal: int) -> list[str]:
    """The keys of a goal's targets in the resolution's order: 16.1 ... 16.10, then 16.a, 16.b."""
    return [key for key in _table() if key.startswith(f"{goal}.")]


def resolve(key: str) -> SdgTarget | None:
    """A target or goal key with its wording, or None when the key names neither."""
    text = _table().get(key)
    return SdgTarget(key, text) if text is not None else None


def problem(key: str) -> str | None:
    """Why `key` is not an SDG target or goal, with what the goal does have; None when it is."""
    if key in _table():
        return None
    indicator = _INDICATOR.match(key)
    if indicator and indicator.group(1) in _table():
        return f"'{key}' is an SDG indicator, not a target; write its target '{indicator.group(1)}'"
    match = _KEY.match(key)
    if match is None:
        return f"'{key}' is not an SDG target like 16.4 or 16.a"
    goal = int(match.group(1))
    if not 1 <= goal <= GOALS:
        return f"'{key}' is not an SDG target (there are {GOALS} goals, 1 to {GOALS})"
    if key.lower() in _table():
        return f"'{key}' is not an SDG target; write it '{key.lower()}'"
    return f"'{key}' is not an SDG target (goal {goal} has targets {_span(goal)})"


def _span(goal: int) -> str:
    """'17.1 to 17.19', '16.1 to 16.10, 16.a and 16.b' or '3.1 to 3.9 and 3.a to 3.d'."""
    keys = targets_of(goal)
    numbered = [k for k in keys if k.split(".")[1].isdigit()]
    lettered = [k for k in keys if not k.split(".")[1].isdigit()]
    if not lettered:
        return f"{numbered[0]} to {numbered[-1]}"
    if len(lettered) == 2:
        return f"{numbered[0]} to {numbered[-1]}, {lettered[0]} and {lettered[1]}"
    return f"{numbered[0]} to {numbered[-1]} and {lettered[0]} to {lettered[-1]}"
