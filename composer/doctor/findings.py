"""What `compose doctor` reports: one finding per line, and the error when any is a problem."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from composer.errors import ComposeError

Level = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Finding:
    """One thing checked: ok, worth a warning, or a problem that keeps mail out of the inbox."""

    level: Level
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def ok(message: str) -> Finding:
    """A check that passed."""
    return Finding("ok", message)


def warning(message: str) -> Finding:
    """Something to improve; mail still arrives."""
    return Finding("warning", message)


def problem(message: str) -> Finding:
    """Something that makes receivers reject or junk the mail."""
    return Finding("problem", message)


class DeliverabilityProblems(ComposeError):
    """`compose doctor` found at least one problem (exit 1); the findings were printed."""

    def __init__(self, findings: list[Finding]) -> None:
        count = sum(1 for f in findings if f.level == "problem")
        super().__init__(f"{count} problem(s) found: fix them before the first send")
