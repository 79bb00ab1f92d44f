"""An event's times as its organizer reads them: in the event's own time zone, labelled with it."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime

from django.utils import dateformat

# One way to write a date and time across the back office (lists, dashboard, exports, messages).
DATETIME_FORMAT = "D j M Y, H:i T"
DATE_FORMAT = "D j M Y"


def as_local(value: datetime, zone: str) -> datetime:
    """`value` (aware) in the IANA `zone`; UTC when the zone is unknown."""
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        tz = zoneinfo.ZoneInfo("UTC")
    return value.astimezone(tz)


def format_local(value: datetime | None, zone: str, fmt: str = DATETIME_FORMAT) -> str:
    """"Sat 5 Dec 2026, 19:30 CET" for an aware `value` in `zone`; "" for None."""
    if value is None:
        return ""
    return dateformat.format(as_local(value, zone), fmt)


def zone_or_none(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The IANA zone called `name`, or None when there is no such zone."""
    if not name or not isinstance(name, str) or name not in available_zones():
        return None
    return zoneinfo.ZoneInfo(name)


@functools.cache
def available_zones() -> frozenset[str]:
    """The IANA zone names (read once: `zoneinfo.available_timezones()` walks the zone files)."""
    return frozenset(zoneinfo.available_timezones())


def zone_choices() -> list[tuple[str, str]]:
    """The IANA zones as choices of a select, sorted by name."""
    return [(name, name) for name in sorted(available_zones())]


# Exports (CSV): a wall-clock time a spreadsheet reads as a date, next to a column naming the zone.
EXPORT_FORMAT = "Y-m-d H:i:s"


def format_export(value: datetime | None, zone: str) -> str:
    """"2026-12-05 19:30:00" (the wall clock in `zone`, no microseconds) for an aware `value`; "" for None."""
    return format_local(value, zone, EXPORT_FORMAT)
