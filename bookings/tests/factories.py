"""Bookings are built through the services, so counters always match ticket rows."""

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


def make_booking(
    *,
    items: Sequence[tuple[TicketType, int]],
    status: str = Booking.Status.RESERVED,
    email: str = "buyer@example.com",
    buyer=None,
) -> Booking:
    """A booking of `items` brought to `status` by the same services production uses."""
    event = items[0][0].event
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
