"""Capturing an authorized payment (a task) and confirming its booking."""

from __future__ import annotations

import contextlib
import logging
import uuid

from django.db import transaction
from django.utils.translation import gettext as _

from bookings.models import Booking
from bookings.services import booking_confirm, booking_fail_payment
from core.db import locking_atomic
from core.errors import InvalidTransition
from events.models import Event
from payments.gateway import Declined, get_gateway
from payments.models import Payment, Refund
from payments.services.authorize import _void
from payments.services.transitions import P, _on_commit_delay, _payment_transition

logger = logging.getLogger(__name__)


class CapturePending(Exception):
    """The processor is still working on a capture: ask again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"capture pending, retry in {retry_after}s")


def payment_capture(*, payment_id: uuid.UUID | str) -> Payment:
    """Capture an authorized payment, confirm its booking and queue the confirmation e-mail.

    Idempotent: a payment no longer `authorized` is left alone and the gateway capture
    uses one key per payment, so running this twice captures once and confirms once. A
    booking that can no longer be confirmed (event cancelled, booking moved on) has its
    authorization voided, or its capture refunded, and its hold released. Raises
    `CapturePending` while the processor works and `GatewayUnavailable` when it cannot
    be reached (the task retries both).
    """
    from bookings.tasks import send_booking_confirmation
    from payments.tasks import refund_process_task

    payment = Payment.objects.select_related("booking__event").get(pk=payment_id)
    if payment.status != P.AUTHORIZED:
        return payment
    booking = payment.booking
    if booking.status != Booking.Status.PROCESSING or booking.event.status == Event.Status.CANCELLED:
        _void(payment.pk)
        _release_if_processing(booking)
        return Payment.objects.get(pk=payment.pk)
    try:
        capture = get_gateway().capture(reference=payment.gateway_reference, amount=payment.amount,
                                        idempotency_key=f"payment:{payment.pk}:capture")
    except Declined as exc:
        logger.warning("capture of payment %s refused: %s", payment.pk, exc.code)
        with transaction.atomic():
            Payment.objects.filter(pk=payment.pk).update(failure_code=exc.code, failure_message=exc.message[:300])
        _void(payment.pk)
        _release_if_processing(booking)
        return Payment.objects.get(pk=payment.pk)
    if not capture.succeeded:
        raise CapturePending(capture.retry_after)
    try:
        with locking_atomic():
            booking_confirm(booking=booking)
            payment = _payment_transition(payment.pk, P.CAPTURED)
            _on_commit_delay(send_booking_confirmation, booking.pk)
    except InvalidTransition:
        # Captured, but the booking can no longer be confirmed: give the money back.
        with locking_atomic():
            _release_if_processing(booking)
            current = Payment.objects.select_for_update(no_key=True).get(pk=payment.pk)
            if current.status != P.AUTHORIZED:
                return current  # a concurrent run of this task finished it
            payment = _payment_transition(payment.pk, P.CAPTURED)
            refund = Refund.objects.create(payment=payment, amount=payment.amount, status=Refund.Status.PENDING,
                                           reason=_("The booking could not be confirmed."))
            _on_commit_delay(refund_process_task, refund.pk)
    return payment


def _release_if_processing(booking: Booking) -> None:
    """Release the booking's hold if it is still `processing`; otherwise nothing is held for this payment."""
    with contextlib.suppress(InvalidTransition):
        booking_fail_payment(booking=booking)
