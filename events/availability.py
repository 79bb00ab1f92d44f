"""What the site shows as left of an event: its cache, invalidation, and holds that lapsed.

The ticket rows are served from a short cache (AVAILABILITY_CACHE_SECONDS). When seats come back
on sale (a hold cancelled, expired or released, a refund) the app that moved the counters calls
`availability_changed` after its commit, so the event page shows them at once rather than after
the cache lapses. A hold past its deadline still counts in `held` until the sweeper (or a
reservation that needs its seats) releases it; `without_lapsed_holds` asks the holds' owner, by the
`lapsed_holds` signal, so a type that looks all reserved shows such seats at once. Events imports
nothing of the apps above it.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.core.cache import cache
from django.db import transaction
from django.dispatch import Signal

from events.models import Event, TicketType
from events.rules import cap_shortage, shortage

# Sent with `event` and `now`; a receiver answers {ticket type id: held tickets whose hold lapsed
# by `now` but that are not released yet} (bookings.signals).
lapsed_holds = Signal()


def availability_cache_key(event_id: uuid.UUID | str) -> str:
    # v2: holds (event, ticket types) where the first version held the event alone
    return f"site:event-availability:v2:{event_id}"


def availability_changed(*event_ids: uuid.UUID | str) -> None:
    """Forget the cached availability of these events once the current transaction commits (at
    once outside one): the next page or poll reads the counters again."""
    keys = _keys(event_ids)
    if keys:
        transaction.on_commit(lambda: cache.delete_many(keys), robust=True)  # a cache outage fails no request


def _keys(event_ids: Iterable[uuid.UUID | str]) -> list[str]:
    return sorted({availability_cache_key(pk) for pk in event_ids})


def without_lapsed_holds(event: Event, ticket_types: Sequence[TicketType], *, now: datetime
                         ) -> tuple[Event, list[TicketType]]:
    """The event and its types as a buyer can reserve them at `now`: when a type (or the event cap)
    looks all reserved, holds past their deadline are not counted (one query, only then; a
    reservation reclaims them). Copies; the instances given are left alone."""
    types = list(ticket_types)
    reserved = cap_shortage(event) == "all_reserved" or any(
        shortage(tt, event=event) == "all_reserved" for tt in types)
    if not reserved:
        return event, types
    lapsed: dict = {}
    for _receiver, answer in lapsed_holds.send(sender=Event, event=event, now=now):
        for pk, n in (answer or {}).items():
            lapsed[pk] = lapsed.get(pk, 0) + n
    if not any(lapsed.values()):
        return event, types
    adjusted = []
    for tt in types:
        if lapsed.get(tt.pk):
            tt = copy.copy(tt)
            tt.held = max(0, tt.held - lapsed[tt.pk])
        adjusted.append(tt)
    if event.capacity is not None:
        event = copy.copy(event)
        event.held = max(0, event.held - sum(lapsed.values()))
    return event, adjusted
