"""Payment use cases: authorize, capture, void, refund, reconcile (DESIGN.md sections 5 and 7).

Gateway calls are network calls: they never run inside a transaction or
while a row is locked. Each carries an idempotency key derived from our row
(`payment:<id>:capture`, `refund:<id>`), so a retried task or a crash between
the call and the write that records it never moves money twice. The write
after the call is a short transaction that locks in the global order
(Event -> TicketType -> Booking -> Payment -> Refund), re-checks the state
and does nothing when another run got there first.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from bookings.models import Booking, Ticket
from bookings.services import (
    booking_cancel,
    booking_confirm,
    booking_fail_payment,
    booking_start_payment,
    event_cancel,
    tickets_release_sold,
)
from core.db import locking_atomic
from core.errors import (
    AlreadyRefunded,
    Busy,
    DomainError,
    HoldExpired,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    PaymentAttemptsExceeded,
    PaymentDeclined,
    PaymentUnavailable,
    RefundWindowClosed,
    TooManyDeclines,
)
from events.models import Event
from payments.gateway import Card, Declined, GatewayUnavailable, card_errors, get_gateway
from payments.models import Payment, Refund
from payments.selectors import (
    REFUND_HOLDS_TICKETS,
    bookings_awaiting_cancellation_refund,
    payments_stuck_authorized,
    refunds_stuck_pending,
    stuck_cutoff,
    tickets_in_refunds,
)

logger = logging.getLogger(__name__)

P = Payment.Status
# Every legal payment transition; anything else raises InvalidTransition.
PAYMENT_TRANSITIONS = {
    P.PENDING: {P.AUTHORIZED, P.FAILED},
    P.AUTHORIZED: {P.CAPTURED, P.VOIDED},
    P.CAPTURED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    P.PARTIALLY_REFUNDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
}
REFUND_TRANSITIONS = {
    Refund.Status.PENDING: {Refund.Status.SUCCEEDED, Refund.Status.FAILED, Refund.Status.NEEDS_ATTENTION},
}


class CapturePending(Exception):
    """The processor is still working on a capture: ask again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"capture pending, retry in {retry_after}s")


def _transition(model, transitions: dict, pk: uuid.UUID, to: str, **fields):
    """Lock a row and move it to `to`, or raise `InvalidTransition`. Call inside a transaction."""
    locked = model.objects.select_for_update(no_key=True).get(pk=pk)
    if to not in transitions.get(locked.status, set()):
        raise InvalidTransition(
            _("A %(from)s %(what)s cannot become %(to)s.")
            % {"from": locked.status, "what": model._meta.verbose_name, "to": to}
        )
    for name, value in {"status": to, **fields}.items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", "updated_at", *fields])
    return locked


def _payment_transition(payment_id: uuid.UUID, to: str, **fields) -> Payment:
    return _transition(Payment, PAYMENT_TRANSITIONS, payment_id, to, **fields)


def _refund_transition(refund_id: uuid.UUID, to: str, **fields) -> Refund:
    return _transition(Refund, REFUND_TRANSITIONS, refund_id, to, **fields)


def _on_commit_delay(task, *args) -> None:
    transaction.on_commit(partial(task.delay, *[str(a) for a in args]))


# --- Authorize (in the request) ----------------------------------------------------------


