"""Honest refund states on the booking and ticket pages, and after asking for a refund (test client)."""

from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import TicketTypeFactory
from events.tests.pages import page
from payments.mock_gateway import MockGateway
from payments.models import Refund
from payments.services import payment_authorize
from payments.tests.conftest import card as payment_card

pytestmark = pytest.mark.django_db

REQUESTED = "Your refund has been requested"
PENDING = "Refund pending: your tickets are being refunded."
REFUSED = "The refund did not go through; the organizer has been told."


def card(number):
    return {"card_number": number, "expiry": "12/99", "cvc": "123",
            "cardholder_name": "Ada Lovelace"}


def url(booking, name="bookings:detail", **kwargs):
    return reverse(name, kwargs={"pk": booking.pk, **kwargs}) + f"?token={booking.access_token}"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what a request queued after commit (the capture and refund tasks, eager) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def paid(client, committed, number="4111111111111111"):
    tt = TicketTypeFactory(name="General", price=Decimal("25.00"))
    booking = make_booking(items=[(tt, 2)], email="guest@example.com")
    with committed():
        client.post(url(booking, "bookings:pay"), card(number))
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    return booking


def ask_refund(client, committed, booking) -> str:
    with committed():
        response = client.post(url(booking, "bookings:refund"))
    return page(client.get(response["Location"]))


def test_a_pending_refund_says_so_offers_no_second_refund_and_shows_the_tickets_being_refunded(client, committed):
    booking = paid(client, committed)
    with mock.patch("payments.tasks.refund_process_task.delay"):  # the worker has not got to it yet
        html = ask_refund(client, committed, booking)

    assert html.count(REQUESTED) == 1  # the message after the request, once
    assert "<strong>Refund pending</strong>" in html
    assert PENDING in html
    assert "Refund my tickets" not in html
    assert html.count("Being refunded ·") == 2
    assert "<svg" not in html  # no QR code to use meanwhile

    ticket = booking.tickets.first()
    ticket_html = page(client.get(url(booking, "bookings:ticket", ticket_pk=ticket.pk)))
    assert "<dd>Being refunded</dd>" in ticket_html
    assert "This ticket is being refunded: do not use it." in ticket_html
    assert "<svg" not in ticket_html


def test_asking_again_while_a_refund_is_pending_changes_nothing_and_says_why(client, committed):
    booking = paid(client, committed)
    with mock.patch("payments.tasks.refund_process_task.delay"):
        ask_refund(client, committed, booking)
        html = ask_refund(client, committed, booking)  # a stale page, a second press

    assert REQUESTED not in html
    assert html.count(PENDING) == 2  # the message and the page
    assert Refund.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # real commits: the refund task runs (eagerly) inside the request
def test_a_refund_the_gateway_refuses_says_so_and_is_not_offered_again(client, committed):
    booking = paid(client, committed, number="4000000000006660")

    html = ask_refund(client, committed, booking)

    assert REQUESTED not in html
    assert html.count(REFUSED) == 2  # the message and the page
    assert "<strong>Confirmed</strong>" in html
    assert "Refund my tickets" not in html
    assert html.count("Issued ·") == 2 and html.count("<svg") == 2  # the tickets stay valid
    assert Refund.objects.get().status == Refund.Status.FAILED

    html = ask_refund(client, committed, booking)  # pressed again from a stale page
    assert REQUESTED not in html
    assert Refund.objects.count() == 1


def test_a_refund_that_went_through_says_requested_once_and_shows_refunded(client, committed):
    booking = paid(client, committed)

    html = ask_refund(client, committed, booking)

    assert html.count(REQUESTED) == 1
    assert "<strong>Refunded</strong>" in html
    assert PENDING not in html and REFUSED not in html
    assert page(client.get(url(booking))).count(REQUESTED) == 0  # the message is shown once


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("number, says", [
    ("4111111111111111", "the reservation was cancelled and the money was given back to your card."),
    ("4000000000006660", "but giving the money back did not go through; the organizer has been told."),
])
def test_a_capture_refunded_because_the_event_was_cancelled_says_where_the_money_is(client, number, says):
    tt = TicketTypeFactory(name="General", price=Decimal("25.00"))
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    real_capture = MockGateway.capture

    def capture_then_event_cancelled(self, **kwargs):
        result = real_capture(self, **kwargs)
        Event.objects.filter(pk=tt.event_id).update(status=Event.Status.CANCELLED)
        return result

    with mock.patch.object(MockGateway, "capture", capture_then_event_cancelled):
        payment_authorize(booking=booking, card=payment_card(number))  # captured on commit, then refunded

    html = page(client.get(url(booking)))
    assert "<strong>Cancelled</strong>" in html
    assert says in html
    assert "nothing was charged" not in html
