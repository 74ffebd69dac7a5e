"""IANA time zones by name, with advice for a misspelt one (`Europe/Belgarde`)."""

from __future__ import annotations

import functools
import zoneinfo

from composer.errors import suggest


@functools.cache
def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The zone called `name`; ValueError saying what to write when there is none."""
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = suggest(name.strip(), sorted(_known()), cutoff=0.6)
        fix = f"; did you mean {hint}?" if hint else " (an IANA name such as Europe/Belgrade)"
        raise ValueError(f"unknown time zone {name!r}{fix}") from None


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
