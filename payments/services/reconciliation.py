"""Putting stuck payment work back on track (run by the beat)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from bookings.models import Booking
from bookings.services import booking_fail_payment
from core.errors import DomainError, InvalidTransition
from payments.models import Payment
from payments.selectors import payments_stuck_authorized, refunds_stuck_pending, stuck_cutoff
from payments.services.cancellation import _refund_cancelled_bookings
from payments.services.transitions import P, _payment_transition


@dataclass
class Reconciled:
    captures_requeued: int = 0
    refunds_requeued: int = 0
    cancellation_refunds_queued: int = 0
    bookings_released: int = 0
    payments_abandoned: int = 0


def payments_reconcile() -> Reconciled:
    """Put stuck work back on track.

    Work unfinished `PAYMENT_STUCK_AFTER_SECONDS` after its last change: captures and
    refunds are queued again (their tasks are idempotent); `processing` bookings whose
    payment failed or was voided are cancelled, their holds released; `pending` payments
    (an authorization that crashed) are marked failed; confirmed bookings of events
    cancelled before then that still lack a cancellation refund get it, once.
    """
    from payments.tasks import payment_capture_task, refund_process_task

    result = Reconciled()
    cutoff = stuck_cutoff()
    for pk in payments_stuck_authorized().values_list("pk", flat=True):
        payment_capture_task.delay(str(pk))
        result.captures_requeued += 1
    for pk in refunds_stuck_pending().values_list("pk", flat=True):
        refund_process_task.delay(str(pk))
        result.refunds_requeued += 1
    result.cancellation_refunds_queued = len(_refund_cancelled_bookings(cancelled_before=cutoff))
    for pk in Payment.objects.filter(status=P.PENDING, updated_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            if Payment.objects.select_for_update(no_key=True).filter(pk=pk, status=P.PENDING).exists():
                _payment_transition(pk, P.FAILED, failure_code="abandoned",
                                    failure_message="The authorization did not complete.")
                result.payments_abandoned += 1
    orphaned = Booking.objects.filter(status=Booking.Status.PROCESSING, updated_at__lt=cutoff).exclude(
        Q(payments__status__in=[P.PENDING, P.AUTHORIZED, P.CAPTURED])
    )
    for booking in orphaned:
        try:
            booking_fail_payment(booking=booking)
            result.bookings_released += 1
        except (InvalidTransition, DomainError):
            continue
    return result
