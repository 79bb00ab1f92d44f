"""Random partial refunds never give back more than was captured, and the money matches the seats."""

from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookings.models import Booking, Ticket
from bookings.selectors import inventory_mismatches
from bookings.services import LineItem, booking_reserve
from core.errors import InvalidInput, InvalidTransition
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.gateway import Declined
from payments.mock_gateway import MockGateway
from payments.models import MockCharge, Payment, Refund
from payments.services import payment_authorize, payment_capture, refund_issue, refund_process, refund_retry
from payments.tests.conftest import card

operation = st.one_of(
    st.tuples(st.just("issue"), st.sets(st.integers(0, 5), max_size=6)),
    st.tuples(st.just("issue_all"), st.none()),
    st.tuples(st.just("process"), st.integers(0, 10)),
    st.tuples(st.just("process_failing"), st.integers(0, 10)),
    st.tuples(st.just("retry"), st.integers(0, 10)),
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(operation, max_size=15))
def test_random_partial_refunds_stay_within_the_capture(ops):
    with transaction.atomic():
        _run(ops)
        transaction.set_rollback(True)


def _run(ops):
    event = EventFactory(capacity=50)
    cheap = TicketTypeFactory(event=event, price=Decimal("10.00"), capacity=20)
    dear = TicketTypeFactory(event=event, price=Decimal("33.33"), capacity=20)
    booking = booking_reserve(event=event, items=[LineItem(cheap, 3), LineItem(dear, 3)], email="a@example.com")
    with mock.patch("payments.tasks.payment_capture_task.delay"), \
            mock.patch("payments.tasks.refund_process_task.delay"), \
            mock.patch("payments.tasks.send_refund_confirmation.delay"), \
            mock.patch("bookings.tasks.send_booking_confirmation.delay"):
        payment = payment_authorize(booking=booking, card=card())
        payment_capture(payment_id=payment.pk)
        tickets = list(Ticket.objects.filter(booking=booking).order_by("pk"))
        for kind, arg in ops:
            try:
                if kind == "issue":
                    refund_issue(booking=booking, tickets=[tickets[i].pk for i in arg])
                elif kind == "issue_all":
                    refund_issue(booking=booking)
                else:
                    pending = list(Refund.objects.filter(status=Refund.Status.PENDING).order_by("created_at"))
                    failed = list(Refund.objects.filter(status=Refund.Status.FAILED).order_by("created_at"))
                    if kind == "process" and pending:
                        refund_process(refund_id=pending[arg % len(pending)].pk)
                    elif kind == "process_failing" and pending:
                        with mock.patch.object(MockGateway, "refund", side_effect=Declined("refund_failed", "no")):
                            refund_process(refund_id=pending[arg % len(pending)].pk)
                    elif kind == "retry" and failed:
                        refund_retry(refund=failed[arg % len(failed)])
            except (InvalidTransition, InvalidInput):
                pass
            _check(booking, payment)


def _check(booking, payment):
    payment.refresh_from_db()
    captured = payment.amount
    by_status = {
        status: Refund.objects.filter(payment=payment, status=status).aggregate(t=Sum("amount"))["t"] or Decimal(0)
        for status in Refund.Status
    }
    succeeded, pending = by_status[Refund.Status.SUCCEEDED], by_status[Refund.Status.PENDING]
    assert succeeded + pending <= captured
    assert MockCharge.objects.get(reference=payment.gateway_reference).refunded_amount == succeeded
    refunded_tickets = Ticket.objects.filter(booking=booking, status=Ticket.Status.REFUNDED)
    assert (refunded_tickets.aggregate(t=Sum("price"))["t"] or Decimal(0)) == succeeded
    # A ticket is in at most one refund that is pending or succeeded.
    live = Ticket.objects.filter(refunds__status__in=[Refund.Status.PENDING, Refund.Status.SUCCEEDED])
    assert live.count() == live.distinct().count()
    booking.refresh_from_db()
    issued = Ticket.objects.filter(booking=booking, status=Ticket.Status.ISSUED).count()
    assert booking.status == (Booking.Status.CONFIRMED if issued else Booking.Status.REFUNDED)
    expected = {Decimal(0): Payment.Status.CAPTURED, captured: Payment.Status.REFUNDED}
    assert payment.status == expected.get(succeeded, Payment.Status.PARTIALLY_REFUNDED)
    assert inventory_mismatches(event_ids=[booking.event_id]) == []
