import logging

from celery import shared_task

from core.idempotency import idempotency_keys_purge

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def idempotency_keys_purge_task() -> int:
    """Beat, hourly: forget Idempotency-Keys older than 24 hours."""
    deleted = idempotency_keys_purge()
    logger.info("purged %d idempotency keys", deleted)
    return deleted


@shared_task(acks_late=True)
def api_tokens_purge_task() -> int:
    """Beat, hourly: delete API tokens whose expiry has passed (they are refused already)."""
    from core.tokens import api_tokens_purge_expired

    deleted = api_tokens_purge_expired()
    logger.info("purged %d expired API tokens", deleted)
    return deleted
