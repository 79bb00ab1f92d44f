"""Reads of payments and refunds: what counts as stuck or failed (one definition for the
reconciler and for the organizer's dashboard)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from bookings.models import Booking, Ticket
from events.models import Event
from payments.models import Payment, Refund

# A ticket in a refund with one of these statuses is refunded, or being refunded, or its money is gone
# (`needs_attention`): it can go into no other refund. A failed refund holds nothing.
REFUND_HOLDS_TICKETS = (Refund.Status.PENDING, Refund.Status.SUCCEEDED, Refund.Status.NEEDS_ATTENTION)


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


def tickets_in_refunds() -> QuerySet[Ticket]:
    """Tickets held by a refund (pending, succeeded or needing attention): no other refund may take them."""
    return Ticket.objects.filter(refunds__status__in=REFUND_HOLDS_TICKETS)


def refunds_failed_unretried(refunds: QuerySet[Refund] | None = None) -> QuerySet[Refund]:
    """Refunds the gateway refused that nobody has retried yet and that a retry could still give.

    A failed refund whose tickets were all refunded since by another refund
    (the buyer asked again, the event was cancelled) is left out: retrying it
    would be refused (`already_refunded`). One without tickets (a capture that
    could not be confirmed) always counts.
    """
    refunds = Refund.objects.all() if refunds is None else refunds
    still_owed = Ticket.objects.filter(refunds=OuterRef("pk")).exclude(pk__in=tickets_in_refunds().values("pk"))
    has_tickets = Ticket.objects.filter(refunds=OuterRef("pk"))
    return refunds.filter(status=Refund.Status.FAILED, retries__isnull=True).filter(
        Exists(still_owed) | ~Exists(has_tickets))


def refunds_needing_attention(refunds: QuerySet[Refund] | None = None) -> QuerySet[Refund]:
    """Refunds the gateway made that the shop could not record (tickets, seats or payment not updated)."""
    refunds = Refund.objects.all() if refunds is None else refunds
    return refunds.filter(status=Refund.Status.NEEDS_ATTENTION)


def bookings_awaiting_cancellation_refund(*, event_ids=None, cancelled_before: datetime | None = None
                                          ) -> QuerySet[Booking]:
    """Confirmed bookings of cancelled events whose captured money has no cancellation refund yet.

    What `event_cancel_and_refund` left when it stopped half-way (a crash, a
    lost worker): the reconciler and a second call refund these. A refused
    cancellation refund counts as made (its retry is the organizer's, from
    "needs attention"), so nothing is refunded twice.
    """
    captured = Payment.objects.filter(
        booking_id=OuterRef("pk"), status__in=[Payment.Status.CAPTURED, Payment.Status.PARTIALLY_REFUNDED])
    made = Refund.objects.filter(payment__booking_id=OuterRef("pk"), cause=Refund.Cause.EVENT_CANCELLED)
    cancelled = Q(event__status=Event.Status.CANCELLED)
    if event_ids is not None:
        cancelled &= Q(event_id__in=event_ids)
    if cancelled_before is not None:
        cancelled &= Q(event__cancelled_at__lt=cancelled_before)
    return (Booking.objects.filter(cancelled, status=Booking.Status.CONFIRMED)
            .filter(Exists(captured)).exclude(Exists(made)).order_by("pk"))

