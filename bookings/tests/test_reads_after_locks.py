"""Booking transitions decide on the event as it is once their locks are granted (issue 15, item 2).

A caller hands in a booking whose event it read earlier (the capture task reads
it before a gateway call that can take seconds). An uncapped event's row is not
locked by these transitions, so they must read it again after their ticket type
locks: its status (a cancelled event confirms nothing) and its capacity (a cap
set meanwhile means the event's counters move too, and that needs the event's
lock first: the transition is refused as `Busy` and its retry does it right).
"""

import pytest

from bookings.models import Booking
from bookings.services import booking_cancel, booking_confirm, booking_fail_payment, tickets_release_sold
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from bookings.tests.factories import make_booking
from events.models import Event
from events.services import event_update
from events.tests.factories import TicketTypeFactory
from ticketing.errors import Busy, InvalidTransition

pytestmark = pytest.mark.django_db(transaction=True)

TRANSITIONS = {
    "confirm": (Booking.Status.PROCESSING, booking_confirm, Booking.Status.CONFIRMED),
    "fail_payment": (Booking.Status.PROCESSING, booking_fail_payment, Booking.Status.CANCELLED),
    "cancel": (Booking.Status.RESERVED, booking_cancel, Booking.Status.CANCELLED),
    "release_sold": (Booking.Status.CONFIRMED, tickets_release_sold, Booking.Status.REFUNDED),
}


@pytest.fixture
def tt():
    return TicketTypeFactory(capacity=10, event__capacity=None)


def stale(booking: Booking) -> Booking:
    booking.event  # noqa: B018 - the caller's copy of the event, read now
    return booking


def test_a_booking_is_not_confirmed_for_an_event_cancelled_after_it_was_read(tt):
    booking = stale(make_booking(items=[(tt, 2)], status=Booking.Status.PROCESSING))
    Event.objects.filter(pk=tt.event_id).update(status=Event.Status.CANCELLED)

    with pytest.raises(InvalidTransition, match="cancelled"):
        booking_confirm(booking=booking)

    booking.refresh_from_db()
    tt.refresh_from_db()
    assert booking.status == Booking.Status.PROCESSING
    assert (tt.sold, tt.held) == (0, 2)
    assert_inventory_consistent()


@pytest.mark.parametrize("name", TRANSITIONS)
def test_a_cap_set_after_the_booking_was_read_never_leaves_the_event_counters_wrong(tt, name):
    status, transition, after = TRANSITIONS[name]
    booking = stale(make_booking(items=[(tt, 2)], status=status))
    event_update(event=Event.objects.get(pk=tt.event_id), capacity=100)  # counts the booking's 2 tickets

    with pytest.raises(Busy):
        transition(booking=booking)  # the event must be locked first now: refused, nothing moved
    assert_inventory_consistent()

    transition(booking=Booking.objects.get(pk=booking.pk))  # the retry reads the booking again
    assert Booking.objects.get(pk=booking.pk).status == after
    assert_inventory_consistent()
    assert_bookings_match_tickets()
