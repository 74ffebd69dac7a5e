"""Progress for people: a rich bar on a terminal, plain lines in logs, and the closing summary."""

from __future__ import annotations

import io

from rich.console import Console

from composer.delivery.log import FAILED, SENT, Outcome
from composer.delivery.progress import PlainReporter, RichReporter, summary_lines
from composer.delivery.runner import SendSummary


def test_plain_lines_with_rate_and_eta() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, interval=0.0)
    reporter.start(4)
    reporter.advance(2, 0)
    reporter.advance(1, 1)
    reporter.note("interrupted: finishing")
    reporter.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "sending 4 messages"
    assert lines[1].startswith("2/4 done (50%), 0 failed, ") and "msg/s, about" in lines[1]
    assert lines[2].startswith("4/4 done (100%), 1 failed")
    assert "interrupted: finishing" in lines


def test_rich_bar_on_a_terminal() -> None:
    out = io.StringIO()
    reporter = RichReporter(Console(file=out, force_terminal=True, width=100))
    reporter.start(3)
    reporter.advance(3, 0)
    reporter.finish()
    assert "3/3" in out.getvalue() and "msg/s" in out.getvalue()


def test_summary_names_failures_and_counts() -> None:
    summary = SendSummary(skipped=5, suppressed=2, elapsed=2.0)
    summary.add([Outcome("a@x.org", SENT), Outcome("b@x.org", FAILED, "550 5.1.1 no such user")])
    lines = summary_lines(summary)
    assert lines[:4] == ["sent: 1", "failed: 1", "skipped (already sent): 5", "suppressed: 2"]
    assert "  failed b@x.org: 550 5.1.1 no such user" in lines
