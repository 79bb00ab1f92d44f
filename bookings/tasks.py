"""Celery door of the bookings app: thin tasks over services."""

import logging

from celery import shared_task

from bookings.services import holds_expire
from core.errors import Busy

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def holds_expire_task() -> int:
    """Release every hold past its deadline (beat, every 30 s); safe to run on several workers."""
    expired = holds_expire()
    if expired:
        logger.info("released %d expired holds", expired)
    return expired


@shared_task(acks_late=True, autoretry_for=(OSError, Busy), retry_backoff=5, max_retries=8)
def send_booking_confirmation(booking_id: str) -> None:
    """E-mail the buyer their tickets with QR codes; sent once however often it runs."""
    from bookings.emails import booking_confirmation_send

    booking_confirmation_send(booking_id=booking_id)
