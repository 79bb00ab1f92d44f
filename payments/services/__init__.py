"""Payment use cases: authorize, capture, void, refund, cancel with refunds, reconcile (DESIGN.md sections 5, 7).

Gateway calls are network calls: never inside a transaction or under a row lock. Each
carries an idempotency key derived from our row (`payment:<id>:capture`, `refund:<id>`),
so a retried task or a crash between the call and its record never moves money twice.
The write after a call is a short transaction that locks in the global order
(Event -> TicketType -> Booking -> Payment -> Refund), re-checks the state and does
nothing when another run got there first.

    authorize.py       payment_authorize (in the request); voiding an authorization
    declines.py        card-testing bounds: declines per booking and per client address
    capture.py         payment_capture (a task), CapturePending
    refunds.py         refund_issue, refund_process (a task), refund_retry, refundable_amount
    cancellation.py    event_cancel_and_refund
    reconciliation.py  payments_reconcile (the beat)
    transitions.py     the legal payment and refund state changes
"""

from payments.services.authorize import payment_authorize
from payments.services.cancellation import event_cancel_and_refund
from payments.services.capture import CapturePending, payment_capture
from payments.services.reconciliation import Reconciled, payments_reconcile
from payments.services.refunds import refund_issue, refund_process, refund_retry, refundable_amount
from payments.services.transitions import (
    PAYMENT_TRANSITIONS,
    REFUND_TRANSITIONS,
    _payment_transition,
    _refund_transition,
)

__all__ = [
    "PAYMENT_TRANSITIONS",
    "REFUND_TRANSITIONS",
    "CapturePending",
    "Reconciled",
    "_payment_transition",
    "_refund_transition",
    "event_cancel_and_refund",
    "payment_authorize",
    "payment_capture",
    "payments_reconcile",
    "refund_issue",
    "refund_process",
    "refund_retry",
    "refundable_amount",
]
