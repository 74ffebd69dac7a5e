"""`send --at`: when each reader's copy leaves.

Either one instant for everyone (`2026-12-03T09:00+01:00`), or a time of day (`09:00`) that means
the next 09:00 in each reader's own time zone (their `timezone` column, else the newsletter's
`timezone`, else this machine's). The next 09:00 is counted from when the schedule was first
made, and the delivery log keeps that moment: a send resumed after a crash or Ctrl-C keeps its
times instead of moving to the next day.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field

from composer.errors import UsageError
from composer.timezones import zone_named

SENDGRID_HORIZON = dt.timedelta(hours=72)  # SendGrid refuses a send_at further ahead
_TIME_OF_DAY = re.compile(r"^(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)$")
_GRACE = dt.timedelta(minutes=1)  # "now" typed a little late is not "in the past"


@dataclass(frozen=True)
class Schedule:
    """A parsed `--at`: a fixed instant, or a time of day in each reader's zone."""

    text: str  # as given: what a re-run must repeat to resume this schedule
    base: dt.datetime  # when it was first made (UTC)
    instant: dt.datetime | None = None
    time_of_day: dt.time | None = None
    default_zone: dt.tzinfo = dt.UTC
    # zone -> its time: asked for every reader, in every wave, of a few zones.
    _times: dict[str, dt.datetime] = field(default_factory=dict, compare=False, repr=False)

    def when(self, zone: str = "") -> dt.datetime:
        """When a reader in `zone` (an IANA name; "" for the default) gets the issue, in UTC."""
        found = self._times.get(zone)
        if found is None:
            found = self._times[zone] = self._when(zone)
        return found

    def _when(self, zone: str) -> dt.datetime:
        if self.instant is not None:
            return self.instant.astimezone(dt.UTC)
        assert self.time_of_day is not None
        tz = zone_named(zone) if zone else self.default_zone
        local = self.base.astimezone(tz)
        day = local.date()
        moment = dt.datetime.combine(day, self.time_of_day, tzinfo=tz)
        if moment <= local:
            moment = dt.datetime.combine(day + dt.timedelta(days=1), self.time_of_day, tzinfo=tz)
        return moment.astimezone(dt.UTC)

    def describe(self) -> str:
        """The schedule in words, for the plan and `compose status`."""
        if self.instant is not None:
            return f"at {self.instant.isoformat()}"
        assert self.time_of_day is not None
        return (
            f"at {self.time_of_day.strftime('%H:%M')} in each reader's time zone "
            f"(default {self.default_zone})"
        )


def parse_at(
    text: str,
    default_zone: str | None,
    *,
    base: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """`--at TEXT` as a Schedule; `base`: when an earlier run made this same schedule."""
    now = now or dt.datetime.now(dt.UTC)
    zone: dt.tzinfo = zone_named(default_zone) if default_zone else _local_zone()
    value = text.strip()
    match = _TIME_OF_DAY.match(value)
    if match:
        clock = dt.time(int(match["hour"]), int(match["minute"]))
        return Schedule(text, base or now, time_of_day=clock, default_zone=zone)
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--at {text!r}: give an instant with its offset (2026-12-03T09:00+01:00) or a time "
            "of day (09:00, meaning 09:00 in each reader's time zone)"
        ) from None
    if instant.tzinfo is None:
        raise UsageError(
            f"--at {text!r} has no offset: write it as {value}+01:00 (or Z for UTC), or give a "
            "time of day (09:00) for 09:00 in each reader's time zone"
        )
    if base is None and instant < now - _GRACE:
        raise UsageError(f"--at {text!r} is in the past; leave --at out to send now")
    return Schedule(text, base or now, instant=instant)


def check_horizon(latest: dt.datetime, now: dt.datetime | None = None) -> None:
    """SendGrid keeps a scheduled message at most 72 hours: refuse a send_at beyond."""
    now = now or dt.datetime.now(dt.UTC)
    if latest - now > SENDGRID_HORIZON:
        raise UsageError(
            f"SendGrid schedules at most 72 hours ahead, and this send would hold messages until "
            f"{latest.isoformat(timespec='minutes')}; run compose send closer to the time "
            "(from cron or a systemd timer, see docs/delivery.md)"
        )


def wait_until(moment: dt.datetime, stop: threading.Event) -> bool:
    """Sleep until `moment` (UTC); False when `stop` was set first (Ctrl-C, SIGTERM)."""
    while True:
        left = (moment - dt.datetime.now(dt.UTC)).total_seconds()
        if left <= 0:
            return True
        if stop.wait(min(left, 1.0)):  # wakes within a second of a signal, and of the clock
            return False


def from_timestamp(seconds: float) -> dt.datetime:
    """A UTC datetime from the delivery log's REAL timestamps."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _local_zone() -> dt.tzinfo:
    zone = dt.datetime.now().astimezone().tzinfo
    return zone or dt.UTC
