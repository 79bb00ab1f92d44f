"""Cancelling an event can be resumed: a crash after the cancellation committed never leaves a booking unrefunded.

The reconciler and a second call of `event_cancel_and_refund` both find the
confirmed, captured bookings of cancelled events that have no cancellation
refund yet and queue one each, exactly once, however often, in whatever order
and however concurrently they run.
"""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from bookings.models import Booking
from bookings.selectors import inventory_mismatches
from events.models import Event
from events.tests.factories import TicketTypeFactory
from payments import services
from payments.models import Payment, Refund
from payments.selectors import refunds_failed_unretried
from payments.services import event_cancel_and_refund, payments_reconcile
from payments.tests.test_refund_once import gateway_refunds
from payments.tests.test_services import counters, paid_booking

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tt(settings):
    settings.PAYMENT_STUCK_AFTER_SECONDS = 120
    return TicketTypeFactory(capacity=20, price=Decimal("25.00"), event__capacity=100)


def crash_on_second_refund():
    """The process dies while queueing the refund of the second booking (the cancellation already committed)."""
    real, calls = services.refund_issue, []

    def flaky(**kwargs):
        calls.append(kwargs["booking"].pk)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    return mock.patch("payments.services.cancellation.refund_issue", side_effect=flaky)


def cancel_and_crash(event):
    with crash_on_second_refund(), pytest.raises(RuntimeError):
        event_cancel_and_refund(event=event, reason="Storm")
    event.refresh_from_db()
    assert event.status == Event.Status.CANCELLED


def statuses(bookings):
    for booking in bookings:
        booking.refresh_from_db()
    return sorted(b.status for b in bookings)


def later(time_machine, minutes=3):
    """Past the reconciler's deadline (`PAYMENT_STUCK_AFTER_SECONDS`)."""
    time_machine.move_to(timezone.now() + timedelta(minutes=minutes))


def snapshot():
    return sorted(Refund.objects.values_list("pk", "status")), [
        gateway_refunds(b) for b in Booking.objects.filter(payments__isnull=False).order_by("pk")]


def assert_each_refunded_once(bookings):
    for booking in bookings:
        booking.refresh_from_db()
        payment = Payment.objects.get(booking=booking)
        refunds = list(Refund.objects.filter(payment=payment))
        assert [(r.status, r.amount) for r in refunds] == [(Refund.Status.SUCCEEDED, payment.amount)], booking
        assert gateway_refunds(booking) == (1, payment.amount)
        assert (booking.status, payment.status) == (Booking.Status.REFUNDED, Payment.Status.REFUNDED)


def test_the_reconciler_refunds_what_a_crashed_cancellation_left_exactly_once(tt, time_machine):
    sold = [paid_booking(tt, 2), paid_booking(tt, 1), paid_booking(tt, 3)]
    cancel_and_crash(tt.event)
    assert statuses(sold) == [Booking.Status.CONFIRMED] * 2 + [Booking.Status.REFUNDED]
    later(time_machine)

    result = payments_reconcile()

    assert_each_refunded_once(sold)
    assert result.cancellation_refunds_queued == 2
    assert counters(tt) == (0, 0) and inventory_mismatches() == []
    before = snapshot()
    assert payments_reconcile().cancellation_refunds_queued == 0  # run again: nothing changes
    assert event_cancel_and_refund(event=tt.event) == []  # nor does the organizer cancelling again
    assert snapshot() == before


def test_cancelling_again_resumes_the_refunds_a_crash_left_exactly_once(tt, time_machine):
    sold = [paid_booking(tt, 2), paid_booking(tt, 1), paid_booking(tt, 3)]
    earlier = paid_booking(tt, 1)
    services.refund_issue(booking=earlier)  # refunded before the cancellation: stays as it was
    cancel_and_crash(tt.event)

    resumed = event_cancel_and_refund(event=tt.event, reason="Storm")

    assert len(resumed) == 2 and {r.reason for r in resumed} == {"Storm"}
    assert_each_refunded_once([*sold, earlier])
    before = snapshot()
    assert event_cancel_and_refund(event=tt.event) == []
    later(time_machine)
    assert payments_reconcile().cancellation_refunds_queued == 0
    assert snapshot() == before


def test_the_reconciler_leaves_a_cancellation_that_is_still_running_to_itself(tt):
    sold = [paid_booking(tt, 1), paid_booking(tt, 1)]
    cancel_and_crash(tt.event)

    assert payments_reconcile().cancellation_refunds_queued == 0  # cancelled just now: its own call may be running
    assert statuses(sold) == [Booking.Status.CONFIRMED, Booking.Status.REFUNDED]


def test_a_cancellation_refund_the_gateway_refused_is_not_issued_again(tt, time_machine):
    refused = paid_booking(tt, 2, number="4000000000006660")
    fine = paid_booking(tt, 1)

    event_cancel_and_refund(event=tt.event)
    later(time_machine)
    payments_reconcile()
    payments_reconcile()

    assert_each_refunded_once([fine])
    failed = Refund.objects.get(payment__booking=refused)  # one row, failed, waiting for the organizer's retry
    assert failed.status == Refund.Status.FAILED and list(refunds_failed_unretried()) == [failed]
    assert statuses([refused]) == [Booking.Status.CONFIRMED]


def test_a_booking_whose_tickets_are_being_refunded_gets_the_rest_refunded_once(tt, time_machine):
    booking = paid_booking(tt, 3)
    first = booking.tickets.order_by("pk").first()
    with mock.patch("payments.tasks.refund_process_task.delay"):
        asked = services.refund_issue(booking=booking, tickets=[first.pk])  # pending when the event is cancelled

        [cancellation] = event_cancel_and_refund(event=tt.event)
        later(time_machine)
        assert payments_reconcile().cancellation_refunds_queued == 0

    assert set(cancellation.tickets.all()) == set(booking.tickets.exclude(pk=first.pk))
    for refund in (asked, cancellation):
        services.refund_process(refund_id=refund.pk)
    assert statuses([booking]) == [Booking.Status.REFUNDED]
    assert gateway_refunds(booking) == (2, Decimal("75.00"))


@pytest.mark.slow
def test_resuming_concurrently_from_every_door_refunds_each_booking_once(tt, settings, time_machine):
    from bookings.tests.test_concurrency import run_together

    settings.LOCK_TIMEOUT_MS = 20_000  # a queue on a shared CI machine, not a lock timeout
    sold = [paid_booking(tt, 1 + i % 3) for i in range(6)]
    cancel_and_crash(tt.event)
    later(time_machine)
    connection.close()  # each thread opens its own

    with mock.patch("payments.tasks.refund_process_task.delay") as queued:  # the worker runs them afterwards
        outcomes = run_together({
            "cancel-again-1": lambda: event_cancel_and_refund(event=Event.objects.get(pk=tt.event_id)),
            "cancel-again-2": lambda: event_cancel_and_refund(event=Event.objects.get(pk=tt.event_id)),
            "reconcile-1": payments_reconcile,
            "reconcile-2": payments_reconcile,
        })
    for call in queued.call_args_list:
        services.refund_process(refund_id=call.args[0])

    assert [(o.name, o.error) for o in outcomes if o.error] == []
    assert queued.call_count == len(sold) - 1
    queued = sum(len(o.result) for o in outcomes if o.name.startswith("cancel")) + sum(
        o.result.cancellation_refunds_queued for o in outcomes if o.name.startswith("reconcile"))
    assert queued == len(sold) - 1  # the one queued before the crash is not queued again
    assert_each_refunded_once(sold)
    assert counters(tt) == (0, 0) and inventory_mismatches() == []
