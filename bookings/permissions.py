"""What a caller may do to a booking it reaches (`selectors.booking_access`), for the site and the API.

The booking's owner (its buyer's account, or a guest link that still works)
acts as the buyer. Anyone else reaching it is the event's organizer staff, and
may do only what `events.permissions` allows them, the rule the admin's
actions check too: a view-only staff member sees the booking and changes nothing.
"""

from __future__ import annotations

from bookings.selectors import BookingAccess
from events.permissions import can_cancel_booking, can_refund_booking


def may_cancel_booking(user, access: BookingAccess) -> bool:
    """Release the hold: its owner, or organizer staff with `bookings.cancel_booking`."""
    return access.owner or can_cancel_booking(user, access.booking)


def may_refund_booking(user, access: BookingAccess) -> bool:
    """Ask for a refund as the buyer (`refund_by_organizer` False), or refund as organizer staff
    with `bookings.refund_booking`."""
    return access.owner or refund_by_organizer(user, access)


def refund_by_organizer(user, access: BookingAccess) -> bool:
    """Whether a refund the caller asks for is the organizer's (any time) rather than the buyer's
    (until `REFUND_CUTOFF_HOURS` before the event): staff with the permission, even on a booking
    they own."""
    return can_refund_booking(user, access.booking)
