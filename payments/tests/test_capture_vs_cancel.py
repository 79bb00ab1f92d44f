"""A capture in flight while the organizer cancels the event (issue 15, item 2).

The capture task reads the payment, its booking and the event, then calls the
gateway (seconds, for the slow test card), then confirms. Whatever it read
before the gateway call is stale by then: the confirmation must decide on rows
read after its locks were granted, so a cancellation committed meanwhile
refuses it, and the money taken is given back.
"""

import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.selectors import inventory_mismatches
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import TicketTypeFactory
from payments.mock_gateway import MockGateway
from payments.models import MockCharge, Payment, Refund
from payments.services import CapturePending, event_cancel_and_refund, payment_authorize, payment_capture
from payments.tests.conftest import card

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_CARD = "4000000000000119"


@pytest.fixture(params=["uncapped", "capped"])
def tt(request):
    """A ticket type of an event without a venue cap (the event row is not locked by a
    confirmation), and of one with a cap (it is)."""
    cap = None if request.param == "uncapped" else 100
    return TicketTypeFactory(capacity=10, price=Decimal("25.00"), event__capacity=cap)


def authorized(tt, number="4111111111111111"):
    booking = make_booking(items=[(tt, 2)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card(number))
    return booking, payment


def assert_given_back_and_not_confirmed(tt, booking, payment):
    booking.refresh_from_db()
    payment.refresh_from_db()
    charge = MockCharge.objects.get(reference=payment.gateway_reference)
    assert booking.status == Booking.Status.CANCELLED
    assert set(booking.tickets.values_list("status", flat=True)) == {Ticket.Status.RELEASED}
    assert not Ticket.objects.filter(status=Ticket.Status.ISSUED).exists()
    # The money taken is given back: a voided authorization, or a capture refunded in full.
    if payment.status == Payment.Status.VOIDED:
        assert charge.status == MockCharge.Status.VOIDED
    else:
        assert payment.status == Payment.Status.REFUNDED
        assert charge.refunded_amount == charge.captured_amount == Decimal("50.00")
        assert Refund.objects.get(payment=payment).status == Refund.Status.SUCCEEDED
    tt.refresh_from_db()
    tt.event.refresh_from_db()
    assert (tt.sold, tt.held) == (0, 0)
    assert (tt.event.sold, tt.event.held) == (0, 0)
    assert tt.event.status == Event.Status.CANCELLED
    assert_inventory_consistent()
    assert_bookings_match_tickets()
    assert list(inventory_mismatches()) == []  # what check_inventory reports
    assert mail.outbox == []  # no tickets e-mailed for a cancelled event


def cancelling_during_capture(tt):
    """The gateway's capture, during which the organizer cancels the event (and it commits)."""
    real_capture = MockGateway.capture

    def capture(self, **kwargs):
        result = real_capture(self, **kwargs)
        if result.succeeded:
            event_cancel_and_refund(event=Event.objects.get(pk=tt.event_id))
        return result

    return mock.patch.object(MockGateway, "capture", capture)


def test_an_event_cancelled_during_the_capture_refunds_it_and_never_confirms(tt):
    booking, payment = authorized(tt)

    with cancelling_during_capture(tt):
        payment_capture(payment_id=payment.pk)

    assert_given_back_and_not_confirmed(tt, booking, payment)


def test_an_event_cancelled_while_the_slow_card_captures_refunds_it_and_never_confirms(tt, settings, time_machine):
    settings.PAYMENT_CAPTURE_DELAY_SECONDS = 5
    time_machine.move_to(timezone.now(), tick=False)
    booking, payment = authorized(tt, SLOW_CARD)
    with pytest.raises(CapturePending):
        payment_capture(payment_id=payment.pk)  # the processor works on it: the task asks again later

    time_machine.shift(timedelta(seconds=5))
    with cancelling_during_capture(tt):
        payment_capture(payment_id=payment.pk)  # completes, while the organizer cancels

    assert_given_back_and_not_confirmed(tt, booking, payment)


def test_an_event_cancelled_between_two_polls_of_the_slow_card_voids_it(tt, settings, time_machine):
    settings.PAYMENT_CAPTURE_DELAY_SECONDS = 5
    time_machine.move_to(timezone.now(), tick=False)
    booking, payment = authorized(tt, SLOW_CARD)
    with pytest.raises(CapturePending):
        payment_capture(payment_id=payment.pk)

    event_cancel_and_refund(event=tt.event)
    time_machine.shift(timedelta(seconds=5))
    payment_capture(payment_id=payment.pk)

    assert_given_back_and_not_confirmed(tt, booking, payment)


@pytest.mark.slow
def test_a_cancellation_from_another_connection_during_the_capture_refunds_it(tt):
    """The same race with two real connections: the capture task waits in the gateway while an
    organizer's request cancels the event and commits."""
    booking, payment = authorized(tt)
    in_gateway, cancelled = threading.Event(), threading.Event()
    real_capture = MockGateway.capture
    errors = []

    def capture(self, **kwargs):
        result = real_capture(self, **kwargs)
        in_gateway.set()
        assert cancelled.wait(30), "the organizer's cancellation did not finish"
        return result

    def organizer():
        try:
            assert in_gateway.wait(30), "the capture never reached the gateway"
            event_cancel_and_refund(event=Event.objects.get(pk=tt.event_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            cancelled.set()
            connection.close()

    thread = threading.Thread(target=organizer, daemon=True)
    thread.start()
    with mock.patch.object(MockGateway, "capture", capture):
        payment_capture(payment_id=payment.pk)
    thread.join(30)

    assert not thread.is_alive() and errors == []
    assert_given_back_and_not_confirmed(tt, booking, payment)