@sensitive_variables("card")
def payment_authorize(*, booking: Booking, card: Card, client_ip: str | None = None) -> Payment:
    """Authorize the card for the booking's total and move the booking to `processing`.

    Declines are answered at once (`PaymentDeclined` with the gateway's code)
    and leave the booking `reserved`, so the buyer can try another card until
    the hold expires. If the hold expired meanwhile, the authorization is
    voided and `HoldExpired` raised: nothing stays authorized. On success the
    capture is queued after commit.

    Card testing is bounded twice. A booking's `PAYMENT_DECLINES_PER_BOOKING`-th
    decline releases its hold (`booking_cancel`), and it and every later attempt
    raise `TooManyDeclines`. A client address (`client_ip`, from
    `core.client_ip.client_ip` at each door) with
    `PAYMENT_DECLINES_PER_IP_PER_HOUR` declines in the current clock hour is
    refused before the gateway is called (`PaymentAttemptsExceeded`, with
    `retry_after`); callers without an address (internal ones) skip that limit.
    """
    from payments.tasks import payment_capture_task

    errors = card_errors(card, today=timezone.localdate())
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], errors=errors)
    current = Booking.objects.get(pk=booking.pk)
    if current.status in (Booking.Status.RESERVED, Booking.Status.CANCELLED) and _declines_left(current) <= 0:
        _release_declined_hold(booking)  # normally done by the last decline; again if it found the rows busy
        raise TooManyDeclines()
    _check_payable(current)
    ip_budget = _ip_decline_take(client_ip)
    payment = Payment.objects.create(
        booking=current, amount=current.total, currency=current.currency, status=P.PENDING,
        card_brand=card.brand, card_last4=card.last4,
    )
    gateway = get_gateway()
    try:
        auth = gateway.authorize(card=card, amount=payment.amount, currency=payment.currency,
                                 idempotency_key=f"payment:{payment.pk}:authorize")
    except Declined as exc:
        with transaction.atomic():
            _payment_transition(payment.pk, P.FAILED, failure_code=exc.code, failure_message=exc.message[:300])
        if _declines_left(current) <= 0:
            _release_declined_hold(booking)
            raise TooManyDeclines(
                _("%(decline)s After %(count)d declined payments this reservation has been released; "
                  "choose your tickets again to pay with another card.")
                % {"decline": exc.message, "count": settings.PAYMENT_DECLINES_PER_BOOKING}
            ) from None
        raise PaymentDeclined(exc.message, code=exc.code) from None
    except GatewayUnavailable:
        _ip_decline_give_back(ip_budget)
        logger.exception("gateway unavailable while authorizing payment %s", payment.pk)
        with transaction.atomic():
            _payment_transition(payment.pk, P.FAILED, failure_code="gateway_unavailable",
                                failure_message="The payment processor could not be reached.")
        raise PaymentUnavailable() from None
    _ip_decline_give_back(ip_budget)
    try:
        with locking_atomic():
            booking_start_payment(booking=current)
            payment = _payment_transition(payment.pk, P.AUTHORIZED, gateway_reference=auth.reference)
            _on_commit_delay(payment_capture_task, payment.pk)
    except (HoldExpired, InvalidTransition, Busy):
        # The booking cannot take this payment any more: release the money now.
        with transaction.atomic():
            _payment_transition(payment.pk, P.AUTHORIZED, gateway_reference=auth.reference)
        try:
            _void(payment.pk)
        except GatewayUnavailable:
            logger.exception("could not void payment %s now; payments_reconcile will", payment.pk)
        raise
    booking.refresh_from_db()
    return payment


# Failed payments that are no decline of the card: they count against no limit.
_NOT_DECLINES = ("gateway_unavailable", "abandoned")


def _declines_left(booking: Booking) -> int:
    """How many more declined payments the booking may have before its hold is released."""
    limit = settings.PAYMENT_DECLINES_PER_BOOKING
    if limit <= 0:
        return 1
    declined = (Payment.objects.filter(booking_id=booking.pk, status=P.FAILED)
                .exclude(failure_code__in=_NOT_DECLINES).count())
    return limit - declined


def _release_declined_hold(booking: Booking) -> None:
    """Release the hold of a booking out of declines, through the service every cancellation uses."""
    try:
        booking_cancel(booking=booking)
    except InvalidTransition:
        pass  # no longer held: expired, cancelled, or paid meanwhile
    except Busy:
        logger.warning("booking %s is out of declines but its rows are busy; the next attempt releases it",
                       booking.pk)


