"""The legal state changes of payments and refunds, made under a row lock."""

from __future__ import annotations

import uuid
from functools import partial

from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import InvalidTransition
from payments.models import Payment, Refund

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
    """Queue `task` with `args` (as strings) once the current transaction commits."""
    transaction.on_commit(partial(task.delay, *[str(a) for a in args]))
