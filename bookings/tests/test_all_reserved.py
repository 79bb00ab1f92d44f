"""Sold out vs all reserved on the site and in the API, and seats that come back show at once."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from bookings.models import Booking
from bookings.services import booking_cancel, holds_expire
from bookings.tests.factories import make_booking
from events.availability import availability_cache_key
from events.tests.factories import EventFactory, TicketTypeFactory
from events.tests.pages import page

pytestmark = pytest.mark.django_db

HOLD = timedelta(minutes=15)
ALL_RESERVED = "All reserved, check back soon"


def fragment(client, event):
    return page(client.get(reverse("events:availability", kwargs={"pk": event.pk})))


def test_a_type_held_by_others_reads_all_reserved_and_one_sold_reads_sold_out(client):
    event = EventFactory()
    held = TicketTypeFactory(event=event, name="Held", capacity=2)
    sold = TicketTypeFactory(event=event, name="Sold", capacity=1)
    make_booking(items=[(held, 1)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(held, 1)])
    make_booking(items=[(sold, 1)], status=Booking.Status.CONFIRMED)

    for html in (page(client.get(event.get_absolute_url())), fragment(client, event)):
        assert html.count(ALL_RESERVED) == 1 and html.count("Sold out") == 1

    cards = page(client.get(reverse("events:list")))
    assert ALL_RESERVED in cards  # the event: nothing left, some of it held


def test_an_event_whose_tickets_are_all_sold_reads_sold_out_on_its_card(client):
    tt = TicketTypeFactory(capacity=1)
    make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    cards = page(client.get(reverse("events:list")))
    assert "Sold out" in cards and ALL_RESERVED not in cards


def test_the_reservation_refused_for_holds_says_all_reserved(client):
    tt = TicketTypeFactory(name="General", capacity=1)
    make_booking(items=[(tt, 1)])

    response = client.post(reverse("bookings:reserve", kwargs={"event_pk": tt.event.pk}),
                           {f"qty_{tt.pk}": "1", "email": "late@example.com"})
    assert response.status_code == 302  # Post/Redirect/Get: the event page says why
    html = page(client.get(response["Location"]))

    assert "All &#x27;General&#x27; tickets are reserved; check back soon." in html
    assert "is sold out" not in html


def test_a_cancelled_hold_shows_on_the_cached_fragment_at_once(client, django_capture_on_commit_callbacks):
    tt = TicketTypeFactory(capacity=1)
    booking = make_booking(items=[(tt, 1)])
    assert ALL_RESERVED in fragment(client, tt.event)  # now cached for AVAILABILITY_CACHE_SECONDS

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking=booking)

    assert "Only 1 left" in fragment(client, tt.event)


def test_holds_the_sweeper_expires_show_on_the_cached_fragment_at_once(client, time_machine,
                                                                          django_capture_on_commit_callbacks):
    tt = TicketTypeFactory(capacity=2)
    make_booking(items=[(tt, 2)])
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    make_booking(items=[(tt, 2)])  # reclaims the lapsed hold for itself
    assert ALL_RESERVED in fragment(client, tt.event)  # cached

    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert holds_expire() == 1

    assert "Only 2 left" in fragment(client, tt.event)


def test_a_lapsed_hold_shows_as_available_before_the_sweeper_runs(client, time_machine):
    tt = TicketTypeFactory(capacity=3)
    make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    make_booking(items=[(tt, 2)])
    assert ALL_RESERVED in page(client.get(tt.event.get_absolute_url()))

    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))  # no sweep

    assert "Only 2 left" in page(client.get(tt.event.get_absolute_url()))
    assert "Only 2 left" in fragment(client, tt.event)
    tt.refresh_from_db()
    assert tt.held == 2  # still held until the sweeper or a reservation releases it

    response = client.post(reverse("bookings:reserve", kwargs={"event_pk": tt.event.pk}),
                           {f"qty_{tt.pk}": "2", "email": "next@example.com"})
    assert response.status_code == 302  # the reservation reclaims the lapsed hold


def test_lapsed_holds_are_looked_for_only_when_a_type_looks_all_reserved(client, django_assert_num_queries):
    tt = TicketTypeFactory(capacity=3)
    make_booking(items=[(tt, 1)])
    with django_assert_num_queries(2):  # the event and its types, as before
        fragment(client, tt.event)
    make_booking(items=[(tt, 2)])
    cache.delete(availability_cache_key(tt.event.pk))  # what AVAILABILITY_CACHE_SECONDS does
    with django_assert_num_queries(3):  # and the lapsed holds
        fragment(client, tt.event)