def _ip_decline_take(client_ip: str | None) -> str | None:
    """Take one of the address's declines of this clock hour before the gateway call, or raise
    `PaymentAttemptsExceeded`. Counted in the cache with an atomic increment, so concurrent attempts
    cannot all pass one check; an attempt that is not declined gives its share back. Returns the
    counter's key (None: not counted)."""
    limit = settings.PAYMENT_DECLINES_PER_IP_PER_HOUR
    if not client_ip or limit <= 0:
        return None
    now = int(timezone.now().timestamp())
    key = f"payments:declines:{client_ip}:{now // 3600}"
    cache.add(key, 0, timeout=2 * 3600)
    try:
        taken = cache.incr(key)
    except ValueError:  # the entry expired between add and incr
        cache.set(key, 1, timeout=2 * 3600)
        taken = 1
    if taken > limit:
        _ip_decline_give_back(key)
        retry_after = 3600 - now % 3600
        minutes = (retry_after + 59) // 60
        raise PaymentAttemptsExceeded(
            ngettext("Too many declined payments came from your address this hour; nothing was charged. "
                     "Please try again in %(minutes)d minute.",
                     "Too many declined payments came from your address this hour; nothing was charged. "
                     "Please try again in %(minutes)d minutes.", minutes) % {"minutes": minutes},
            retry_after=retry_after,
        )
    return key


def _ip_decline_give_back(key: str | None) -> None:
    if key is not None:
        with contextlib.suppress(ValueError):  # expired meanwhile: nothing to give back
            cache.decr(key)


def _check_payable(booking: Booking) -> None:
    """Fail fast, before calling the gateway; `booking_start_payment` re-checks under the lock."""
    if booking.status == Booking.Status.EXPIRED or (
        booking.status == Booking.Status.RESERVED and booking.expires_at <= timezone.now()
    ):
        raise HoldExpired()
    if booking.status != Booking.Status.RESERVED:
        raise InvalidTransition(_("This booking is not awaiting payment."))


def _void(payment_id: uuid.UUID) -> None:
    """Void an authorization at the gateway, then record it (`authorized` -> `voided`)."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != P.AUTHORIZED:
        return
    try:
        get_gateway().void(reference=payment.gateway_reference, idempotency_key=f"payment:{payment.pk}:void")
    except Declined as exc:
        logger.error("void of payment %s refused: %s", payment.pk, exc.code)
        return
    with transaction.atomic():
        current = Payment.objects.select_for_update(no_key=True).get(pk=payment_id)
        if current.status == P.AUTHORIZED:
            _payment_transition(payment_id, P.VOIDED)


# --- Capture (task) ------------------------------------------------------------------------


def payment_capture(*, payment_id: uuid.UUID | str) -> Payment:
    """Capture an authorized payment, confirm its booking and queue the confirmation e-mail.

    Idempotent: a payment no longer `authorized` is left alone, and the gateway
    capture uses one key per payment, so running this twice captures once and
    confirms once. A booking that can no longer be confirmed (event cancelled,
    booking moved on) has its authorization voided, or its capture refunded,
    and its hold released. Raises `CapturePending` while the processor works,
    `GatewayUnavailable` when it cannot be reached (the task retries both).
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
    # Not (or no longer) processing: nothing is held for this payment.
    with contextlib.suppress(InvalidTransition):
        booking_fail_payment(booking=booking)


# --- Refunds ---------------------------------------------------------------------------------


