"""Reads of the catalogue, with availability and the sales window as `events.rules` defines them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from events.models import Event
from events.rules import event_remaining, remaining_expression, ticket_type_available, type_remaining


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
    total = sum(type_remaining(tt) for tt in types)
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

    Each event carries `min_price`, `max_price`, `type_remaining` (the sum of
    its ticket types' remainders; combine with the cap via `event_available`) and
    `type_unsold` (capacity - sold summed: `events.rules.event_shortage`).
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
        type_remaining=Sum(remaining_expression("ticket_types__")),
        type_unsold=Sum(F("ticket_types__capacity") - F("ticket_types__sold")),
    ).order_by("starts_at", "name")


def event_available(event: Event) -> int:
    """Seats left for an event from `event_list_published`'s annotation and the cap."""
    total = max(0, getattr(event, "type_remaining", None) or 0)
    cap = event_remaining(event)
    return total if cap is None else min(total, cap)
