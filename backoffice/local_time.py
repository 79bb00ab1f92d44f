"""An event's times as its organizer reads them: in the event's own time zone, labelled with it."""

from __future__ import annotations

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
