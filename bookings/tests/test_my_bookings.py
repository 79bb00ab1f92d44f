"""Issue 17 item 10: the buyer's bookings split into upcoming and past (`booking_lists_for_buyer`)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from bookings import selectors
from bookings.models import Booking
from bookings.selectors import booking_lists_for_buyer
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory

pytestmark = pytest.mark.django_db


def event_in(days: float, hours: float = 3, **fields):
    start = timezone.now() + timedelta(days=days)
    return TicketTypeFactory(event=EventFactory(starts_at=start, ends_at=start + timedelta(hours=hours), **fields))


def test_an_event_that_ends_moves_its_booking_from_upcoming_to_past():
    buyer = UserFactory()
    concert = event_in(days=2, hours=3)
    booking = make_booking(items=[(concert, 2)], buyer=buyer, email=buyer.email, status=Booking.Status.CONFIRMED)
    ends_at = concert.event.ends_at

    with time_machine.travel(ends_at - timedelta(minutes=1), tick=False):  # the last encore
        lists = booking_lists_for_buyer(user=buyer)
        assert [b.pk for b in lists.upcoming] == [booking.pk] and list(lists.past) == []
        assert lists.upcoming[0].ticket_count == 2

    with time_machine.travel(ends_at, tick=False):
        lists = booking_lists_for_buyer(user=buyer)
        assert lists.upcoming == [] and [b.pk for b in lists.past] == [booking.pk]
        assert lists.past[0].ticket_count == 2


def test_upcoming_soonest_first_past_latest_first_and_only_the_buyers_own():
    buyer = UserFactory()
    later, sooner, first_past, second_past = event_in(20), event_in(5), event_in(1), event_in(3)
    mine = {tt.pk: make_booking(items=[(tt, 1)], buyer=buyer, email=buyer.email)
            for tt in (later, sooner, first_past, second_past)}
    make_booking(items=[(sooner, 1)], buyer=UserFactory())  # another buyer's
    make_booking(items=[(sooner, 1)], email=buyer.email)  # a guest booking with the same address: no account

    with time_machine.travel(timezone.now() + timedelta(days=4), tick=False):
        lists = booking_lists_for_buyer(user=buyer)

    assert [b.pk for b in lists.upcoming] == [mine[sooner.pk].pk, mine[later.pk].pk]
    assert [b.pk for b in lists.past] == [mine[second_past.pk].pk, mine[first_past.pk].pk]
    assert lists.upcoming_more is False


def test_the_ticket_count_is_the_bookings_tickets_whatever_their_state(django_assert_max_num_queries):
    buyer = UserFactory()
    tt = event_in(10)
    make_booking(items=[(tt, 3)], buyer=buyer, email=buyer.email, status=Booking.Status.CANCELLED)
    other = TicketTypeFactory(event=tt.event)
    make_booking(items=[(tt, 1), (other, 2)], buyer=buyer, email=buyer.email)

    with django_assert_max_num_queries(2):  # upcoming, then one page of past
        lists = booking_lists_for_buyer(user=buyer)
        assert sorted(b.ticket_count for b in lists.upcoming) == [3, 3]
        assert list(lists.past) == []
        assert {b.event.name for b in lists.upcoming} == {tt.event.name}


def test_upcoming_is_bounded(monkeypatch):
    monkeypatch.setattr(selectors, "UPCOMING_LIMIT", 2)
    buyer = UserFactory()
    for days in (3, 1, 2):
        make_booking(items=[(event_in(days), 1)], buyer=buyer, email=buyer.email)

    lists = booking_lists_for_buyer(user=buyer)

    assert len(lists.upcoming) == 2 and lists.upcoming_more is True
    assert lists.upcoming[0].event.starts_at < lists.upcoming[1].event.starts_at
