"""A mock gateway that behaves like a real card processor, for development and tests.

It keeps its own records (`MockCharge`, `MockOperation`) so capture, void and
refund work by reference from any process; a repeated idempotency key replays
the first outcome. Test cards (any future expiry, any 3-4 digit CVC):

    4111111111111111, 4242424242424242   success
    4000000000000002   declined: card_declined
    4000000000009995   declined: insufficient_funds
    4000000000000069   declined: expired_card
    4000000000000127   declined: incorrect_cvc
    4000000000000119   authorized; capture completes after PAYMENT_CAPTURE_DELAY_SECONDS
    4000000000006660   captured; every refund fails (refund_failed)
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from payments.gateway import Authorization, Capture, Card, Declined, Gateway, RefundResult, card_errors
from payments.models import MockCharge, MockOperation

DECLINES = {
    "4000000000000002": ("card_declined", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": ("expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "Your card's security code is incorrect."),
}
BEHAVIOURS = {"4000000000000119": "slow_capture", "4000000000006660": "refund_fails"}


class MockGateway(Gateway):
    @sensitive_variables("card")
    def authorize(self, *, card: Card, amount: Decimal, currency: str, idempotency_key: str) -> Authorization:
        replay = self._replay(idempotency_key)
        if replay is not None:
            return Authorization(**replay)
        errors = card_errors(card, today=timezone.localdate())
        if errors:
            field = next(iter(errors))
            code = {"card_number": "invalid_number", "cvc": "invalid_cvc"}.get(field, "invalid_expiry")
            raise Declined(code, errors[field][0])
        if card.digits in DECLINES:
            raise Declined(*DECLINES[card.digits])
        try:
            with transaction.atomic():
                charge = MockCharge.objects.create(
                    reference=f"ch_{secrets.token_hex(12)}", amount=amount, currency=currency,
                    card_brand=card.brand, card_last4=card.last4, behaviour=BEHAVIOURS.get(card.digits, ""),
                )
                result = {"reference": charge.reference, "brand": charge.card_brand, "last4": charge.card_last4}
                self._record(idempotency_key, "authorize", charge.reference, result)
        except IntegrityError:
            # The same key raced in from elsewhere and won: answer with its outcome.
            return Authorization(**self._replay(idempotency_key))
        return Authorization(**result)

    def capture(self, *, reference: str, amount: Decimal, idempotency_key: str) -> Capture:
        now = timezone.now()
        with transaction.atomic():
            charge = self._charge(reference)
            replay = self._replay(idempotency_key)
            if replay is not None:
                return Capture(**replay)
            if charge.status != MockCharge.Status.AUTHORIZED:
                raise Declined(f"already_{charge.status}",
                               f"This charge is already {charge.status}.")
            if amount > charge.amount:
                raise Declined("amount_too_large",
                               "Cannot capture more than was authorized.")
            if charge.behaviour == "slow_capture":
                delay = timedelta(seconds=settings.PAYMENT_CAPTURE_DELAY_SECONDS)
                if charge.capture_requested_at is None:
                    charge.capture_requested_at = now
                    charge.save(update_fields=["capture_requested_at"])
                ready_at = charge.capture_requested_at + delay
                if now < ready_at:
                    return Capture(reference=reference, status="pending",
                                   retry_after=max(1, int((ready_at - now).total_seconds() + 0.999)))
            charge.status = MockCharge.Status.CAPTURED
            charge.captured_amount = amount
            charge.capture_count += 1
            charge.save(update_fields=["status", "captured_amount", "capture_count"])
            result = {"reference": reference, "status": "succeeded"}
            self._record(idempotency_key, "capture", reference, result)
        return Capture(**result)

    def void(self, *, reference: str, idempotency_key: str) -> None:
        with transaction.atomic():
            charge = self._charge(reference)
            if self._replay(idempotency_key) is not None:
                return
            if charge.status == MockCharge.Status.CAPTURED:
                raise Declined("already_captured",
                               "A captured charge cannot be voided; refund it.")
            charge.status = MockCharge.Status.VOIDED
            charge.save(update_fields=["status"])
            self._record(idempotency_key, "void", reference, {})

    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        with transaction.atomic():
            charge = self._charge(reference)
            replay = self._replay(idempotency_key)
            if replay is not None:
                return RefundResult(**replay)
            if charge.behaviour == "refund_fails":
                raise Declined("refund_failed",
                               "The card issuer refused the refund.")
            if charge.status != MockCharge.Status.CAPTURED:
                raise Declined("not_captured", "Nothing was captured.")
            if amount <= 0 or charge.refunded_amount + amount > charge.captured_amount:
                raise Declined("amount_too_large",
                               "Refunds cannot exceed the captured amount.")
            charge.refunded_amount += amount
            charge.refund_count += 1
            charge.save(update_fields=["refunded_amount", "refund_count"])
            result = {"reference": f"re_{secrets.token_hex(12)}"}
            self._record(idempotency_key, "refund", reference, result)
        return RefundResult(**result)

    # --- records ----------------------------------------------------------------

    @staticmethod
    def _charge(reference: str) -> MockCharge:
        try:
            return MockCharge.objects.select_for_update(no_key=True).get(reference=reference)
        except MockCharge.DoesNotExist:
            raise Declined("no_such_charge", "Unknown charge reference.") from None

    @staticmethod
    def _replay(idempotency_key: str) -> dict | None:
        """The recorded outcome of a successful call with this key (declines are not recorded:
        they are evaluated again, with the same answer for the same card)."""
        op = MockOperation.objects.filter(idempotency_key=idempotency_key).first()
        return None if op is None else op.outcome

    @staticmethod
    def _record(idempotency_key: str, operation: str, reference: str, outcome: dict) -> None:
        MockOperation.objects.create(idempotency_key=idempotency_key, operation=operation,
                                     reference=reference, outcome=outcome)
