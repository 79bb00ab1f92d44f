"""Reads of payments and refunds: what counts as stuck or failed (one definition for the
reconciler and for the organizer's dashboard)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from bookings.models import Booking
from payments.models import Payment, Refund


def stuck_cutoff() -> datetime:
    """Work not finished since before this moment is stuck (`PAYMENT_STUCK_AFTER_SECONDS`)."""
    return timezone.now() - timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS)


def payments_stuck_authorized(payments: QuerySet[Payment] | None = None) -> QuerySet[Payment]:
    """Payments authorized but not captured since before the cutoff."""
    payments = Payment.objects.all() if payments is None else payments
    return payments.filter(status=Payment.Status.AUTHORIZED, updated_at__lt=stuck_cutoff())


def payments_stuck_processing(payments: QuerySet[Payment] | None = None) -> QuerySet[Payment]:
    """Stuck authorizations whose booking still waits in `processing` (what an organizer must watch)."""
    return payments_stuck_authorized(payments).filter(booking__status=Booking.Status.PROCESSING)


def refunds_stuck_pending(refunds: QuerySet[Refund] | None = None) -> QuerySet[Refund]:
    """Refunds still pending since before the cutoff."""
    refunds = Refund.objects.all() if refunds is None else refunds
    return refunds.filter(status=Refund.Status.PENDING, updated_at__lt=stuck_cutoff())


def refunds_failed_unretried(refunds: QuerySet[Refund] | None = None) -> QuerySet[Refund]:
    """Refunds the gateway refused that nobody has retried yet."""
    refunds = Refund.objects.all() if refunds is None else refunds
    return refunds.filter(status=Refund.Status.FAILED, retries__isnull=True)
