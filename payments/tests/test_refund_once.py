"""A ticket is refunded at the gateway exactly once, however refunds are asked for, retried and processed.

Issue and retry share one check made under the Booking and Payment locks: a
ticket already in a pending, succeeded or needs-attention refund cannot go into
another one (`already_refunded`). An error after the gateway gave the money
back is recorded on the refund (`needs_attention`), never swallowed.
"""

import logging
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from bookings.models import Booking, Ticket
from core.errors import DomainError
from events.tests.factories import TicketTypeFactory
from payments.gateway import Declined
from payments.mock_gateway import MockGateway
from payments.models import MockCharge, MockOperation, Payment, Refund
from payments.selectors import refunds_failed_unretried, refunds_needing_attention
from payments.services import payments_reconcile, refund_issue, refund_process, refund_retry, refundable_amount
from payments.tests.test_services import counters, paid_booking

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tt():
    return TicketTypeFactory(capacity=10, price=Decimal("25.00"), event__capacity=100)


def refused_once():
    """The gateway refuses the refunds made inside the block (the issuer is down), then works again."""
    return mock.patch.object(MockGateway, "refund", side_effect=Declined("refund_failed", "Issuer unavailable"))


def queued_only():
    """Refunds made inside the block are queued; the worker has not run them yet."""
    return mock.patch("payments.tasks.refund_process_task.delay")


def attempt(service, **kwargs):
    """Run a service; return the domain error it raised, or None."""
    try:
        service(**kwargs)
    except DomainError as exc:
        return exc
    return None


def process_everything_pending():
    for refund in Refund.objects.filter(status=Refund.Status.PENDING).order_by("created_at"):
        refund_process(refund_id=refund.pk)


def gateway_refunds(booking):
    """What the processor itself recorded for this booking's charge: (refunds made, amount refunded)."""
    charge = MockCharge.objects.get(reference=Payment.objects.get(booking=booking).gateway_reference)
    operations = MockOperation.objects.filter(operation="refund", reference=charge.reference).count()
    assert operations == charge.refund_count
    return charge.refund_count, charge.refunded_amount


def test_a_failed_refund_asked_again_then_retried_refunds_the_ticket_once(tt):
    booking = paid_booking(tt, 2)
    a, b = booking.tickets.order_by("pk")
    with refused_once():
        failed = refund_issue(booking=booking, tickets=[a.pk])
    failed.refresh_from_db()
    assert failed.status == Refund.Status.FAILED

    with queued_only():
        again = refund_issue(booking=booking, tickets=[a.pk], by_buyer=True)  # the buyer asks for A again
    refusal = attempt(refund_retry, refund=failed)  # the organizer retries the failed one
    process_everything_pending()  # the worker runs whatever was queued

    assert gateway_refunds(booking) == (1, Decimal("25.00"))
    assert refusal is not None and refusal.code == "already_refunded"
    again.refresh_from_db()
    assert again.status == Refund.Status.SUCCEEDED
    assert not Refund.objects.filter(retry_of=failed).exists()
    assert [t.status for t in Ticket.objects.filter(pk__in=[a.pk, b.pk]).order_by("pk")] == [
        Ticket.Status.REFUNDED, Ticket.Status.ISSUED]
    payment = Payment.objects.get(booking=booking)
    assert payment.status == Payment.Status.PARTIALLY_REFUNDED and refundable_amount(payment) == Decimal("25.00")
    assert counters(tt) == (1, 0)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    # Nothing is left for the organizer to act on: A was refunded by the buyer's request.
    assert not refunds_failed_unretried().exists() and not refunds_needing_attention().exists()


def test_a_retried_refund_blocks_the_same_tickets_from_a_new_request(tt):
    booking = paid_booking(tt, 2)
    a = booking.tickets.order_by("pk").first()
    with refused_once():
        failed = refund_issue(booking=booking, tickets=[a.pk])
    with queued_only():
        retry = refund_retry(refund=failed)

    refusal = attempt(refund_issue, booking=booking, tickets=[a.pk], by_buyer=True)
    process_everything_pending()

    assert refusal is not None and refusal.code == "already_refunded"
    retry.refresh_from_db()
    assert retry.status == Refund.Status.SUCCEEDED
    assert gateway_refunds(booking) == (1, Decimal("25.00"))
    assert Refund.objects.count() == 2


