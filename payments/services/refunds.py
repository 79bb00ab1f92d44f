"""Refunds: issue (queued), send to the gateway (a task), retry a failed one."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.models import Booking, Ticket
from bookings.services import tickets_release_sold
from core.db import locking_atomic
from core.errors import (
    AlreadyRefunded,
    Busy,
    DomainError,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    RefundWindowClosed,
)
from payments.gateway import Declined, get_gateway
from payments.models import Payment, Refund
from payments.selectors import REFUND_HOLDS_TICKETS, tickets_in_refunds
from payments.services.transitions import P, _on_commit_delay, _payment_transition, _refund_transition

logger = logging.getLogger(__name__)


def refund_issue(*, booking: Booking, tickets: Sequence[Ticket | uuid.UUID | str] | None = None,
                 reason: str = "", by_buyer: bool = False, cause: str = Refund.Cause.REQUESTED) -> Refund:
    """Refund issued tickets of a confirmed booking (all that are free by default); the gateway call is queued.

    A ticket already in a pending, succeeded or needs-attention refund is never taken
    again (`AlreadyRefunded`). The amount is the tickets' prices and never exceeds what
    was captured minus what is refunded or being refunded. Capacity is released only when
    the gateway confirms the refund (`refund_process`). A buyer (`by_buyer`) may ask only
    until `REFUND_CUTOFF_HOURS` before the event starts; the organizer at any time.
    `cause=event_cancelled` refunds a payment once at most.
    """
    if by_buyer:
        cutoff = booking.event.starts_at - timedelta(hours=settings.REFUND_CUTOFF_HOURS)
        if timezone.now() >= cutoff:
            raise RefundWindowClosed()
    wanted = None if tickets is None else _ticket_ids(tickets)
    with locking_atomic():
        # Lock order: Booking -> Payment (-> Refund): every refund of a payment is created under these locks.
        locked = Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
        if locked.status != Booking.Status.CONFIRMED:
            raise InvalidTransition(_("Only a confirmed booking can be refunded."))
        payment = (
            Payment.objects.select_for_update(no_key=True)
            .filter(booking_id=locked.pk, status__in=[P.CAPTURED, P.PARTIALLY_REFUNDED]).first()
        )
        if payment is None:
            raise InvalidTransition(_("This booking has no captured payment."))
        if cause == Refund.Cause.EVENT_CANCELLED and payment.refunds.filter(cause=cause).exists():
            raise AlreadyRefunded(_("This booking's refund for the cancelled event is already made."))
        chosen = _refundable_tickets(booking_id=locked.pk, wanted=wanted)
        return _refund_queue(payment=payment, tickets=chosen, amount=sum((t.price for t in chosen), Decimal("0.00")),
                             reason=reason, cause=cause)


def _ticket_ids(tickets: Sequence[Ticket | uuid.UUID | str]) -> set[uuid.UUID]:
    """The ids of the tickets asked for; bad input is refused before anything is locked."""
    try:
        wanted = {t.pk if isinstance(t, Ticket) else uuid.UUID(str(t)) for t in tickets}
    except ValueError:
        raise InvalidInput(_("Unknown ticket."), errors={"tickets": [_("Unknown ticket.")]}) from None
    if not wanted:
        message = _("Choose at least one ticket.")
        raise InvalidInput(message, errors={"tickets": [message]})
    return wanted


def _refundable_tickets(*, booking_id: uuid.UUID, wanted: set[uuid.UUID] | None) -> list[Ticket]:
    """The one check of what a new refund may take, shared by `refund_issue` and `refund_retry`.

    Call with the booking and its payment locked: every refund of the payment is created
    under those locks, so no other refund takes these tickets before the caller commits.
    A ticket may be refunded when it is issued in this booking and in no pending,
    succeeded or needs-attention refund. `wanted=None` takes every such ticket; otherwise
    exactly `wanted`, or `AlreadyRefunded` / `InvalidTransition`.
    """
    taken = set(tickets_in_refunds().filter(booking_id=booking_id).values_list("pk", flat=True))
    issued = {t.pk: t for t in Ticket.objects.filter(booking_id=booking_id, status=Ticket.Status.ISSUED)}
    if wanted is None:
        chosen = [ticket for pk, ticket in issued.items() if pk not in taken]
        if not chosen:
            raise AlreadyRefunded(_("Every ticket of this booking is already refunded or being refunded."))
        return chosen
    if wanted & taken:
        raise AlreadyRefunded()
    if not wanted <= issued.keys():
        raise InvalidTransition(_("Only issued tickets of this booking can be refunded."))
    return [issued[pk] for pk in sorted(wanted)]


def _refund_queue(*, payment: Payment, tickets: list[Ticket], amount: Decimal, reason: str, cause: str,
                  retry_of: Refund | None = None) -> Refund:
    """Create a pending refund and queue its gateway call after commit. Call under the payment's lock."""
    from payments.tasks import refund_process_task

    if amount > refundable_amount(payment):
        raise LimitExceeded(_("The refund would exceed the amount paid."))
    refund = Refund.objects.create(payment=payment, amount=amount, status=Refund.Status.PENDING,
                                   reason=reason[:300], cause=cause, retry_of=retry_of)
    refund.tickets.set(tickets)
    _on_commit_delay(refund_process_task, refund.pk)
    return refund


