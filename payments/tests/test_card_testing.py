"""Card testing (issue 15, item 7): declined authorizations are limited per booking and per client address.

After `PAYMENT_DECLINES_PER_BOOKING` declines a booking's hold is released and
every later attempt is refused (`too_many_declines`); a client address with
`PAYMENT_DECLINES_PER_IP_PER_HOUR` declines in the current hour is refused
before the gateway is called (`payment_attempts_exceeded`, with Retry-After).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from core.errors import Busy, PaymentAttemptsExceeded, PaymentDeclined, PaymentUnavailable, TooManyDeclines
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.gateway import GatewayUnavailable
from payments.mock_gateway import MockGateway
from payments.models import MockCharge, Payment
from payments.services import declines, payment_authorize
from payments.tests.conftest import card

DECLINED = "4000000000000002"
INSUFFICIENT = "4000000000009995"
IP = "203.0.113.7"


@pytest.fixture
def tt(db):
    return new_ticket_type()


def new_ticket_type():
    """On sale from now (as moved by time_machine, if it was)."""
    return TicketTypeFactory(event=EventFactory(capacity=None), capacity=100, price=Decimal("25.00"))


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.PAYMENT_DECLINES_PER_BOOKING = 5
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 20


def decline(booking, *, ip=IP, number=DECLINED):
    with pytest.raises(PaymentDeclined):
        payment_authorize(booking=booking, card=card(number), client_ip=ip)


# --- Per booking ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_five_declines_release_the_hold_and_a_sixth_attempt_is_refused(tt):
    booking = make_booking(items=[(tt, 2)])
    for number in [DECLINED, INSUFFICIENT, DECLINED, INSUFFICIENT]:
        decline(booking, number=number)
        booking.refresh_from_db()
        assert booking.status == Booking.Status.RESERVED  # another card may still be tried

    with pytest.raises(TooManyDeclines) as fifth:
        payment_authorize(booking=booking, card=card(DECLINED), client_ip=IP)

    assert fifth.value.code == "too_many_declines" and fifth.value.status == 409
    assert "released" in fifth.value.detail
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert set(booking.tickets.values_list("status", flat=True)) == {Ticket.Status.RELEASED}
    tt.refresh_from_db()
    assert (tt.held, tt.sold) == (0, 0)

    charges = MockCharge.objects.count()
    with pytest.raises(TooManyDeclines):
        payment_authorize(booking=booking, card=card(), client_ip=IP)  # even a good card
    assert Payment.objects.filter(booking=booking).count() == 5
    assert MockCharge.objects.count() == charges  # the gateway was not asked
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


@pytest.mark.django_db
def test_the_booking_limit_is_a_setting(tt, settings):
    settings.PAYMENT_DECLINES_PER_BOOKING = 2
    booking = make_booking(items=[(tt, 1)])
    decline(booking)

    with pytest.raises(TooManyDeclines):
        payment_authorize(booking=booking, card=card(DECLINED), client_ip=IP)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


@pytest.mark.django_db
def test_the_limit_holds_for_internal_callers_without_an_address(tt):
    booking = make_booking(items=[(tt, 1)])
    for _ in range(4):
        with pytest.raises(PaymentDeclined):
            payment_authorize(booking=booking, card=card(DECLINED))

    with pytest.raises(TooManyDeclines):
        payment_authorize(booking=booking, card=card(DECLINED))


@pytest.mark.django_db
def test_an_unreachable_gateway_is_no_decline(tt):
    booking = make_booking(items=[(tt, 1)])
    with mock.patch.object(MockGateway, "authorize", side_effect=GatewayUnavailable("down")):
        for _ in range(6):
            with pytest.raises(PaymentUnavailable):
                payment_authorize(booking=booking, card=card(), client_ip=IP)

    decline(booking)  # 6 failed payments, one decline: not refused
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED


@pytest.mark.django_db
def test_a_release_that_found_the_rows_busy_is_done_by_the_next_attempt(tt):
    booking = make_booking(items=[(tt, 1)])
    for _ in range(4):
        decline(booking)
    with mock.patch.object(declines, "booking_cancel", side_effect=Busy()), pytest.raises(TooManyDeclines):
        payment_authorize(booking=booking, card=card(DECLINED), client_ip=IP)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED  # not released yet, but no more payments

    with pytest.raises(TooManyDeclines):
        payment_authorize(booking=booking, card=card(), client_ip=IP)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert not Payment.objects.filter(booking=booking, status=Payment.Status.AUTHORIZED).exists()


# --- Per client address and hour --------------------------------------------------------------


@pytest.mark.django_db
def test_a_different_booking_from_the_same_address_is_refused_after_the_hourly_limit(settings, time_machine):
    time_machine.move_to("2030-01-01 12:15Z", tick=False)
    tt = new_ticket_type()
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 3
    first, second, third = (make_booking(items=[(tt, 1)]) for _ in range(3))
    for booking in (first, first, second):
        decline(booking)
    charges = MockCharge.objects.count()

    with pytest.raises(PaymentAttemptsExceeded) as refused:
        payment_authorize(booking=third, card=card(), client_ip=IP)  # even a good card

    assert refused.value.code == "payment_attempts_exceeded" and refused.value.status == 429
    assert refused.value.retry_after == 45 * 60  # the rest of the hour
    assert MockCharge.objects.count() == charges  # refused before the gateway
    third.refresh_from_db()
    assert third.status == Booking.Status.RESERVED  # the hold is kept: it may be paid from elsewhere
    assert not Payment.objects.filter(booking=third).exists()

    # Another address is not limited, and the next hour starts afresh.
    assert payment_authorize(booking=third, card=card(), client_ip="198.51.100.1").status == "authorized"
    time_machine.move_to("2030-01-01 13:00Z", tick=False)
    fourth = make_booking(items=[(tt, 1)])
    decline(fourth)


@pytest.mark.django_db
def test_successful_payments_do_not_use_up_the_address_budget(tt, settings):
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 1
    for _ in range(3):
        booking = make_booking(items=[(tt, 1)])
        assert payment_authorize(booking=booking, card=card(), client_ip=IP).status == Payment.Status.AUTHORIZED
    down = mock.patch.object(MockGateway, "authorize", side_effect=GatewayUnavailable("down"))
    with down, pytest.raises(PaymentUnavailable):
        payment_authorize(booking=make_booking(items=[(tt, 1)]), card=card(), client_ip=IP)

    decline(make_booking(items=[(tt, 1)]))  # the first decline of the hour
    with pytest.raises(PaymentAttemptsExceeded):
        payment_authorize(booking=make_booking(items=[(tt, 1)]), card=card(), client_ip=IP)


@pytest.mark.django_db
def test_zero_turns_the_address_limit_off(tt, settings):
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 0
    for _ in range(3):
        decline(make_booking(items=[(tt, 1)]))


@pytest.mark.django_db(transaction=True)
def test_concurrent_attempts_from_one_address_get_no_more_declines_than_the_limit(settings):
    """The address's budget is taken atomically before the gateway call, so parallel requests cannot all
    pass a check made before any of them was counted."""
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 2
    tt = TicketTypeFactory(event=EventFactory(capacity=None), capacity=100)
    bookings = [make_booking(items=[(tt, 1)]) for _ in range(6)]
    refused = threading.Semaphore(0)
    let_gateway_answer = threading.Event()
    outcomes: list[str] = []
    real_authorize = MockGateway.authorize

    def slow_authorize(self, **kwargs):
        let_gateway_answer.wait(timeout=10)  # every request reaches its check before any decline is recorded
        return real_authorize(self, **kwargs)

    def attempt(booking):
        try:
            payment_authorize(booking=booking, card=card(DECLINED), client_ip=IP)
        except PaymentDeclined:
            outcomes.append("declined")
        except PaymentAttemptsExceeded:
            outcomes.append("refused")
            refused.release()
        finally:
            connection.close()

    with mock.patch.object(MockGateway, "authorize", slow_authorize):
        threads = [threading.Thread(target=attempt, args=(b,)) for b in bookings]
        for thread in threads:
            thread.start()
        for _ in range(4):
            refused.acquire(timeout=10)
        let_gateway_answer.set()
        for thread in threads:
            thread.join(timeout=30)

    assert sorted(outcomes) == ["declined"] * 2 + ["refused"] * 4
