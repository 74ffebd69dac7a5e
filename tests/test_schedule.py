"""`send --at`: an instant or each reader's 09:00; SendGrid holds the mail, SMTP/outbox wait."""

from __future__ import annotations

import datetime as dt
import re
import signal
import sqlite3
import subprocess
import zoneinfo
from pathlib import Path

import pytest
from doubles.delivery_project import ISSUE, compose_args, compose_env, make_project, run
from doubles.sendgrid_api import SendGridDouble

from composer.delivery.log import DeliveryLog, SendRecord
from composer.delivery.plan import plan_send
from composer.delivery.runner import run_send
from composer.delivery.schedule import parse_at
from composer.errors import UsageError
from composer.project import load_project

UTC = dt.UTC
KEY = "SG.secret-test-key-do-not-print"
ZONES = ("Europe/Belgrade", "America/New_York", "Asia/Tokyo")


def test_a_time_of_day_is_the_next_one_in_each_zone() -> None:
    now = dt.datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # 08:30 in Belgrade, 02:30 in New York
    schedule = parse_at("09:00", "Europe/Vienna", now=now)
    assert schedule.when("Europe/Belgrade") == dt.datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert schedule.when("America/New_York") == dt.datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
    assert schedule.when("Asia/Tokyo") == dt.datetime(2026, 12, 3, 0, 0, tzinfo=UTC)  # tomorrow
    assert schedule.when() == dt.datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # the default: Vienna
    # Across a change to summer time, 09:00 stays 09:00 on the wall clock.
    spring = parse_at("09:00", "Europe/Vienna", now=dt.datetime(2027, 3, 28, 0, 30, tzinfo=UTC))
    assert spring.when() == dt.datetime(2027, 3, 28, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-12-03T09:00", "has no offset: write it as 2026-12-03T09:00+01:00"),
        ("tomorrow", "give an instant with its offset"),
        ("25:00", "give an instant with its offset"),
        ("2020-01-01T09:00+01:00", "is in the past; leave --at out to send now"),
    ],
)
def test_an_unusable_time_says_what_to_write(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        parse_at(text, None)


def test_a_misspelt_zone_is_named_with_the_zone_meant(tmp_path: Path) -> None:
    project = make_project(tmp_path, 0)
    lists = project / "subscribers" / "main.csv"
    lists.write_text(
        "email,name,timezone\na@example.org,A,Europe/Belgrade\nb@example.org,B,Europe/Belgarde\n"
    )
    result = run(project, "send", str(project / ISSUE), "--list", "main", "--at", "09:00", "--yes")
    assert result.code == 1
    assert "main.csv:3: unknown time zone 'Europe/Belgarde'; did you mean Europe/Belgrade?" in (
        result.stderr
    )
    assert not (project / "outbox").exists()


def test_sendgrid_gets_each_readers_own_send_at(tmp_path: Path) -> None:
    project = make_project(tmp_path, 0, transport="sendgrid")
    rows = "".join(f"r{n}@example.org,R{n},{zone}\n" for n, zone in enumerate(ZONES))
    (project / "subscribers" / "main.csv").write_text("email,name,timezone\n" + rows)
    with SendGridDouble(api_key=KEY) as double:
        result = run(
            project, "send", str(project / ISSUE), "--list", "main", "--at", "09:00", "--yes",
            SENDGRID_API_KEY=KEY, COMPOSE_SENDGRID_HOST=double.url,
        )  # fmt: skip
        assert result.code == 0, result.stderr
    assert "held by SendGrid until" in result.stdout
    with sqlite3.connect(project / ".compose" / "delivery.sqlite") as db:
        text, base = db.execute("SELECT schedule, schedule_base FROM sends").fetchone()
    assert text == "09:00"
    made = dt.datetime.fromtimestamp(base, UTC)
    for n, zone in enumerate(ZONES):
        _, personal = double.personalization(f"r{n}@example.org")
        local = made.astimezone(zoneinfo.ZoneInfo(zone))
        expected = local.replace(hour=9, minute=0, second=0, microsecond=0)
        if expected <= local:
            expected = dt.datetime.combine(
                local.date() + dt.timedelta(days=1), dt.time(9), tzinfo=local.tzinfo
            )
        assert personal["send_at"] == int(expected.timestamp()), zone
    status = run(project, "status", str(project / ISSUE)).stdout
    assert "main: sent 3" in status and "scheduled at 09:00 in each reader's time zone" in status


def test_sendgrid_refuses_a_time_past_its_72_hours(tmp_path: Path) -> None:
    project = make_project(tmp_path, 2, transport="sendgrid")
    later = (dt.datetime.now(UTC) + dt.timedelta(hours=80)).isoformat(timespec="minutes")
    with SendGridDouble(api_key=KEY) as double:
        result = run(
            project, "send", str(project / ISSUE), "--list", "main", "--at", later, "--yes",
            SENDGRID_API_KEY=KEY, COMPOSE_SENDGRID_HOST=double.url,
        )  # fmt: skip
    assert result.code == 2 and "SendGrid schedules at most 72 hours ahead" in result.stderr
    assert not double.requests


def test_the_outbox_waits_for_the_time_and_starts_no_earlier(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3)
    at = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=5)
    result = run(project, "send", str(project / ISSUE), "--list", "main", "--at", at.isoformat(),
                 "--yes")  # fmt: skip
    assert result.code == 0, result.stderr
    assert "this command waits, then sends at" in result.stdout
    assert "waiting until" in result.stderr and "sent: 3" in result.stdout
    written = [p.stat().st_mtime for p in (project / "outbox" / "x").glob("*.eml")]
    assert len(written) == 3 and min(written) >= at.timestamp()


