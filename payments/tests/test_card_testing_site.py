"""Card testing through the site door: the pay page shows the decline limits clearly.

Per booking: after the last allowed decline the buyer is sent back to the
booking page with a message that the reservation was released; per client
address and hour: the card form again with the message, 429 and Retry-After.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.models import MockCharge

pytestmark = pytest.mark.django_db
CARD = {"card_number": "4111 1111 1111 1111", "expiry": "12/2099", "cvc": "123",
        "cardholder_name": "Ada Lovelace"}
DECLINED = {**CARD, "card_number": "4000000000000002"}


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.PAYMENT_DECLINES_PER_BOOKING = 5
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 20
    settings.TRUSTED_PROXY_COUNT = 0


def guest_booking():
    tt = TicketTypeFactory(event=EventFactory(capacity=None), name="General", price=Decimal("25.00"))
    return make_booking(items=[(tt, 2)], email="guest@example.com")


def pay_url(booking):
    return f"{reverse('bookings:pay', kwargs={'pk': booking.pk})}?token={booking.access_token}"


def detail_url(booking):
    return f"{reverse('bookings:detail', kwargs={'pk': booking.pk})}?token={booking.access_token}"


def test_five_declines_release_the_hold_and_a_sixth_attempt_is_refused(client):
    booking = guest_booking()
    for _ in range(4):
        response = client.post(pay_url(booking), DECLINED, follow=True)
        assert response.redirect_chain == [(detail_url(booking), 302)]
        assert "Your card was declined." in response.content.decode()

    fifth = client.post(pay_url(booking), DECLINED, follow=True)

    assert fifth.redirect_chain == [(detail_url(booking), 302)]
    html = fifth.content.decode()
    assert "reservation has been released" in html
    assert 'name="card_number"' not in html  # no card form any more
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert set(booking.tickets.values_list("status", flat=True)) == {Ticket.Status.RELEASED}

    sixth = client.post(pay_url(booking), CARD, follow=True)
    assert "released after too many declined payments" in sixth.content.decode()
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert booking.payments.count() == 5


def test_a_different_booking_from_the_same_address_is_refused_after_the_hourly_limit(client, settings,
                                                                                       time_machine):
    time_machine.move_to("2030-01-01 12:45Z", tick=False)
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 2
    first, second = guest_booking(), guest_booking()
    for i in range(2):  # a forged X-Forwarded-For changes nothing with no trusted proxy
        client.post(pay_url(first), DECLINED, REMOTE_ADDR="192.0.2.5", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    charges = MockCharge.objects.count()

    refused = client.post(pay_url(second), CARD, REMOTE_ADDR="192.0.2.5", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert refused.status_code == 429
    assert refused["Retry-After"] == str(15 * 60)
    html = refused.content.decode()
    assert "Too many declined payments" in html and 'role="alert"' in html
    assert 'name="card_number"' in html  # the form stays: the hold is kept
    assert MockCharge.objects.count() == charges
    second.refresh_from_db()
    assert second.status == Booking.Status.RESERVED

    paid = client.post(pay_url(second), CARD, REMOTE_ADDR="192.0.2.6")  # another address
    assert paid.status_code == 302
    second.refresh_from_db()
    assert second.status != Booking.Status.RESERVED
