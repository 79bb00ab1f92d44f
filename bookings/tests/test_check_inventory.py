from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("check_inventory", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def sales():
    event = EventFactory(capacity=20)
    tt = TicketTypeFactory(event=event, capacity=10)
    make_booking(items=[(tt, 2)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(tt, 3)])
    return event, tt


def test_clean_inventory_passes(sales):
    assert "Inventory OK" in run()


def test_a_drifted_counter_is_reported_and_fails(sales):
    event, tt = sales
    TicketType.objects.filter(pk=tt.pk).update(held=1)
    Event.objects.filter(pk=event.pk).update(sold=7)

    out = StringIO()
    with pytest.raises(CommandError, match="2 mismatch"):
        call_command("check_inventory", stdout=out)
    assert f"ticket_type {tt.pk}" in out.getvalue() and "held is 1, rows say 3" in out.getvalue()
    assert f"event {event.pk}" in out.getvalue() and "sold is 7, rows say 2" in out.getvalue()


def test_repair_sets_counters_to_the_rows(sales):
    event, tt = sales
    TicketType.objects.filter(pk=tt.pk).update(held=0, sold=9)
    Event.objects.filter(pk=event.pk).update(held=0)

    assert "Repaired the counters of 1 event(s)." in run("--repair")

    tt.refresh_from_db()
    event.refresh_from_db()
    assert (tt.sold, tt.held, event.sold, event.held) == (2, 3, 2, 3)
    assert "Inventory OK" in run()


def test_counters_of_an_uncapped_event_must_stay_zero():
    tt = TicketTypeFactory()
    make_booking(items=[(tt, 1)])
    Event.objects.filter(pk=tt.event_id).update(held=1)
    with pytest.raises(CommandError):
        run()
    run("--repair")
    assert "Inventory OK" in run()


def test_a_ticket_in_the_wrong_state_for_its_booking_is_reported_and_not_repairable(sales):
    event, tt = sales
    Ticket.objects.filter(booking__status=Booking.Status.CONFIRMED).update(status=Ticket.Status.RELEASED)
    TicketType.objects.filter(pk=tt.pk).update(sold=0)
    Event.objects.filter(pk=event.pk).update(sold=0)
    out = StringIO()
    with pytest.raises(CommandError, match="cannot fix"):
        call_command("check_inventory", "--repair", stdout=out)
    assert "status is confirmed, rows say released" in out.getvalue()
