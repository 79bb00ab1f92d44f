"""Reads of payments and refunds: what counts as stuck or failed (one definition for the
reconciler and for the organizer's dashboard)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
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



# A booking's refund state as its buyer reads it (`booking_refund_state`), most urgent first.
REFUND_NONE = "none"
REFUND_PENDING = "pending"
REFUND_NEEDS_ATTENTION = "needs_attention"
REFUND_FAILED = "failed"
REFUND_SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class BookingRefundState:
    """Where a booking's refunds stand: `state`, the refund it comes from, the tickets being refunded."""

    state: str
    refund: Refund | None = None
    being_refunded: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @property
    def may_request(self) -> bool:
        """Whether the site offers a (new) refund: not while one is on its way, refused, or being checked."""
        return self.state in (REFUND_NONE, REFUND_SUCCEEDED)


def booking_refund_state(booking: Booking) -> BookingRefundState:
    """The one reading of a booking's refunds for its pages (two queries), most urgent state first.

    - `pending`: a refund is on its way to the gateway; its tickets are being refunded.
    - `needs_attention`: the gateway gave money back that the shop could not record.
    - `failed`: the gateway refused a refund nobody has retried yet and that still matters
      (`refunds_failed_unretried`: its tickets were not refunded since by another refund);
      the organizer sees it on the dashboard and retries it.
    - `succeeded`: money went back; `none`: no refund at all.
    """
    refunds = list(Refund.objects.filter(payment__booking_id=booking.pk).order_by("-created_at"))
    if not refunds:
        return BookingRefundState(REFUND_NONE)
    tickets_of: dict[uuid.UUID, set[uuid.UUID]] = {refund.pk: set() for refund in refunds}
    for refund_id, ticket_id in Refund.tickets.through.objects.filter(
            refund_id__in=list(tickets_of)).values_list("refund_id", "ticket_id"):
        tickets_of[refund_id].add(ticket_id)
    by_status: dict[str, list[Refund]] = {}
    for refund in refunds:
        by_status.setdefault(refund.status, []).append(refund)
    pending = by_status.get(Refund.Status.PENDING, [])
    if pending:
        being_refunded = frozenset(t for refund in pending for t in tickets_of[refund.pk])
        return BookingRefundState(REFUND_PENDING, pending[0], being_refunded)
    if attention := by_status.get(Refund.Status.NEEDS_ATTENTION):
        return BookingRefundState(REFUND_NEEDS_ATTENTION, attention[0])
    retried = {refund.retry_of_id for refund in refunds if refund.retry_of_id}
    taken = {t for refund in refunds if refund.status in REFUND_HOLDS_TICKETS for t in tickets_of[refund.pk]}
    for refund in by_status.get(Refund.Status.FAILED, []):
        if refund.pk not in retried and (not tickets_of[refund.pk] or tickets_of[refund.pk] - taken):
            return BookingRefundState(REFUND_FAILED, refund)
    if succeeded := by_status.get(Refund.Status.SUCCEEDED):
        return BookingRefundState(REFUND_SUCCEEDED, succeeded[0])
    return BookingRefundState(REFUND_NONE)
