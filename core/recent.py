"""This process's recent copies of rows, for the hot path of a reservation.

A copy is kept for `seconds` after it was read and is only ever a starting point: whoever uses one
reads again, under its locks, everything it relies on (`events.permissions.event_visible_to`,
`bookings.services.booking_reserve`). A row saved in this process drops its copy at once
(the owning app's `signals.py`); other processes' copies age out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from copy import copy

from django.db.models import Model


class RecentCopies:
    """Copies of model instances by primary key, each usable for `seconds`; at most `limit` kept."""

    def __init__(self, *, seconds: float, limit: int = 1000) -> None:
        self.seconds, self.limit = seconds, limit
        self._copies: dict[uuid.UUID, tuple[float, Model]] = {}

    def get(self, pk) -> Model | None:
        """A copy of the row, or None if there is none from the last `seconds`."""
        entry = self._copies.get(pk) if isinstance(pk, uuid.UUID) else None
        if entry is None or entry[0] < time.time():
            return None
        return copy(entry[1])  # callers may set attributes on theirs

    def put(self, objs: Iterable[Model]) -> None:
        expires = time.time() + self.seconds
        for obj in objs:
            if len(self._copies) >= self.limit:
                self._copies.clear()
            self._copies[obj.pk] = (expires, copy(obj))

    def forget(self, pk) -> None:
        self._copies.pop(pk, None)

    def clear(self) -> None:
        self._copies.clear()
