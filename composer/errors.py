"""One exception root for every user-facing failure, and the documented exit codes."""

from __future__ import annotations

import difflib
import errno
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_INVALID = 1  # an issue, config or subscriber file is invalid; nothing was sent or written
EXIT_USAGE = 2  # usage error, or a send refused
EXIT_PARTIAL = 3  # the send ran but some recipients failed transiently; a re-run retries them
EXIT_INTERRUPTED = 130  # interrupted; the delivery log is consistent and a re-run resumes
EXIT_TERMINATED = 143  # terminated (SIGTERM), handled like an interrupt


def os_reason(exc: OSError) -> str:
    """Why a file operation failed, as people say it ("disk full", "Permission denied")."""
    if exc.errno == errno.ENOSPC:
        return "disk full"
    return exc.strerror or str(exc)


def suggest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice closest to a mistyped `word`, for a "did you mean ...?" hint; None if none is."""
    close = difflib.get_close_matches(word, [c for c in choices if c], n=1, cutoff=cutoff)
    return close[0] if close else None


# A message quoting a hostile value must still be one line: show its line breaks escaped.
_LINE_BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_breaks(text: str) -> str:
    return _LINE_BREAKING.sub(lambda m: repr(m.group())[1:-1], text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in a file, with where it is."""

    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line, self.col) if p is not None)
        prefix = "warning: " if self.severity == "warning" else ""
        message = _escape_breaks(self.message)
        return f"{where}: {prefix}{message}" if where else f"{prefix}{message}"


class ComposeError(Exception):
    """Root of every error the CLI reports as one line per problem, without a traceback."""

    exit_code = EXIT_INVALID

    def __init__(
        self,
        message: str,
        file: str | Path | None = None,
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        super().__init__(message)
        self.problems: list[Problem] = [
            Problem(message, str(file) if file is not None else None, line, col)
        ]

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class InvalidInput(ComposeError):
    """An input file is invalid; carries every problem found in it, not just the first."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem]) -> None:
        Exception.__init__(self, "; ".join(str(p) for p in problems))
        self.problems = list(problems)


class UsageError(ComposeError):
    """The command was called wrongly (unknown list, missing setting, ...)."""

    exit_code = EXIT_USAGE


class SendRefused(ComposeError):
    """A send was refused before anything went out (no --yes without a terminal, ...)."""

    exit_code = EXIT_USAGE


class SendIncomplete(ComposeError):
    """The send ran but some recipients failed; the delivery log holds them."""

    exit_code = EXIT_PARTIAL


class Interrupted(ComposeError):
    """Stopped by SIGINT after recording the in-flight messages."""

    exit_code = EXIT_INTERRUPTED


class Terminated(ComposeError):
    """Stopped by SIGTERM after recording the in-flight messages."""

    exit_code = EXIT_TERMINATED


class SendAborted(ComposeError):
    """A send had to stop at once (the delivery log or the outbox cannot be written)."""

    exit_code = EXIT_INVALID


class TerminateSignal(BaseException):
    """SIGTERM outside a send's own handling: unwinds like KeyboardInterrupt, exits 143."""
