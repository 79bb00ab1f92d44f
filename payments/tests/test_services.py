from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.services import holds_expire
from bookings.tests.factories import make_booking
from core.errors import (
    HoldExpired,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    PaymentDeclined,
    PaymentUnavailable,
)
from events.models import Event
from events.tests.factories import TicketTypeFactory
from payments.gateway import GatewayUnavailable
from payments.mock_gateway import MockGateway
from payments.models import MockCharge, Payment, Refund
from payments.services import (
    CapturePending,
    event_cancel_and_refund,
    payment_authorize,
    payment_capture,
    payments_reconcile,
    refund_issue,
    refund_process,
    refund_retry,
)
from payments.tests.conftest import card

# Real commits: queued tasks run (eagerly) when the service's transaction commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)
HOLD = timedelta(minutes=15)


@pytest.fixture
def tt():
    return TicketTypeFactory(capacity=10, price=Decimal("25.00"), event__capacity=100)


def counters(obj):
    obj.refresh_from_db()
    return obj.sold, obj.held


def paid_booking(tt, n=2, number="4111111111111111"):
    """A confirmed booking, paid through authorize and the capture queued on commit."""
    booking = make_booking(items=[(tt, n)])
    payment_authorize(booking=booking, card=card(number))
    booking.refresh_from_db()
    return booking


# --- authorize -----------------------------------------------------------------------------


def test_authorize_moves_the_booking_to_processing_and_queues_the_capture(tt):
    booking = make_booking(items=[(tt, 2)])
    with mock.patch("payments.tasks.payment_capture_task.delay") as delay:
        payment = payment_authorize(booking=booking, card=card())

    assert booking.status == Booking.Status.PROCESSING
    assert (payment.status, payment.amount, payment.currency) == (Payment.Status.AUTHORIZED, Decimal("50.00"), "EUR")
    assert (payment.card_brand, payment.card_last4) == ("visa", "1111")
    assert MockCharge.objects.get(reference=payment.gateway_reference).status == "authorized"
    delay.assert_called_once_with(str(payment.pk))


@pytest.mark.parametrize("number, code", [
    ("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds"),
    ("4000000000000069", "expired_card"), ("4000000000000127", "incorrect_cvc"),
])
def test_a_declined_card_keeps_the_hold_so_another_card_can_be_tried(tt, number, code):
    booking = make_booking(items=[(tt, 1)])

    with pytest.raises(PaymentDeclined) as exc:
        payment_authorize(booking=booking, card=card(number))

    assert (exc.value.code, exc.value.status) == (code, 402)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED
    failed = Payment.objects.get()
    assert (failed.status, failed.failure_code) == (Payment.Status.FAILED, code)

    payment_authorize(booking=booking, card=card())
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert counters(tt) == (1, 0)


def test_an_invalid_card_is_refused_before_anything_is_recorded(tt):
    booking = make_booking(items=[(tt, 1)])
    with pytest.raises(InvalidInput) as exc:
        payment_authorize(booking=booking, card=card("4111111111111112", cvc="1"))
    assert set(exc.value.errors) == {"card_number", "cvc"}
    assert not Payment.objects.exists() and not MockCharge.objects.exists()


def test_an_expired_hold_cannot_be_paid(tt, time_machine):
    booking = make_booking(items=[(tt, 1)])
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    with pytest.raises(HoldExpired):
        payment_authorize(booking=booking, card=card())
    assert not MockCharge.objects.exists()


def test_a_hold_that_expires_during_authorization_leaves_nothing_authorized(tt, time_machine):
    booking = make_booking(items=[(tt, 1)])
    real_authorize = MockGateway.authorize

    def slow_authorize(self, **kwargs):
        result = real_authorize(self, **kwargs)
        time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
        holds_expire()
        return result

    with mock.patch.object(MockGateway, "authorize", slow_authorize), pytest.raises(HoldExpired):
        payment_authorize(booking=booking, card=card())

    booking.refresh_from_db()
    assert booking.status == Booking.Status.EXPIRED
    assert Payment.objects.get().status == Payment.Status.VOIDED
    assert MockCharge.objects.get().status == "voided"
    assert counters(tt) == (0, 0)