def refundable_amount(payment: Payment) -> Decimal:
    """Captured minus refunded, being refunded and refunded-but-unrecorded (failed refunds give their share back)."""
    taken = payment.refunds.filter(status__in=REFUND_HOLDS_TICKETS).aggregate(
        total=Sum("amount"))["total"] or Decimal("0.00")
    return payment.amount - taken


class _AlreadyDone(Exception):
    pass


def refund_process(*, refund_id: uuid.UUID | str) -> Refund:
    """Send a pending refund to the gateway; on success release its tickets' capacity.

    Idempotent: a refund no longer `pending` is left alone and the gateway call uses one
    key per refund. A refusal marks it `failed` (retryable with `refund_retry`); an
    unreachable gateway raises `GatewayUnavailable` for the task to retry. Once the
    gateway has given the money back the result is always recorded: `succeeded`, or
    `needs_attention` with the reason (logged as an error) when a rule refuses to record
    it. `Busy` or an unexpected error leaves it `pending` for the task or the reconciler
    to send again under the same key.
    """
    from payments.tasks import send_refund_confirmation

    refund = Refund.objects.select_related("payment__booking").get(pk=refund_id)
    if refund.status != Refund.Status.PENDING:
        return refund
    payment = refund.payment
    reference = ""
    if refund.amount > 0:
        try:
            reference = get_gateway().refund(reference=payment.gateway_reference, amount=refund.amount,
                                             idempotency_key=f"refund:{refund.pk}").reference
        except Declined as exc:
            logger.warning("refund %s refused by the gateway: %s", refund.pk, exc.code)
            with transaction.atomic():
                current = Refund.objects.select_for_update(no_key=True).get(pk=refund.pk)
                if current.status == Refund.Status.PENDING:
                    _refund_transition(refund.pk, Refund.Status.FAILED, failure_code=exc.code,
                                       failure_message=exc.message[:300])
            return Refund.objects.get(pk=refund.pk)
    try:
        with locking_atomic():
            tickets = list(refund.tickets.all())
            if tickets:
                tickets_release_sold(booking=payment.booking, tickets=tickets)
            locked_payment = Payment.objects.select_for_update(no_key=True).get(pk=payment.pk)
            current = Refund.objects.select_for_update(no_key=True).get(pk=refund.pk)
            if current.status != Refund.Status.PENDING:
                raise _AlreadyDone
            refund = _refund_transition(refund.pk, Refund.Status.SUCCEEDED, gateway_reference=reference)
            refunded = locked_payment.refunds.filter(status=Refund.Status.SUCCEEDED).aggregate(
                total=Sum("amount"))["total"] or Decimal("0.00")
            _payment_transition(payment.pk, P.REFUNDED if refunded >= payment.amount else P.PARTIALLY_REFUNDED)
            if tickets:
                _on_commit_delay(send_refund_confirmation, refund.pk)
    except _AlreadyDone:
        return Refund.objects.get(pk=refund_id)
    except Busy:
        raise
    except DomainError as exc:
        return _refund_not_recorded(refund_id=refund.pk, reference=reference, error=exc)
    return refund


def _refund_not_recorded(*, refund_id: uuid.UUID, reference: str, error: DomainError) -> Refund:
    """The gateway refunded but a rule refused to record it: `needs_attention`, unless another run recorded it."""
    with transaction.atomic():
        current = Refund.objects.select_for_update(no_key=True).get(pk=refund_id)
        if current.status != Refund.Status.PENDING:
            return current  # a concurrent run of the task recorded it first (hence the refusal)
        message = _("Refunded at the gateway but not recorded: %(reason)s") % {"reason": error.detail}
        refund = _refund_transition(refund_id, Refund.Status.NEEDS_ATTENTION, gateway_reference=reference,
                                    failure_code="not_recorded", failure_message=message[:300])
    logger.error("refund %s needs attention: refunded at the gateway (%s) but not recorded: %s",
                 refund_id, reference or "no gateway call", error.detail)
    return refund


def refund_retry(*, refund: Refund) -> Refund:
    """Try a failed refund again, once: a new pending refund for the same tickets (the failed one stays on record).

    `AlreadyRefunded` when one of its tickets is meanwhile in another pending, succeeded
    or needs-attention refund: the check of `refund_issue`, under the same locks, so a
    ticket never goes to the gateway twice.
    """
    booking_id = Refund.objects.filter(pk=refund.pk).values_list("payment__booking_id", flat=True).get()
    with locking_atomic():
        Booking.objects.select_for_update(no_key=True).get(pk=booking_id)
        payment = Payment.objects.select_for_update(no_key=True).get(pk=refund.payment_id)
        failed = Refund.objects.select_for_update(no_key=True).get(pk=refund.pk)
        if failed.status != Refund.Status.FAILED or failed.retries.exists():
            raise InvalidTransition(_("Only a failed refund can be tried again, once."))
        wanted = set(failed.tickets.values_list("pk", flat=True))
        tickets = _refundable_tickets(booking_id=booking_id, wanted=wanted) if wanted else []
        return _refund_queue(payment=payment, tickets=tickets, amount=failed.amount, reason=failed.reason,
                             cause=failed.cause, retry_of=failed)
