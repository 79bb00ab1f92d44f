"""The API door of the reservation limits (issue 15, items 5 and 6): bounded input declared in the
schema, the hoarding limits as problem details, the organizer's limits on the event, and the
client address handed to the service."""

from __future__ import annotations

from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from bookings.models import Booking, Ticket
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture(autouse=True)
def default_limits(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 3
    settings.BOOKING_MAX_HOLDS_PER_IP = 20
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 20


@pytest.fixture
def tt():
    return TicketTypeFactory(event=EventFactory(capacity=None), capacity=100, price=Decimal("10.00"),
                             max_per_booking=10)


def reserve(client, tt, *items, **extra):
    items = items or ({"ticket_type": str(tt.pk), "quantity": 1},)
    return client.post(f"{API}/bookings/", {"event": str(tt.event_id), "items": list(items)}, **extra)


class NoTicketsBuilt:
    def __enter__(self):
        self._patch = mock.patch.object(Ticket, "__init__", side_effect=AssertionError("a Ticket was built"))
        self._patch.start()

    def __exit__(self, *exc):
        self._patch.stop()


def test_a_quantity_of_a_billion_is_a_400_before_anything_is_built(client_for, tt, assert_problem):
    with NoTicketsBuilt():
        response = reserve(client_for(UserFactory()), tt, {"ticket_type": str(tt.pk), "quantity": 10**9})
    body = assert_problem(response, 400, "invalid")
    assert "items.0.quantity" in body["errors"]
    assert not Booking.objects.exists()


def test_many_items_adding_up_past_the_ceiling_are_refused_before_anything_is_built(client_for, tt, assert_problem):
    """Each item within the schema's bounds, twenty of them: 2,000 tickets of one type, once built
    one by one before the per-booking limit was checked."""
    item = {"ticket_type": str(tt.pk), "quantity": settings.BOOKING_MAX_TICKETS}
    with NoTicketsBuilt():
        response = reserve(client_for(UserFactory()), tt, *[item] * settings.BOOKING_MAX_ITEMS)
    body = assert_problem(response, 400, "limit_exceeded")
    assert body["detail"] == f"At most {settings.BOOKING_MAX_TICKETS} tickets in one booking."
    tt.refresh_from_db()
    assert tt.held == 0 and not Booking.objects.exists()


def test_the_schema_states_the_bounds_of_a_reservation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    items = components["BookingInputRequest"]["properties"]["items"]
    quantity = components["ItemRequest"]["properties"]["quantity"]
    assert (items["minItems"], items["maxItems"]) == (1, settings.BOOKING_MAX_ITEMS)
    assert (quantity["minimum"], quantity["maximum"]) == (1, settings.BOOKING_MAX_TICKETS)
    limits = components["EventInputRequest"]["properties"]["max_holds_per_buyer"]
    assert limits["minimum"] == 0 and limits["nullable"] is True


def test_the_fourth_hold_of_a_buyer_is_a_409_with_a_stable_code(client_for, tt, assert_problem):
    client = client_for(UserFactory())
    assert [reserve(client, tt).status_code for _ in range(3)] == [201] * 3

    body = assert_problem(reserve(client, tt), 409, "hold_limit_reached")

    assert body["limit"] == 3 and "awaiting payment" in body["detail"]
    assert Booking.objects.count() == 3


def test_tickets_past_the_buyers_limit_are_a_409(client_for, tt, assert_problem):
    tt.event.max_tickets_per_buyer = 4
    tt.event.save()
    client = client_for(UserFactory())
    assert reserve(client, tt, {"ticket_type": str(tt.pk), "quantity": 3}).status_code == 201

    body = assert_problem(reserve(client, tt, {"ticket_type": str(tt.pk), "quantity": 2}), 409,
                          "ticket_limit_reached")
    assert (body["limit"], body["remaining"]) == (4, 1)


def test_holds_from_one_address_past_its_limit_are_a_429_with_retry_after(client_for, tt, assert_problem, settings):
    settings.BOOKING_MAX_HOLDS_PER_IP = 2
    for _ in range(2):
        assert reserve(client_for(UserFactory()), tt, REMOTE_ADDR="203.0.113.9").status_code == 201

    response = reserve(client_for(UserFactory()), tt, REMOTE_ADDR="203.0.113.9")

    assert_problem(response, 429, "ip_hold_limit_reached")
    assert 14 * 60 <= int(response["Retry-After"]) <= 15 * 60 + 1
    assert reserve(client_for(UserFactory()), tt, REMOTE_ADDR="198.51.100.2").status_code == 201
    assert set(Booking.objects.values_list("client_ip", flat=True)) == {"203.0.113.9", "198.51.100.2"}


def test_an_organizer_sets_and_reads_the_limits_of_an_event(client_for, assert_problem):
    member = UserFactory()
    event = EventFactory(organizer=OrganizerFactory(members=[member]))
    client = client_for(member)

    response = client.patch(f"{API}/events/{event.pk}/", {"max_holds_per_buyer": 1, "max_tickets_per_buyer": 0})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["max_holds_per_buyer"], body["max_holds_per_ip"], body["max_tickets_per_buyer"]) == (1, None, 0)
    event.refresh_from_db()
    assert (event.max_holds_per_buyer, event.max_holds_per_ip, event.max_tickets_per_buyer) == (1, None, 0)
    assert_problem(client.patch(f"{API}/events/{event.pk}/", {"max_holds_per_ip": -1}), 400, "invalid")
    assert client.patch(f"{API}/events/{event.pk}/", {"max_holds_per_buyer": None}).json()["max_holds_per_buyer"] \
        is None
