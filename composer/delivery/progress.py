"""Send progress for people: a rich bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from composer.delivery.runner import Reporter, SendSummary


class RichReporter(Reporter):
    """A progress bar with rate and ETA, drawn on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.started = time.monotonic()
        self.done = 0
        self.failed = 0
        self.lock = threading.Lock()

    def start(self, total: int) -> None:
        self.started = time.monotonic()
        self.task = self.progress.add_task("send", total=total, failed=0, rate="")
        self.progress.start()

    def advance(self, sent: int, failed: int, settled: int = 0) -> None:
        with self.lock:
            self.done += sent + failed + settled
            self.failed += failed
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            if self.task is not None:
                self.progress.update(
                    self.task,
                    advance=sent + failed + settled,
                    failed=self.failed,
                    rate=f"{rate:,.0f} msg/s",
                )

    def note(self, text: str) -> None:
        self.progress.console.print(text, style="yellow")

    def finish(self) -> None:
        self.progress.stop()


class PlainReporter(Reporter):
    """A line every `interval` seconds, for logs and pipes."""

    def __init__(self, out: TextIO | None = None, interval: float = 5.0) -> None:
        self.out = out or sys.stderr
        self.interval = interval
        self.total = 0
        self.done = 0
        self.failed = 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.last = time.monotonic()
        self._line(f"sending {total} message{'s' if total != 1 else ''}")

    def advance(self, sent: int, failed: int, settled: int = 0) -> None:
        with self.lock:
            self.done += sent + failed + settled
            self.failed += failed
            now = time.monotonic()
            if now - self.last >= self.interval:
                self.last = now
                self._line(self.status(now))

    def status(self, now: float) -> str:
        """One line: how far, how fast, how long still."""
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        return (
            f"{self.done}/{self.total} done{share}, {self.failed} failed, "
            f"{rate:,.0f} msg/s, about {left:,.0f} s left"
        )

    def note(self, text: str) -> None:
        self._line(text)

    def finish(self) -> None:
        self._line(self.status(time.monotonic()))

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def make_reporter(interactive: bool) -> Reporter:
    """A rich bar on a terminal, plain lines otherwise."""
    return RichReporter() if interactive else PlainReporter()


def summary_lines(summary: SendSummary) -> list[str]:
    """The closing summary: sent, failed, refused, unknown (with reasons), skipped, suppressed."""
    lines = [
        f"sent: {summary.sent}",
        f"failed: {summary.failed}",
    ]
    if summary.refused:
        lines.append(f"refused: {summary.refused} (for good; never retried)")
    if summary.unknown or summary.skipped_unknown:
        lines.append(
            f"unknown: {summary.unknown + summary.skipped_unknown} (accepted or not cannot be "
            "known; not resent: compose send --retry-unknown resends them)"
        )
    lines += [
        f"skipped (already sent): {summary.skipped}",
        f"suppressed: {summary.suppressed}",
    ]
    if summary.bounces_suppressed:
        lines.append(f"hard bounces added to the suppressions: {summary.bounces_suppressed}")
    if summary.unsubscribed:
        lines.append(f"unsubscribed: {summary.unsubscribed}")
    for label, shown, total in (
        ("failed", summary.failures, summary.failed),
        ("refused", summary.refusals, summary.refused),
        ("unknown", summary.unknowns, summary.unknown),
    ):
        lines.extend(f"  {label} {email}: {reason}" for email, reason in shown)
        if total > len(shown):
            lines.append(f"  ... and {total - len(shown)} more {label} (compose status)")
    if summary.stopped:
        lines.append("left to retry: everyone not sent yet (the send stopped); run it again")
    elif summary.failed:
        lines.append(f"left to retry: {summary.failed} (temporary failures); run it again")
    else:
        lines.append("left to retry: none")
    if summary.elapsed > 0 and summary.sent:
        lines.append(f"time: {summary.elapsed:.1f} s ({summary.sent / summary.elapsed:,.0f} msg/s)")
    return lines
