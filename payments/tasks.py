"""Celery door of the payments app: thin, idempotent tasks over services (ids only)."""

import logging

from celery import shared_task

from core.errors import Busy
from payments.gateway import GatewayUnavailable
from payments.services import CapturePending, payment_capture, payments_reconcile, refund_process

logger = logging.getLogger(__name__)

RETRYABLE = (GatewayUnavailable, Busy)


@shared_task(bind=True, acks_late=True, autoretry_for=RETRYABLE, retry_backoff=2, retry_backoff_max=300,
             max_retries=10)
def payment_capture_task(self, payment_id: str) -> None:
    """Capture an authorized payment and confirm its booking; a no-op once done."""
    try:
        payment_capture(payment_id=payment_id)
    except CapturePending as exc:
        # The processor is still working: ask again when it said it would be done.
        raise self.retry(countdown=exc.retry_after, max_retries=None) from None


@shared_task(acks_late=True, autoretry_for=RETRYABLE, retry_backoff=2, retry_backoff_max=300, max_retries=10)
def refund_process_task(refund_id: str) -> None:
    """Send a pending refund to the gateway and release its tickets; a no-op once done."""
    refund_process(refund_id=refund_id)


@shared_task(acks_late=True)
def payments_reconcile_task() -> dict:
    """Beat: re-queue stuck captures and refunds, release bookings whose payment failed, and queue
    the refunds a half-done event cancellation left (each once)."""
    result = payments_reconcile()
    logger.info("payments reconciled: %s", result)
    return vars(result)


@shared_task(acks_late=True, autoretry_for=(OSError, Busy), retry_backoff=5, max_retries=8)
def send_refund_confirmation(refund_id: str) -> None:
    """E-mail the buyer that a refund went through; sent once however often it runs."""
    from payments.emails import refund_confirmation_send

    refund_confirmation_send(refund_id=refund_id)