def test_retrying_a_refund_whose_tickets_were_refunded_since_is_refused_as_already_refunded(tt):
    booking = paid_booking(tt, 2)
    with refused_once():
        failed = refund_issue(booking=booking)
    refund_issue(booking=booking)  # asked again; succeeds

    refusal = attempt(refund_retry, refund=failed)

    assert refusal is not None and refusal.code == "already_refunded" and refusal.status == 409
    assert not Refund.objects.filter(retry_of=failed).exists()
    assert gateway_refunds(booking) == (1, Decimal("50.00"))


def test_a_retry_takes_only_tickets_that_are_still_free(tt):
    """One ticket of the failed refund is being refunded again: the whole retry is refused, nothing is queued."""
    booking = paid_booking(tt, 3)
    a, b, _c = booking.tickets.order_by("pk")
    with refused_once():
        failed = refund_issue(booking=booking, tickets=[a.pk, b.pk])
    with queued_only() as queued:
        refund_issue(booking=booking, tickets=[b.pk])
        refusal = attempt(refund_retry, refund=failed)

    assert refusal is not None and refusal.code == "already_refunded"
    assert queued.call_count == 1
    assert Refund.objects.filter(status=Refund.Status.PENDING).count() == 1


def test_money_refunded_but_not_recorded_needs_attention_and_is_never_swallowed(tt, caplog, settings,
                                                                                  time_machine):
    """Two pending refunds of one ticket (rows left by the old retry): the second one's gateway call
    succeeds, then its tickets cannot be released. The refund records that, visibly."""
    booking = paid_booking(tt, 2)
    a = booking.tickets.order_by("pk").first()
    payment = Payment.objects.get(booking=booking)
    first, second = (Refund.objects.create(payment=payment, amount=Decimal("25.00"), status=Refund.Status.PENDING)
                     for _ in range(2))
    for refund in (first, second):
        refund.tickets.set([a])
    refund_process(refund_id=first.pk)

    with caplog.at_level(logging.ERROR, logger="payments.services"):
        result = refund_process(refund_id=second.pk)

    second.refresh_from_db()
    assert result.status == second.status == "needs_attention"
    assert second.failure_code == "not_recorded"
    assert "refunded at the gateway" in second.failure_message.lower()
    assert second.gateway_reference.startswith("re_")
    assert str(second.pk) in caplog.text
    assert list(refunds_needing_attention()) == [second]
    # The money left: nothing more is refundable than what the gateway still holds.
    assert refundable_amount(Payment.objects.get(pk=payment.pk)) == Decimal("0.00")
    assert gateway_refunds(booking) == (2, Decimal("50.00"))
    # Recorded once: running it again, or the reconciler, changes nothing and calls the gateway no more.
    refund_process(refund_id=second.pk)
    settings.PAYMENT_STUCK_AFTER_SECONDS = 60
    time_machine.move_to(timezone.now() + timedelta(minutes=5))
    with mock.patch("payments.tasks.refund_process_task.delay") as requeued:
        payments_reconcile()
    requeued.assert_not_called()
    assert gateway_refunds(booking) == (2, Decimal("50.00"))
    second.refresh_from_db()
    assert second.status == "needs_attention"


def test_a_refund_a_concurrent_run_already_recorded_is_not_flagged(tt):
    """Only a refund still pending after the error is flagged: here another worker recorded it meanwhile."""
    booking = paid_booking(tt, 1)
    with queued_only():
        refund = refund_issue(booking=booking)
    original, others = MockGateway.refund, []

    def other_worker_records_first(gateway, **kwargs):
        result = original(gateway, **kwargs)
        if not others:  # while this worker waits for the answer, a second run of the task finishes
            others.append(None)
            others[0] = refund_process(refund_id=refund.pk)
        return result

    with mock.patch.object(MockGateway, "refund", autospec=True, side_effect=other_worker_records_first):
        result = refund_process(refund_id=refund.pk)

    refund.refresh_from_db()
    assert result.status == refund.status == Refund.Status.SUCCEEDED
    assert others[0].status == Refund.Status.SUCCEEDED
    assert gateway_refunds(booking) == (1, Decimal("25.00"))
