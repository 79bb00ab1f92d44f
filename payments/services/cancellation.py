"""Cancelling an event with a refund for every confirmed booking."""

from __future__ import annotations

import logging

from django.utils.translation import gettext as _

from bookings.services import event_cancel
from core.errors import DomainError, InvalidTransition
from events.models import Event
from payments.models import Refund
from payments.selectors import bookings_awaiting_cancellation_refund
from payments.services.refunds import refund_issue

logger = logging.getLogger(__name__)


def event_cancel_and_refund(*, event: Event, reason: str = "") -> list[Refund]:
    """Cancel an event: holds released at once, every confirmed booking refunded (queued) exactly once.

    Resumable: the cancellation commits first, then each booking's refund is queued in
    its own transaction. Calling this again on a cancelled event (or `payments_reconcile`)
    queues the refunds still missing, and returns them; a captured payment gets one
    cancellation refund at most (checked under the booking's lock, backed by a unique
    constraint).
    """
    try:
        event_cancel(event=event)
    except InvalidTransition:
        event.refresh_from_db()
        if event.status != Event.Status.CANCELLED:
            raise
    return _refund_cancelled_bookings(reason=reason, event_ids=[event.pk])


def _refund_cancelled_bookings(*, reason: str = "", **which) -> list[Refund]:
    """Queue the missing cancellation refunds (`bookings_awaiting_cancellation_refund(**which)`), each once."""
    refunds = []
    for booking in bookings_awaiting_cancellation_refund(**which).select_related("event"):
        try:
            refunds.append(refund_issue(booking=booking, reason=reason or _("Event cancelled"),
                                        cause=Refund.Cause.EVENT_CANCELLED))
        except InvalidTransition:
            continue  # moved on meanwhile: refunded, being refunded, or another run queued it
        except DomainError as exc:
            # Busy, or a refund that would exceed the payment: left waiting for the next reconciliation
            # (and shown on the event's dashboard); the other bookings go on.
            logger.warning("cancellation refund of booking %s not queued now: %s", booking.pk, exc.detail)
    return refunds
