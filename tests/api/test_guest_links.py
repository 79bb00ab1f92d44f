"""A booking's access token through the API (issue 15 item 11).

The token is the guest's key to a booking: it is shown only to the booking's
owner (the buyer account that reserved it, or whoever opened it with the token),
never to the event's organizer staff. The guest link (`?token=`) stops working
`GUEST_LINK_VALID_DAYS_AFTER_EVENT` days after the event ended: 410
`guest_link_expired`; the buyer's account keeps its access.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def member():
    return UserFactory(username="member")


@pytest.fixture
def tt(member):
    event = EventFactory(organizer=OrganizerFactory(slug="acme", members=[member]))
    return TicketTypeFactory(event=event, capacity=20)


@pytest.fixture
def buyer():
    return UserFactory(username="buyer")


def detail(booking, token=None) -> str:
    return f"{API}/bookings/{booking.pk}/" + (f"?token={token}" if token else "")


# --- Who sees the access token ------------------------------------------------------------------


def test_the_buyer_and_the_guest_see_the_access_token(client_for, buyer, tt):
    own = make_booking(items=[(tt, 1)], buyer=buyer)
    guest = make_booking(items=[(tt, 1)], email="guest@example.com")

    assert client_for(buyer).get(detail(own)).json()["access_token"] == own.access_token
    assert client_for().get(detail(guest, guest.access_token)).json()["access_token"] == guest.access_token


def test_a_new_booking_shows_its_token_to_the_buyer_who_made_it(client_for, buyer, tt):
    body = {"event": str(tt.event_id), "items": [{"ticket_type": str(tt.pk), "quantity": 1}]}

    response = client_for(buyer).post(f"{API}/bookings/", body)

    assert response.json()["access_token"] == Booking.objects.get().access_token


def test_the_organizer_never_sees_a_buyers_access_token(client_for, member, buyer, tt, make_paid_booking):
    guest = make_booking(items=[(tt, 1)], email="guest@example.com")
    hold = make_booking(items=[(tt, 1)], buyer=buyer)
    paid = make_paid_booking(tt, buyer=buyer)
    client = client_for(member)

    listed = client.get(f"{API}/bookings/", {"event": str(tt.event_id)}).json()["results"]
    one = client.get(detail(guest)).json()
    cancelled = client.post(f"{API}/bookings/{hold.pk}/cancel/")
    refunded = client.post(f"{API}/bookings/{paid.pk}/refund/", {})

    assert {b["id"] for b in listed} == {str(guest.pk), str(hold.pk), str(paid.pk)}
    assert [b["access_token"] for b in listed] == [None, None, None]
    assert one["access_token"] is None and one["email"] == "guest@example.com"
    assert cancelled.status_code == 200 and cancelled.json()["access_token"] is None
    assert refunded.status_code == 202
    everything = json.dumps([listed, one, cancelled.json(), refunded.json()])
    for booking in (guest, hold, paid):
        assert booking.access_token not in everything


def test_an_organizer_sees_the_token_of_their_own_booking_only(client_for, member, buyer, tt):
    own = make_booking(items=[(tt, 1)], buyer=member)
    theirs = make_booking(items=[(tt, 1)], buyer=buyer)

    listed = {b["id"]: b["access_token"] for b in client_for(member).get(f"{API}/bookings/").json()["results"]}

    assert listed == {str(own.pk): own.access_token, str(theirs.pk): None}


def test_an_organizer_holding_the_link_sees_the_token_it_already_has(client_for, member, tt):
    guest = make_booking(items=[(tt, 1)], email="guest@example.com")

    body = client_for(member).get(detail(guest, guest.access_token)).json()

    assert body["access_token"] == guest.access_token


# --- The guest link expires after the event ----------------------------------------------------


@pytest.fixture
def past_event_booking(tt, make_paid_booking):
    """A guest's confirmed booking of an event a week from now (the tests then move time past it)."""
    return make_paid_booking(tt, email="guest@example.com")


def after_the_event(booking, days: float):
    return booking.event.ends_at + timedelta(days=days)


def test_the_guest_link_works_until_the_setting_days_after_the_event_ended(
        client_for, past_event_booking, time_machine, settings, assert_problem):
    booking = past_event_booking
    settings.GUEST_LINK_VALID_DAYS_AFTER_EVENT = 30
    guest = client_for()

    time_machine.move_to(after_the_event(booking, 29.9))
    assert guest.get(detail(booking, booking.access_token)).status_code == 200

    time_machine.move_to(after_the_event(booking, 30.1))
    body = assert_problem(guest.get(detail(booking, booking.access_token)), 410, "guest_link_expired")
    assert booking.access_token not in json.dumps(body)
    payment = booking.payments.get()
    assert_problem(guest.get(f"{API}/payments/{payment.pk}/?token={booking.access_token}"), 410,
                   "guest_link_expired")
    assert_problem(guest.post(f"{API}/bookings/{booking.pk}/refund/?token={booking.access_token}", {}), 410,
                   "guest_link_expired")


def test_the_default_validity_is_30_days(past_event_booking, time_machine, client_for, assert_problem):
    booking = past_event_booking

    time_machine.move_to(after_the_event(booking, 31))

    assert_problem(client_for().get(detail(booking, booking.access_token)), 410, "guest_link_expired")


def test_a_wrong_token_after_the_event_is_still_404(past_event_booking, time_machine, client_for, assert_problem):
    booking = past_event_booking

    time_machine.move_to(after_the_event(booking, 31))

    assert_problem(client_for().get(detail(booking, "not-the-token")), 404, "not_found")


def test_the_buyer_account_keeps_access_after_the_link_expired(tt, buyer, make_paid_booking, time_machine,
                                                               client_for):
    booking = make_paid_booking(tt, buyer=buyer)

    time_machine.move_to(after_the_event(booking, 365))

    assert client_for(buyer).get(detail(booking)).status_code == 200
    assert client_for(buyer).get(detail(booking, booking.access_token)).status_code == 200


def test_a_hold_of_an_event_that_ended_long_ago_cannot_be_paid_with_the_link(tt, time_machine, client_for,
                                                                              assert_problem):
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    card = {"card_number": "4111111111111111", "exp_month": 12, "exp_year": 2099, "cvc": "123"}

    time_machine.move_to(after_the_event(booking, 31))

    assert_problem(client_for().post(f"{API}/bookings/{booking.pk}/pay/?token={booking.access_token}", card),
                   410, "guest_link_expired")
    assert not booking.payments.exists()
    assert timezone.now() > booking.event.ends_at
