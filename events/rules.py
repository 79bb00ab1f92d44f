"""The one definition of what is left to sell and of when a ticket type is on sale.

The catalogue (`events.selectors`), the pages and the reservation (`bookings.services.rules`)
all decide with these. The reservation's one-round-trip guard restates `type_remaining` in SQL;
bookings/tests/test_rule_agreement.py checks that both agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import F
from django.db.models.expressions import CombinedExpression

if TYPE_CHECKING:
    from events.models import Event, TicketType


def type_remaining(ticket_type: TicketType) -> int:
    """Tickets of this type not sold or held, ignoring the event cap; never negative."""
    return max(0, ticket_type.capacity - ticket_type.sold - ticket_type.held)


def event_remaining(event: Event) -> int | None:
    """Seats left under the event cap, or None when the event has no cap."""
    if event.capacity is None:
        return None
    return max(0, event.capacity - event.sold - event.held)


def ticket_type_available(ticket_type: TicketType, *, event: Event | None = None) -> int:
    """Tickets of this type a buyer can still reserve: its own remainder, bounded by the event cap."""
    event = event or ticket_type.event
    left = type_remaining(ticket_type)
    cap = event_remaining(event)
    return left if cap is None else min(left, cap)


# Why nothing is left (`shortage`): every ticket is sold, or what is not sold is held by others'
# reservations (which come back on sale if they lapse or are cancelled).
SOLD_OUT = "sold_out"
ALL_RESERVED = "all_reserved"


def shortage(ticket_type: TicketType, *, event: Event) -> str | None:
    """Why a buyer can reserve none of this type: `SOLD_OUT` when sold tickets alone fill its
    capacity or the event cap, `ALL_RESERVED` when holds fill the rest; None while some are left."""
    if ticket_type_available(ticket_type, event=event) > 0:
        return None
    if ticket_type.capacity - ticket_type.sold <= 0:
        return SOLD_OUT
    return cap_shortage(event) or ALL_RESERVED


def cap_shortage(event: Event) -> str | None:
    """`shortage` of the event cap alone: None when the event has no cap or seats are left under it."""
    left = event_remaining(event)
    if left is None or left > 0:
        return None
    return SOLD_OUT if event.capacity - event.sold <= 0 else ALL_RESERVED


def event_shortage(event: Event, *, available: int, unsold: int) -> str | None:
    """`shortage` of a whole event from its sums: `available` seats (cap included), `unsold` = the
    sum over its ticket types of capacity - sold."""
    if available > 0:
        return None
    if unsold <= 0 or (event.capacity is not None and event.capacity - event.sold <= 0):
        return SOLD_OUT
    return ALL_RESERVED


def remaining_expression(prefix: str = "") -> CombinedExpression:
    """`capacity - sold - held` as an ORM expression, for querysets and annotations.

    `prefix` reaches the row through a relation (`"ticket_types__"`); it applies to an event's
    counters as to a ticket type's. The database's CHECK constraints keep it from going negative,
    so it equals `type_remaining` (or `event_remaining` on a capped event) row by row.
    """
    return F(f"{prefix}capacity") - F(f"{prefix}sold") - F(f"{prefix}held")


# Where a moment falls in a ticket type's sales window (`sales_state`).
SALES_NOT_STARTED = "not_started"
SALES_OPEN = "open"
SALES_ENDED = "ended"


def sales_end(ticket_type: TicketType, *, event: Event) -> datetime:
    """When sales of this type close: its own end, else the event's start."""
    return ticket_type.sales_end or event.starts_at


def sales_state(ticket_type: TicketType, *, event: Event, now: datetime) -> str:
    """Where `now` falls in the type's sales window: open from `sales_start` (inclusive, when set)
    until `sales_end(...)` (exclusive)."""
    if ticket_type.sales_start is not None and now < ticket_type.sales_start:
        return SALES_NOT_STARTED
    if now >= sales_end(ticket_type, event=event):
        return SALES_ENDED
    return SALES_OPEN
