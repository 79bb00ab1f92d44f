"""Authorizing a card in the request, and voiding an authorization."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from bookings.models import Booking
from bookings.services import booking_start_payment
from core.db import locking_atomic
from core.errors import (
    Busy,
    HoldExpired,
    InvalidInput,
    InvalidTransition,
    PaymentDeclined,
    PaymentUnavailable,
    TooManyDeclines,
)
from payments.gateway import Card, Declined, GatewayUnavailable, card_errors, get_gateway
from payments.models import Payment
from payments.services.declines import _declines_left, _ip_decline_give_back, _ip_decline_take, _release_declined_hold
from payments.services.transitions import P, _on_commit_delay, _payment_transition

logger = logging.getLogger(__name__)


@sensitive_variables("card")
def payment_authorize(*, booking: Booking, card: Card, client_ip: str | None = None) -> Payment:
    """Authorize the card for the booking's total and move the booking to `processing`.

    A decline raises `PaymentDeclined` (the gateway's code) and leaves the booking
    `reserved`, so the buyer can try another card until the hold expires. If the hold
    expired meanwhile, the authorization is voided and `HoldExpired` raised: nothing
    stays authorized. On success the capture is queued after commit.

    Card testing is bounded twice. The `PAYMENT_DECLINES_PER_BOOKING`-th decline of a
    booking releases its hold, and it and every later attempt raise `TooManyDeclines`.
    A client address (`client_ip`) with `PAYMENT_DECLINES_PER_IP_PER_HOUR` declines this
    clock hour is refused before the gateway is called (`PaymentAttemptsExceeded`, with
    `retry_after`); callers without an address skip that limit.
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
