from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.models import Event
from events.selectors import availability_for_event, event_available, event_list_published
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


def test_availability_counts_sold_and_held_and_respects_the_event_cap():
    event = EventFactory(capacity=8)
    a = TicketTypeFactory(event=event, capacity=5, name="A")
    b = TicketTypeFactory(event=event, capacity=5, name="B")
    make_booking(items=[(a, 2)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(b, 3)])
    event.refresh_from_db()

    availability = availability_for_event(event=event)

    assert (availability.capacity, availability.available) == (8, 3)
    rows = {row.name: row for row in availability.ticket_types}
    assert (rows["A"].sold, rows["A"].held, rows["A"].available) == (2, 0, 3)
    assert (rows["B"].sold, rows["B"].held, rows["B"].available) == (0, 3, 2)


def test_availability_without_a_cap_is_the_sum_of_the_types():
    event = EventFactory()
    TicketTypeFactory(event=event, capacity=5)
    TicketTypeFactory(event=event, capacity=7)
    assert availability_for_event(event=event).available == 12


def test_the_catalogue_lists_only_published_events_not_yet_over():
    now = timezone.now()
    shown = EventFactory(name="Shown")
    EventFactory(status=Event.Status.DRAFT)
    EventFactory(status=Event.Status.CANCELLED)
    EventFactory(starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    assert list(event_list_published()) == [shown]


def test_the_catalogue_filters_by_text_city_category_and_dates():
    now = timezone.now()
    jazz = EventFactory(name="Jazz Night", city="Paris", category="music", starts_at=now + timedelta(days=2))
    play = EventFactory(name="Hamlet", city="London", category="theatre", starts_at=now + timedelta(days=20),
                        description="A play by Shakespeare")

    assert list(event_list_published(q="jazz")) == [jazz]
    assert list(event_list_published(q="shakespeare")) == [play]
    assert list(event_list_published(city="london")) == [play]
    assert list(event_list_published(category="music")) == [jazz]
    assert list(event_list_published(starts_after=now + timedelta(days=10))) == [play]
    assert list(event_list_published(starts_before=now + timedelta(days=10))) == [jazz]


def test_the_catalogue_carries_price_range_and_seats_left():
    event = EventFactory(capacity=6)
    TicketTypeFactory(event=event, price=Decimal("10.00"), capacity=5)
    expensive = TicketTypeFactory(event=event, price=Decimal("80.00"), capacity=5)
    make_booking(items=[(expensive, 2)])

    [listed] = event_list_published()

    assert (listed.min_price, listed.max_price) == (Decimal("10.00"), Decimal("80.00"))
    assert event_available(listed) == 4
