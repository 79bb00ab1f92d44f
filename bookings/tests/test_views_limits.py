"""The site door of the reservation limits (issue 15, items 5 and 6): bounded quantities in the form,
the hoarding limits as form errors, the client address handed to the service, and the reserve and
pay POSTs throttled like the API's (same scopes, rates and buckets), with the site's 429 page."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from core.tokens import api_token_create
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from events.tests.pages import page, title

pytestmark = pytest.mark.django_db

GENEROUS = {"anon": "1000/min", "user": "1000/min", "ip": "1000/min", "bookings": "1000/min", "pay": "1000/min"}
CARD = {"card_number": "4000 0000 0000 0002", "expiry": "12/99", "cvc": "123",
        "cardholder_name": "Ada Lovelace"}  # declined: the booking stays payable


@pytest.fixture(autouse=True)
def default_limits(settings):
    settings.BOOKING_MAX_TICKETS, settings.BOOKING_MAX_ITEMS = 100, 20
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 3
    settings.BOOKING_MAX_HOLDS_PER_IP = 20
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 20


@pytest.fixture
def rates(settings):
    """`rates(bookings="2/min", ...)`: these API rates, generous ones for every other scope."""

    def apply(**overrides):
        merged = {**GENEROUS, **overrides}
        settings.API_THROTTLE_RATES = merged
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        return merged

    return apply


def reserve(client, event, quantities, REMOTE_ADDR="127.0.0.1", **extra):  # noqa: N803 - the META key
    data = {f"qty_{tt.pk}": str(n) for tt, n in quantities.items()}
    data.update(extra)
    return client.post(reverse("bookings:reserve", kwargs={"event_pk": event.pk}), data, REMOTE_ADDR=REMOTE_ADDR)


def refused(client, event, quantities, **extra):
    """A refused reservation: redirected to the event page (Post/Redirect/Get), which says why."""
    response = reserve(client, event, quantities, **extra)
    assert response.status_code == 302
    assert response["Location"] == f"{event.get_absolute_url()}#tickets-heading"
    return client.get(response["Location"])


# --- Item 5 ------------------------------------------------------------------------------------------


def test_a_quantity_of_a_billion_is_a_field_error_before_anything_is_built(client):
    tt = TicketTypeFactory(name="VIP", max_per_booking=4)
    with mock.patch.object(Ticket, "__init__", side_effect=AssertionError("a Ticket was built")):
        response = refused(client, tt.event, {tt: 10**9}, email="a@example.com")
    assert "At most 4 &#x27;VIP&#x27; tickets per booking." in page(response)
    tt.refresh_from_db()
    assert tt.held == 0 and not Booking.objects.exists()


def test_the_total_over_the_ticket_types_is_bounded(client, settings):
    settings.BOOKING_MAX_TICKETS = 5
    event = EventFactory()
    a, b = TicketTypeFactory(event=event, max_per_booking=4), TicketTypeFactory(event=event, max_per_booking=4)
    with mock.patch.object(Ticket, "__init__", side_effect=AssertionError("a Ticket was built")):
        html = page(refused(client, event, {a: 3, b: 3}, email="a@example.com"))
    assert "At most 5 tickets in one booking." in html
    assert not Booking.objects.exists()


# --- Item 6 ------------------------------------------------------------------------------------------


def test_a_guest_past_the_hold_limit_gets_a_form_error(client):
    tt = TicketTypeFactory(capacity=100)
    for _ in range(3):
        assert reserve(client, tt.event, {tt: 1}, email="bot@example.com").status_code == 302

    html = page(refused(client, tt.event, {tt: 1}, email="BOT@example.com"))

    assert "You already have 3 reservations for this event awaiting payment" in html
    assert Booking.objects.count() == 3


def test_the_client_address_goes_to_the_service_and_counts(client, settings):
    settings.BOOKING_MAX_HOLDS_PER_IP = 1
    tt = TicketTypeFactory(capacity=100)
    assert reserve(client, tt.event, {tt: 1}, email="a@example.com", REMOTE_ADDR="203.0.113.5").status_code == 302
    assert Booking.objects.get().client_ip == "203.0.113.5"

    html = page(refused(client, tt.event, {tt: 1}, email="b@example.com", REMOTE_ADDR="203.0.113.5"))

    assert "Too many reservations for this event are awaiting payment from your network" in html
    assert Booking.objects.count() == 1


# --- Throttles ---------------------------------------------------------------------------------------


def test_the_third_reserve_post_in_a_minute_gets_the_sites_429_page(client, rates, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    rates(bookings="2/min")
    tt = TicketTypeFactory(capacity=100)
    client.force_login(UserFactory())
    assert [reserve(client, tt.event, {tt: 1}).status_code for _ in range(2)] == [302, 302]

    response = reserve(client, tt.event, {tt: 1})

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    html = response.content.decode()
    assert title(html) == "Too many requests · Ticketing" and "/static/css/site.css" in html
    assert "Please wait 60 seconds and send it again." in html
    assert Booking.objects.count() == 2
    time_machine.move_to("2030-01-01 12:01:01Z", tick=False)
    assert reserve(client, tt.event, {tt: 1}).status_code == 302


def test_site_and_api_reservations_share_one_bucket(client, rates):
    rates(bookings="2/min")
    tt = TicketTypeFactory(capacity=100)
    user = UserFactory()
    client.force_login(user)
    assert reserve(client, tt.event, {tt: 1}).status_code == 302
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user)}")
    body = {"event": str(tt.event_id), "items": [{"ticket_type": str(tt.pk), "quantity": 1}]}
    assert api.post("/api/v1/bookings/", body, format="json").status_code == 201

    assert reserve(client, tt.event, {tt: 1}).status_code == 429
    assert api.post("/api/v1/bookings/", body, format="json").status_code == 429


def test_guests_are_throttled_by_address(client, rates):
    rates(bookings="1/min")
    tt = TicketTypeFactory(capacity=100)
    assert reserve(client, tt.event, {tt: 1}, email="a@example.com", REMOTE_ADDR="203.0.113.1").status_code == 302
    assert reserve(client, tt.event, {tt: 1}, email="b@example.com", REMOTE_ADDR="203.0.113.1").status_code == 429
    assert reserve(client, tt.event, {tt: 1}, email="c@example.com", REMOTE_ADDR="203.0.113.2").status_code == 302


def test_the_pay_post_has_the_apis_pay_rate(client, rates):
    rates(pay="1/min")
    booking = make_booking(items=[(TicketTypeFactory(price=Decimal("10.00")), 1)])
    url = reverse("bookings:pay", kwargs={"pk": booking.pk}) + f"?token={booking.access_token}"

    assert client.post(url, CARD).status_code == 302  # declined, shown on the booking page
    payments = booking.payments.count()
    response = client.post(url, CARD)

    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert "Too many requests" in response.content.decode()
    assert booking.payments.count() == payments


def test_no_throttle_when_the_api_has_none(client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": [],
                               "DEFAULT_THROTTLE_RATES": {"bookings": "1/min"}}
    tt = TicketTypeFactory(capacity=100)
    codes = [reserve(client, tt.event, {tt: 1}, email=f"g{i}@example.com").status_code for i in range(3)]
    assert codes == [302, 302, 302]
