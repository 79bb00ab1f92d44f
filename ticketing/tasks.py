import logging

from celery import shared_task

from ticketing.idempotency import idempotency_keys_purge

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def idempotency_keys_purge_task() -> int:
    """Beat, hourly: forget Idempotency-Keys older than 24 hours."""
    deleted = idempotency_keys_purge()
    logger.info("purged %d idempotency keys", deleted)
    return deleted