@pytest.mark.parametrize("status", [Booking.Status.PROCESSING, Booking.Status.CONFIRMED, Booking.Status.CANCELLED])
def test_only_a_reserved_booking_can_be_paid(tt, status):
    booking = make_booking(items=[(tt, 1)], status=status)
    with pytest.raises(InvalidTransition):
        payment_authorize(booking=booking, card=card())
    assert not MockCharge.objects.exists()


def test_an_unreachable_gateway_answers_unavailable_and_keeps_the_hold(tt):
    booking = make_booking(items=[(tt, 1)])
    with mock.patch.object(MockGateway, "authorize", side_effect=GatewayUnavailable), \
            pytest.raises(PaymentUnavailable):
        payment_authorize(booking=booking, card=card())
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED
    assert Payment.objects.get().failure_code == "gateway_unavailable"


# --- capture -------------------------------------------------------------------------------


def test_paying_confirms_the_booking_issues_tickets_and_mails_them_once(tt):
    booking = paid_booking(tt, 2)

    payment = Payment.objects.get()
    assert booking.status == Booking.Status.CONFIRMED
    assert payment.status == Payment.Status.CAPTURED
    assert list(booking.tickets.values_list("status", flat=True)) == ["issued", "issued"]
    assert counters(tt) == (2, 0) and counters(tt.event) == (2, 0)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [booking.email]
    for ticket in booking.tickets.all():
        assert ticket.code in message.body
    assert f"/bookings/{booking.pk}/?token={booking.access_token}" in message.body
    assert sum(1 for part in message.attachments if part.get_content_type() == "image/png") == 2