def refund_issue(*, booking: Booking, tickets: Sequence[Ticket | uuid.UUID | str] | None = None,
                 reason: str = "", by_buyer: bool = False, cause: str = Refund.Cause.REQUESTED) -> Refund:
    """Refund issued tickets of a confirmed booking (all that are free by default); the gateway call is queued.

    A ticket already in a pending, succeeded or needs-attention refund is
    never taken again (`AlreadyRefunded`): the one check `refund_retry` makes
    too, under the same locks. The amount is the tickets' prices and never
    exceeds what was captured minus what is refunded or being refunded.
    Capacity is released only when the gateway confirms the refund
    (`refund_process`). A buyer (`by_buyer`) may ask only until
    `REFUND_CUTOFF_HOURS` before the event starts; the organizer may refund at
    any time. `cause=event_cancelled` refunds a payment once at most.
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

    Call with the booking and its payment locked: every refund of the payment
    is created under those locks, so no other refund takes these tickets
    before the caller's commits (a pending refund can only fail meanwhile,
    which frees tickets, never takes them). A ticket may be refunded when it
    is issued in this booking and in no pending, succeeded or needs-attention
    refund. `wanted=None` takes every such ticket; otherwise exactly `wanted`,
    or `AlreadyRefunded` / `InvalidTransition`.
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

    Idempotent: a refund no longer `pending` is left alone and the gateway call
    uses one key per refund. A refusal marks the refund `failed` (visible to
    the organizer, retryable with `refund_retry`); an unreachable gateway
    raises `GatewayUnavailable` for the task to retry. Once the gateway has
    given the money back, the result is always recorded: `succeeded`, or, when
    a rule refuses to record it (its tickets were refunded by another refund,
    the payment cannot move on), `needs_attention` with the reason, logged as
    an error and shown to the organizer. A lock timeout (`Busy`) or an
    unexpected error leaves it `pending`: the task retries, the reconciler
    re-queues it, and the gateway answers the same key with the same refund.
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

    Refused with `AlreadyRefunded` when one of its tickets is meanwhile in
    another pending, succeeded or needs-attention refund (the buyer asked
    again, the event was cancelled): the same check as `refund_issue`, under
    the same locks, so a ticket never goes to the gateway twice.
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


def event_cancel_and_refund(*, event: Event, reason: str = "") -> list[Refund]:
    """Cancel an event: holds released at once, every confirmed booking refunded (queued) exactly once.

    Resumable. The cancellation commits first; then each booking's refund is
    queued in its own transaction. If that stops half-way (a crash, a lost
    worker), calling this again on the cancelled event, or the reconciler
    (`payments_reconcile`), queues the refunds still missing: a captured
    payment gets one cancellation refund at most (checked under the booking's
    lock, backed by a unique constraint). So cancelling an event that is
    already cancelled is no error: it resumes and returns what it queued.
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


# --- Reconciliation (beat) ------------------------------------------------------------


@dataclass
class Reconciled:
    captures_requeued: int = 0
    refunds_requeued: int = 0
    cancellation_refunds_queued: int = 0
    bookings_released: int = 0
    payments_abandoned: int = 0


def payments_reconcile() -> Reconciled:
    """Put stuck work back on track.

    Captures and refunds not finished `PAYMENT_STUCK_AFTER_SECONDS` after
    their last change are queued again (their tasks are idempotent);
    `processing` bookings whose payment failed or was voided are cancelled and
    their holds released; payments stuck `pending` (an authorization that
    crashed mid-request) are marked failed; confirmed bookings of events
    cancelled before that deadline that still have no cancellation refund (an
    `event_cancel_and_refund` that stopped half-way) get it, once.
    """
    from payments.tasks import payment_capture_task, refund_process_task

    result = Reconciled()
    cutoff = stuck_cutoff()
    for pk in payments_stuck_authorized().values_list("pk", flat=True):
        payment_capture_task.delay(str(pk))
        result.captures_requeued += 1
    for pk in refunds_stuck_pending().values_list("pk", flat=True):
        refund_process_task.delay(str(pk))
        result.refunds_requeued += 1
    result.cancellation_refunds_queued = len(_refund_cancelled_bookings(cancelled_before=cutoff))
    for pk in Payment.objects.filter(status=P.PENDING, updated_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            if Payment.objects.select_for_update(no_key=True).filter(pk=pk, status=P.PENDING).exists():
                _payment_transition(pk, P.FAILED, failure_code="abandoned",
                                    failure_message="The authorization did not complete.")
                result.payments_abandoned += 1
    orphaned = Booking.objects.filter(status=Booking.Status.PROCESSING, updated_at__lt=cutoff).exclude(
        Q(payments__status__in=[P.PENDING, P.AUTHORIZED, P.CAPTURED])
    )
    for booking in orphaned:
        try:
            booking_fail_payment(booking=booking)
            result.bookings_released += 1
        except (InvalidTransition, DomainError):
            continue
    return result
