"""Reads of the catalogue and the one definition of availability."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from events.models import Event, TicketType


@dataclass(frozen=True)
class TicketTypeAvailability:
    id: uuid.UUID
    name: str
    price: Decimal
    capacity: int
    sold: int
    held: int
    available: int


@dataclass(frozen=True)
class EventAvailability:
    event: uuid.UUID
    capacity: int | None
    available: int
    ticket_types: list[TicketTypeAvailability] = field(default_factory=list)


def event_remaining(event: Event) -> int | None:
    """Seats left under the event cap, or None when the event has no cap."""
    if event.capacity is None:
        return None
    return max(0, event.capacity - event.sold - event.held)


def ticket_type_available(ticket_type: TicketType, *, event: Event | None = None) -> int:
    """Tickets of this type a buyer can still reserve: its own remainder, bounded by the event cap."""
    event = event or ticket_type.event
    left = max(0, ticket_type.capacity - ticket_type.sold - ticket_type.held)
    cap = event_remaining(event)
    return left if cap is None else min(left, cap)


# Sales window of a ticket type (`ticket_type_sales_state`).
SALES_NOT_STARTED = "not_started"
SALES_OPEN = "open"
SALES_ENDED = "ended"


def ticket_type_sales_state(ticket_type: TicketType, *, event: Event, now: datetime | None = None) -> str:
    """Where `now` falls in the type's sales window; sales end when the event starts unless set earlier.

    The one definition of the window: the booking service refuses a reservation
    outside it, the pages show it.
    """
    now = now or timezone.now()
    if ticket_type.sales_start is not None and now < ticket_type.sales_start:
        return SALES_NOT_STARTED
    if now >= (ticket_type.sales_end or event.starts_at):
        return SALES_ENDED
    return SALES_OPEN


def event_cities() -> list[str]:
    """Cities of upcoming published events, for the catalogue's city filter."""
    return list(
        Event.objects.filter(status=Event.Status.PUBLISHED, ends_at__gte=timezone.now())
        .order_by("city").values_list("city", flat=True).distinct()
    )


def availability_for_event(*, event: Event) -> EventAvailability:
    """Availability of an event and each of its ticket types (from counters, no ticket rows)."""
    types = list(event.ticket_types.all())
    rows = [
        TicketTypeAvailability(
            id=tt.pk, name=tt.name, price=tt.price, capacity=tt.capacity, sold=tt.sold, held=tt.held,
            available=ticket_type_available(tt, event=event),
        )
        for tt in types
    ]
    total = sum(max(0, tt.capacity - tt.sold - tt.held) for tt in types)
    cap = event_remaining(event)
    return EventAvailability(
        event=event.pk,
        capacity=event.capacity,
        available=total if cap is None else min(total, cap),
        ticket_types=rows,
    )


def event_list_published(
    *,
    q: str | None = None,
    city: str | None = None,
    category: str | None = None,
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    upcoming: bool = True,
    base: QuerySet[Event] | None = None,
) -> QuerySet[Event]:
    """Published events (by default those not yet over), with price range and seats left.

    `base` replaces "published" as the starting set (e.g. `events_visible_to(user)`
    for the API, which also lists an organizer's drafts to its members).

    Each event carries `min_price`, `max_price` and `type_remaining` (the sum of
    its ticket types' remainders; combine with the cap via `event_available`).
    """
    if base is None:
        base = Event.objects.filter(status=Event.Status.PUBLISHED)
    qs = base.select_related("organizer")
    if upcoming and not starts_after:
        qs = qs.filter(ends_at__gte=timezone.now())
    if q:
        for word in q.split()[:10]:
            qs = qs.filter(
                Q(name__icontains=word) | Q(description__icontains=word) | Q(venue__icontains=word)
                | Q(city__icontains=word) | Q(organizer__name__icontains=word)
            )
    if city:
        qs = qs.filter(city__iexact=city.strip())
    if category:
        qs = qs.filter(category=category)
    if starts_after:
        qs = qs.filter(starts_at__gte=starts_after)
    if starts_before:
        qs = qs.filter(starts_at__lte=starts_before)
    return qs.annotate(
        min_price=Min("ticket_types__price"),
        max_price=Max("ticket_types__price"),
        type_remaining=Sum(F("ticket_types__capacity") - F("ticket_types__sold") - F("ticket_types__held")),
    ).order_by("starts_at", "name")


def event_available(event: Event) -> int:
    """Seats left for an event from `event_list_published`'s annotation and the cap."""
    total = max(0, getattr(event, "type_remaining", None) or 0)
    cap = event_remaining(event)
    return total if cap is None else min(total, cap)
