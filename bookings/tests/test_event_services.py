from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.tests.factories import make_booking
from core.errors import CapacityConflict, HasSales, InvalidInput, InvalidTransition
from events.models import Event, TicketType
from events.services import (
    event_create,
    event_delete,
    event_publish,
    event_unpublish,
    event_update,
    ticket_type_create,
    ticket_type_delete,
    ticket_type_update,
)
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


def event_fields(**overrides):
    starts = timezone.now() + timedelta(days=10)
    fields = {"name": "Jazz Night", "venue": "Blue Note", "city": "Paris", "category": "music",
              "starts_at": starts, "ends_at": starts + timedelta(hours=2), "currency": "EUR",
              "timezone": "Europe/Paris"}
    return {**fields, **overrides}


def test_event_create_makes_a_draft_with_a_unique_slug():
    organizer = OrganizerFactory()
    first = event_create(organizer=organizer, **event_fields())
    second = event_create(organizer=organizer, **event_fields())
    assert first.status == Event.Status.DRAFT
    assert (first.slug, second.slug) == ("jazz-night", "jazz-night-2")


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"ends_at": timezone.now()}, "ends_at"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"currency": "euro"}, "currency"),
        ({"name": ""}, "name"),
        ({"category": "knitting"}, "category"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_event_create_rejects_invalid_fields(overrides, field):
    with pytest.raises(InvalidInput) as exc:
        event_create(organizer=OrganizerFactory(), **event_fields(**overrides))
    assert field in exc.value.errors
    assert not Event.objects.exists()


def test_event_capacity_cannot_drop_below_sold_plus_held():
    event = EventFactory(capacity=10)
    tt = TicketTypeFactory(event=event, capacity=10)
    make_booking(items=[(tt, 3)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(tt, 2)])

    with pytest.raises(CapacityConflict) as exc:
        event_update(event=event, capacity=4)
    assert exc.value.errors == {"capacity": ["Must be at least 5."]}

    event_update(event=event, capacity=5)
    assert (event.capacity, event.sold, event.held) == (5, 3, 2)


def test_capping_an_event_counts_what_its_types_already_sold_and_uncapping_zeroes_it():
    event = EventFactory(capacity=None)
    tt = TicketTypeFactory(event=event)
    make_booking(items=[(tt, 3)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(tt, 1)])

    event_update(event=event, capacity=100)
    assert (event.sold, event.held) == (3, 1)

    event_update(event=event, capacity=None)
    assert (event.sold, event.held) == (0, 0)


def test_event_update_changes_details_and_refuses_unknown_fields():
    event = EventFactory()
    event_update(event=event, name="New name", city="Lyon")
    assert (event.name, event.city) == ("New name", "Lyon")
    with pytest.raises(InvalidInput):
        event_update(event=event, status="published")


def test_currency_is_fixed_once_tickets_are_booked():
    tt = TicketTypeFactory()
    make_booking(items=[(tt, 1)])
    with pytest.raises(HasSales):
        event_update(event=tt.event, currency="USD")


def test_a_cancelled_event_cannot_be_changed():
    event = EventFactory(status=Event.Status.CANCELLED)
    with pytest.raises(InvalidTransition):
        event_update(event=event, name="x")
    with pytest.raises(InvalidTransition):
        ticket_type_create(event=event, name="Late", price=Decimal("1.00"), capacity=1)


def test_publish_needs_a_draft_with_a_ticket_type_that_has_not_ended(time_machine):
    event = EventFactory(status=Event.Status.DRAFT)
    with pytest.raises(InvalidTransition):  # not ready to sell: a conflict with its state, not bad input
        event_publish(event=event)
    TicketTypeFactory(event=event)

    event_publish(event=event)
    assert event.status == Event.Status.PUBLISHED and event.published_at is not None
    with pytest.raises(InvalidTransition):
        event_publish(event=event)

    event_unpublish(event=event)
    assert event.status == Event.Status.DRAFT
    with pytest.raises(InvalidTransition):
        event_unpublish(event=event)

    time_machine.move_to(event.ends_at + timedelta(minutes=1))
    with pytest.raises(InvalidTransition):
        event_publish(event=event)


def test_an_event_with_bookings_cannot_be_deleted():
    tt = TicketTypeFactory()
    make_booking(items=[(tt, 1)], status=Booking.Status.CANCELLED)
    with pytest.raises(HasSales):
        event_delete(event=tt.event)
    empty = EventFactory()
    event_delete(event=empty)
    assert not Event.objects.filter(pk=empty.pk).exists()


def test_ticket_type_create_validates_its_fields():
    event = EventFactory()
    tt = ticket_type_create(event=event, name="General", price=Decimal("20.00"), capacity=100)
    assert (tt.sold, tt.held, tt.max_per_booking) == (0, 0, 10)

    with pytest.raises(InvalidInput) as exc:
        ticket_type_create(event=event, name="General", price=Decimal("20.00"), capacity=100)
    assert "name" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:
        ticket_type_create(event=event, name="Cheap", price=Decimal("-1.00"), capacity=1)
    assert "price" in exc.value.errors
    now = timezone.now()
    with pytest.raises(InvalidInput) as exc:
        ticket_type_create(event=event, name="Window", price=Decimal("1.00"), capacity=1,
                           sales_start=now, sales_end=now - timedelta(hours=1))
    assert "sales_end" in exc.value.errors
    with pytest.raises(InvalidInput):
        ticket_type_create(event=event, name="Zero", price=Decimal("1.00"), capacity=1, max_per_booking=0)
    assert TicketType.objects.count() == 1


def test_ticket_type_capacity_cannot_drop_below_sold_plus_held():
    tt = TicketTypeFactory(capacity=10)
    make_booking(items=[(tt, 4)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(tt, 2)])

    with pytest.raises(CapacityConflict):
        ticket_type_update(ticket_type=tt, capacity=5)
    ticket_type_update(ticket_type=tt, capacity=6, price=Decimal("99.00"))
    assert (tt.capacity, tt.price, tt.sold, tt.held) == (6, Decimal("99.00"), 4, 2)


def test_a_ticket_type_with_bookings_cannot_be_deleted():
    tt = TicketTypeFactory()
    make_booking(items=[(tt, 1)], status=Booking.Status.CANCELLED)
    with pytest.raises(HasSales):
        ticket_type_delete(ticket_type=tt)
    unused = TicketTypeFactory()
    ticket_type_delete(ticket_type=unused)
    assert not TicketType.objects.filter(pk=unused.pk).exists()
