"""Bookings are built through the services, so counters always match ticket rows."""

import itertools
from collections.abc import Sequence

from bookings.models import Booking
from bookings.services import (
    LineItem,
    booking_cancel,
    booking_confirm,
    booking_reserve,
    booking_start_payment,
    tickets_release_sold,
)
from events.models import TicketType

_emails = itertools.count(1)


def new_email() -> str:
    """A buyer's address no other booking of the test run has."""
    return f"buyer{next(_emails)}@example.com"


def make_booking(
    *,
    items: Sequence[tuple[TicketType, int]],
    status: str = Booking.Status.RESERVED,
    email: str | None = None,
    buyer=None,
) -> Booking:
    """A booking of `items` brought to `status` by the same services production uses.

    Each by a buyer of its own unless `email` or `buyer` says otherwise, so a test's bookings
    never meet the hoarding limits per buyer (bookings.limits) by accident.
    """
    event = items[0][0].event
    email = email if email is not None else new_email()
    booking = booking_reserve(event=event, items=[LineItem(tt, n) for tt, n in items], email=email, buyer=buyer)
    if status == Booking.Status.RESERVED:
        return booking
    if status == Booking.Status.CANCELLED:
        return booking_cancel(booking=booking)
    booking_start_payment(booking=booking)
    if status == Booking.Status.PROCESSING:
        return booking
    booking_confirm(booking=booking)
    if status == Booking.Status.CONFIRMED:
        return booking
    if status == Booking.Status.REFUNDED:
        tickets_release_sold(booking=booking)
        return booking
    raise ValueError(f"make_booking cannot reach {status!r}; expire holds with time travel")