def test_running_the_capture_twice_captures_once_confirms_once_and_mails_once(tt):
    from bookings.tasks import send_booking_confirmation
    from payments.tasks import payment_capture_task

    booking = make_booking(items=[(tt, 2)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card())

    payment_capture_task(str(payment.pk))
    payment_capture_task(str(payment.pk))
    send_booking_confirmation(str(booking.pk))

    assert MockCharge.objects.get().capture_count == 1
    assert Payment.objects.get().status == Payment.Status.CAPTURED
    assert counters(tt) == (2, 0)
    assert len(mail.outbox) == 1


def test_the_slow_card_confirms_after_its_processing_delay(tt, settings, time_machine):
    settings.PAYMENT_CAPTURE_DELAY_SECONDS = 5
    time_machine.move_to(timezone.now(), tick=False)
    booking = make_booking(items=[(tt, 1)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card("4000000000000119"))

    with pytest.raises(CapturePending) as exc:
        payment_capture(payment_id=payment.pk)
    assert exc.value.retry_after == 5
    booking.refresh_from_db()
    assert booking.status == Booking.Status.PROCESSING

    time_machine.shift(timedelta(seconds=5))
    payment_capture(payment_id=payment.pk)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_the_capture_task_retries_while_the_capture_is_pending(tt, settings):
    from celery.exceptions import Retry

    from payments.tasks import payment_capture_task

    booking = make_booking(items=[(tt, 1)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card("4000000000000119"))
    with mock.patch.object(payment_capture_task, "retry", side_effect=Retry) as retry, pytest.raises(Retry):
        payment_capture_task(str(payment.pk))
    assert retry.call_args.kwargs["countdown"] == settings.PAYMENT_CAPTURE_DELAY_SECONDS


def test_a_capture_racing_hold_expiry_still_confirms(tt, time_machine):
    booking = make_booking(items=[(tt, 1)])
    time_machine.move_to(booking.expires_at - timedelta(seconds=1))
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card())
    time_machine.move_to(booking.expires_at + timedelta(minutes=1))

    assert holds_expire() == 0  # a booking being paid keeps its hold
    payment_capture(payment_id=payment.pk)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert counters(tt) == (1, 0)


def test_an_authorization_for_a_cancelled_event_is_voided_and_the_hold_released(tt):
    booking = make_booking(items=[(tt, 2)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card())
    Event.objects.filter(pk=tt.event_id).update(status=Event.Status.CANCELLED)

    payment_capture(payment_id=payment.pk)

    booking.refresh_from_db()
    assert Payment.objects.get().status == Payment.Status.VOIDED
    assert MockCharge.objects.get().status == "voided"
    assert booking.status == Booking.Status.CANCELLED
    assert counters(tt) == (0, 0)


def test_a_capture_that_can_no_longer_be_confirmed_is_refunded(tt):
    booking = make_booking(items=[(tt, 2)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment = payment_authorize(booking=booking, card=card())
    real_capture = MockGateway.capture

    def capture_then_event_cancelled(self, **kwargs):
        result = real_capture(self, **kwargs)
        Event.objects.filter(pk=tt.event_id).update(status=Event.Status.CANCELLED)
        return result

    with mock.patch.object(MockGateway, "capture", capture_then_event_cancelled):
        payment_capture(payment_id=payment.pk)

    booking.refresh_from_db()
    payment.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert payment.status == Payment.Status.REFUNDED
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert MockCharge.objects.get().refunded_amount == Decimal("50.00")
    assert counters(tt) == (0, 0)
    assert mail.outbox == []


# --- refunds -------------------------------------------------------------------------------


def test_a_whole_refund_gives_the_money_and_the_seats_back(tt):
    booking = paid_booking(tt, 2)

    refund = refund_issue(booking=booking, reason="Cannot come")

    refund.refresh_from_db()
    booking.refresh_from_db()
    assert (refund.status, refund.amount) == (Refund.Status.SUCCEEDED, Decimal("50.00"))
    assert booking.status == Booking.Status.REFUNDED
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert counters(tt) == (0, 0) and counters(tt.event) == (0, 0)
    assert MockCharge.objects.get().refunded_amount == Decimal("50.00")
    assert len(mail.outbox) == 2 and "refund" in mail.outbox[1].subject.lower()


def test_a_partial_refund_releases_only_the_chosen_tickets(tt):
    booking = paid_booking(tt, 3)
    first = booking.tickets.first()

    refund_issue(booking=booking, tickets=[first.pk])

    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert Payment.objects.get().status == Payment.Status.PARTIALLY_REFUNDED
    assert Ticket.objects.get(pk=first.pk).status == Ticket.Status.REFUNDED
    assert counters(tt) == (2, 0)
    refund_issue(booking=booking)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.REFUNDED
    assert Payment.objects.get().status == Payment.Status.REFUNDED


def test_capacity_is_released_only_when_the_gateway_confirms_the_refund(tt):
    booking = paid_booking(tt, 2)
    with mock.patch("payments.tasks.refund_process_task.delay"):
        refund = refund_issue(booking=booking)
    assert refund.status == Refund.Status.PENDING
    assert counters(tt) == (2, 0)
    with pytest.raises(InvalidTransition):
        refund_issue(booking=booking)  # every ticket is already being refunded

    refund_process(refund_id=refund.pk)
    refund_process(refund_id=refund.pk)

    assert counters(tt) == (0, 0)
    assert MockCharge.objects.get().refund_count == 1


def test_refunds_refuse_tickets_that_are_not_issued_in_this_booking(tt):
    booking = paid_booking(tt, 1)
    other = paid_booking(tt, 1)
    with pytest.raises(InvalidTransition):
        refund_issue(booking=booking, tickets=list(other.tickets.all()))
    with pytest.raises(InvalidInput):
        refund_issue(booking=booking, tickets=["nope"])
    with pytest.raises(InvalidInput):
        refund_issue(booking=booking, tickets=[])
    assert not Refund.objects.exists()


@pytest.mark.parametrize("status", [Booking.Status.RESERVED, Booking.Status.PROCESSING, Booking.Status.CANCELLED])
def test_only_a_confirmed_booking_can_be_refunded(tt, status):
    booking = make_booking(items=[(tt, 1)], status=status)
    with pytest.raises(InvalidTransition):
        refund_issue(booking=booking)


def test_a_failed_refund_stays_visible_and_can_be_retried(tt):
    booking = paid_booking(tt, 2, number="4000000000006660")

    refund = refund_issue(booking=booking)

    refund.refresh_from_db()
    assert (refund.status, refund.failure_code) == (Refund.Status.FAILED, "refund_failed")
    assert counters(tt) == (2, 0)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert Payment.objects.get().status == Payment.Status.CAPTURED

    retry = refund_retry(refund=refund)
    retry.refresh_from_db()
    assert (retry.retry_of, retry.status) == (refund, Refund.Status.FAILED)
    with pytest.raises(InvalidTransition):
        refund_retry(refund=refund)  # tried once already
    assert len(mail.outbox) == 1


def test_a_failed_refund_can_succeed_when_retried(tt):
    booking = paid_booking(tt, 1)
    with mock.patch.object(MockGateway, "refund", side_effect=__import__("payments.gateway").gateway.Declined(
            "refund_failed", "Issuer unavailable")):
        refund = refund_issue(booking=booking)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED

    retry = refund_retry(refund=refund)

    retry.refresh_from_db()
    assert retry.status == Refund.Status.SUCCEEDED
    assert counters(tt) == (0, 0)


def test_an_unreachable_gateway_leaves_the_refund_pending_for_a_retry(tt):
    booking = paid_booking(tt, 1)
    with mock.patch("payments.tasks.refund_process_task.delay"):
        refund = refund_issue(booking=booking)
    with mock.patch.object(MockGateway, "refund", side_effect=GatewayUnavailable), \
            pytest.raises(GatewayUnavailable):
        refund_process(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PENDING
    refund_process(refund_id=refund.pk)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED


def test_cancelling_an_event_refunds_every_confirmed_booking(tt):
    sold = [paid_booking(tt, 2), paid_booking(tt, 1)]
    hold = make_booking(items=[(tt, 1)])

    refunds = event_cancel_and_refund(event=tt.event)

    assert len(refunds) == 2
    for booking in [*sold, hold]:
        booking.refresh_from_db()
    assert [b.status for b in sold] == [Booking.Status.REFUNDED] * 2
    assert hold.status == Booking.Status.CANCELLED
    assert counters(tt) == (0, 0)


# --- bounds ----------------------------------------------------------------------------------


def test_a_refund_above_what_is_left_is_refused(tt):
    booking = paid_booking(tt, 2)
    payment = Payment.objects.get()
    Refund.objects.create(payment=payment, amount=Decimal("40.00"), status=Refund.Status.PENDING)
    with pytest.raises(LimitExceeded):
        refund_issue(booking=booking)


# --- reconcile -------------------------------------------------------------------------------


def test_reconcile_requeues_stuck_work_and_releases_orphaned_bookings(tt, settings, time_machine):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 120
    stuck_capture = make_booking(items=[(tt, 1)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        authorized = payment_authorize(booking=stuck_capture, card=card())
    refunded = paid_booking(tt, 1)
    with mock.patch("payments.tasks.refund_process_task.delay"):
        stuck_refund = refund_issue(booking=refunded)
    orphan = make_booking(items=[(tt, 1)], status=Booking.Status.PROCESSING)
    abandoned = Payment.objects.create(booking=make_booking(items=[(tt, 1)]), amount=Decimal("25.00"),
                                       currency="EUR")
    time_machine.move_to(timezone.now() + timedelta(minutes=3))

    with mock.patch("payments.tasks.payment_capture_task.delay") as capture, \
            mock.patch("payments.tasks.refund_process_task.delay") as refund:
        result = payments_reconcile()

    capture.assert_called_once_with(str(authorized.pk))
    refund.assert_called_once_with(str(stuck_refund.pk))
    orphan.refresh_from_db()
    abandoned.refresh_from_db()
    assert orphan.status == Booking.Status.CANCELLED
    assert (abandoned.status, abandoned.failure_code) == (Payment.Status.FAILED, "abandoned")
    assert (result.captures_requeued, result.refunds_requeued, result.bookings_released,
            result.payments_abandoned) == (1, 1, 1, 1)


def test_reconcile_leaves_fresh_work_alone(tt):
    booking = make_booking(items=[(tt, 1)])
    with mock.patch("payments.tasks.payment_capture_task.delay"):
        payment_authorize(booking=booking, card=card())
    with mock.patch("payments.tasks.payment_capture_task.delay") as capture:
        result = payments_reconcile()
    capture.assert_not_called()
    assert result.captures_requeued == 0