def _start(project: Path, at: str) -> subprocess.Popen[str]:
    args = compose_args(project, "send", str(project / ISSUE), "--list", "main", "--at", at,
                        "--yes")  # fmt: skip
    return subprocess.Popen(
        args,
        env=compose_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_the_wait(child: subprocess.Popen[str]) -> None:
    assert child.stderr is not None
    for line in child.stderr:
        if line.startswith("waiting until"):
            return
    raise AssertionError(child.communicate())


def test_an_interrupted_wait_sends_nothing_and_leaves_the_send_to_resume(tmp_path: Path) -> None:
    project = make_project(tmp_path, 3)
    at = (dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(minutes=10)).isoformat()
    child = _start(project, at)
    try:
        _wait_for_the_wait(child)
        waiting = run(project, "status", str(project / ISSUE)).stdout
        assert "a compose send is running or waiting for it now" in waiting
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert "run the same command to resume" in err and "Traceback" not in err
    assert not list((project / "outbox").glob("x/*.eml"))
    status = run(project, "status", str(project / ISSUE)).stdout
    assert "pending 3" in status and f"scheduled at {at}" in status
    assert "no compose send is waiting for it: run the same send command to resume" in status


def test_a_schedule_whose_time_passed_while_stopped_resumes_at_once(tmp_path: Path) -> None:
    root = make_project(tmp_path, 2)
    project = load_project(root)
    at = "2026-01-05T09:00+01:00"  # made back then; a fresh --at this old would be refused
    made = dt.datetime(2026, 1, 5, 7, 0, tzinfo=UTC).timestamp()
    with DeliveryLog.for_project(project.state_dir()) as log:
        record = SendRecord(
            "Subject", "full", "sha", "outbox", source=ISSUE, schedule=at, schedule_base=made
        )
        log.begin_send("x", "main", record)
    plan = plan_send(project, root / ISSUE, ["main"], at=at)
    assert plan.schedule is not None and plan.schedule.base.timestamp() == made
    assert run_send(plan).sent == 2
    with pytest.raises(UsageError, match="in the past"):
        plan_send(project, root / ISSUE, ["main"], at="2026-01-05T10:00+01:00")  # another time


def test_a_test_copy_cannot_be_scheduled(tmp_path: Path) -> None:
    project = make_project(tmp_path, 1)
    result = run(project, "send", str(project / ISSUE), "--test", "me@example.org", "--at",
                 "09:00", "--yes")  # fmt: skip
    assert result.code == 2 and "a --test copy goes now" in result.stderr
