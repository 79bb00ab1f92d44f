"""Held and sold counts: moving them, releasing holds, reclaiming lapsed ones, repairing them.

Every function that changes counts expects its caller to hold the locks (see the package
docstring), except `inventory_repair`, which takes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Value, When

from bookings.models import Booking, Ticket
from core.db import CompiledQuery, Statement, locking_atomic, update_statement
from events.availability import availability_changed
from events.models import Event, TicketType

# Lapsed holds a reservation reclaims at most; the sweeper (`holds_expire`) does the rest.
RECLAIM_LIMIT = 200


def move_counters(*, event: Event, per_type: Mapping[uuid.UUID, int], held: int = 0, sold: int = 0) -> None:
    """Add `held * n` and `sold * n` to each ticket type's counters (n per type) and
    to the event's while it is capped. One UPDATE per table."""
    with connection.cursor() as cursor:
        for sql, params in counter_updates(event=event, per_type=per_type, held=held, sold=sold):
            cursor.execute(sql, params)


def counter_updates(*, event: Event, per_type: Mapping[uuid.UUID, int], held: int = 0,
                    sold: int = 0) -> list[Statement]:
    """The UPDATEs `move_counters` runs (none when nothing moves)."""
    per_type = {pk: n for pk, n in per_type.items() if n}
    if not per_type:
        return []
    signs = {column: sign for column, sign in (("held", held), ("sold", sold)) if sign}
    statements = [_TYPE_COUNTERS.statement(
        types=list(per_type), **{column: [sign * n for n in per_type.values()] for column, sign in signs.items()},
    )]
    if event.capacity is not None:
        total = sum(per_type.values())
        statements.append(_EVENT_COUNTERS.statement(
            event=event.pk, **{column: sign * total for column, sign in signs.items()},
        ))
    return statements


def _type_counters(types: list[uuid.UUID], **deltas: list[int]) -> Statement:
    """Add `deltas[column][i]` to `column` of ticket type `types[i]`."""
    def delta(values: list[int]):
        if len(types) == 1:
            return Value(values[0])
        return Case(*[When(pk=pk, then=Value(n)) for pk, n in zip(types, values, strict=True)],
                    output_field=IntegerField())

    return update_statement(TicketType.objects.filter(pk__in=types),
                            **{column: F(column) + delta(values) for column, values in deltas.items()})


_TYPE_COUNTERS = CompiledQuery(_type_counters)
_EVENT_COUNTERS = CompiledQuery(lambda event, **deltas: update_statement(
    Event.objects.filter(pk=event), **{column: F(column) + n for column, n in deltas.items()}))


def held_per_type(booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """{ticket type id: held tickets} of these bookings."""
    rows = (
        Ticket.objects.filter(booking_id__in=booking_ids, status=Ticket.Status.HELD)
        .values("ticket_type_id").annotate(n=Count("pk")).order_by()
    )
    return {row["ticket_type_id"]: row["n"] for row in rows}


def release_holds(*, event: Event, booking_ids: Sequence[uuid.UUID], status: str, now: datetime,
                  announce: bool = True) -> None:
    """End the holds of locked `reserved`/`processing` bookings: tickets released, capacity freed.

    `announce`: the event page's cached availability is forgotten after commit, so the seats show
    at once (a reservation reclaiming lapsed holds for itself passes False: it takes them).
    """
    per_type = held_per_type(booking_ids)
    Ticket.objects.filter(booking_id__in=booking_ids, status=Ticket.Status.HELD).update(status=Ticket.Status.RELEASED)
    Booking.objects.filter(pk__in=booking_ids).update(status=status, closed_at=now, updated_at=now)
    move_counters(event=event, per_type=per_type, held=-1)
    if announce:
        availability_changed(event.pk)


def reclaim_expired_holds(event: Event, types: Mapping[uuid.UUID, TicketType], now: datetime) -> int:
    """Expire lapsed holds on the locked types (at most RECLAIM_LIMIT); return how many bookings
    were released. Only bookings whose held tickets are all of these types qualify (no further lock
    out of order); bookings locked elsewhere are skipped, never waited for.
    """
    booking_ids = [pk for (pk,) in _RECLAIMABLE.fetch(event=event.pk, types=list(types), now=now)]
    if booking_ids:
        release_holds(event=event, booking_ids=booking_ids, status=Booking.Status.EXPIRED, now=now, announce=False)
    return len(booking_ids)


def _reclaimable(event: uuid.UUID, types: list[uuid.UUID], now: datetime):
    held_here = Ticket.objects.filter(booking_id=OuterRef("pk"), status=Ticket.Status.HELD)
    candidates = (
        Booking.objects.filter(event_id=event, status=Booking.Status.RESERVED, expires_at__lte=now)
        .filter(Exists(held_here.filter(ticket_type_id__in=types)))
        .exclude(Exists(held_here.exclude(ticket_type_id__in=types)))
        .values("pk")[:RECLAIM_LIMIT]
    )
    return (
        Booking.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(pk__in=candidates, status=Booking.Status.RESERVED, expires_at__lte=now)
        .values_list("pk")
    )


# Every refused reservation looks for lapsed holds while it holds the lock: compiled once.
_RECLAIMABLE = CompiledQuery(_reclaimable)


def inventory_repair(*, event_ids: Sequence[uuid.UUID]) -> None:
    """Set the counters of these events and their ticket types to what their ticket rows say.

    Takes a reservation's locks (event, then its types by pk), so nothing moves while it counts;
    rows beyond a capacity fail the CHECK constraints rather than oversell.
    """
    from bookings.selectors import ticket_counts

    for event_id in event_ids:
        with locking_atomic():
            event = Event.objects.select_for_update(no_key=True).get(pk=event_id)
            types = list(TicketType.objects.select_for_update(no_key=True).filter(event_id=event_id).order_by("pk"))
            counts = ticket_counts(event_ids=[event_id])
            total_held = total_sold = 0
            for tt in types:
                held, sold = counts.get(tt.pk, (0, 0))
                total_held, total_sold = total_held + held, total_sold + sold
                if (tt.held, tt.sold) != (held, sold):
                    TicketType.objects.filter(pk=tt.pk).update(held=held, sold=sold)
            if event.capacity is None:
                total_held = total_sold = 0
            if (event.held, event.sold) != (total_held, total_sold):
                Event.objects.filter(pk=event_id).update(held=total_held, sold=total_sold)
