from decimal import Decimal

import pytest
from django.db import transaction

from bookings.tests.factories import make_booking
from core.errors import InvalidTransition
from events.tests.factories import TicketTypeFactory
from payments.models import Payment, Refund
from payments.services import PAYMENT_TRANSITIONS, _payment_transition, _refund_transition

pytestmark = pytest.mark.django_db

ALL_PAYMENT = list(Payment.Status)


@pytest.fixture
def payment():
    booking = make_booking(items=[(TicketTypeFactory(), 1)])
    return Payment.objects.create(booking=booking, amount=Decimal("1.00"), currency="EUR")


@pytest.mark.parametrize("start", ALL_PAYMENT)
@pytest.mark.parametrize("to", ALL_PAYMENT)
def test_every_payment_transition_outside_the_state_machine_raises(payment, start, to):
    Payment.objects.filter(pk=payment.pk).update(status=start)
    with transaction.atomic():
        if to in PAYMENT_TRANSITIONS.get(start, set()):
            assert _payment_transition(payment.pk, to).status == to
            return
        with pytest.raises(InvalidTransition):
            _payment_transition(payment.pk, to)
    payment.refresh_from_db()
    assert payment.status == start


def test_the_payment_state_machine_is_the_designed_one():
    P = Payment.Status
    assert {
        P.PENDING: {P.AUTHORIZED, P.FAILED},
        P.AUTHORIZED: {P.CAPTURED, P.VOIDED},
        P.CAPTURED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
        P.PARTIALLY_REFUNDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    } == PAYMENT_TRANSITIONS


@pytest.mark.parametrize("start", [Refund.Status.SUCCEEDED, Refund.Status.FAILED, Refund.Status.NEEDS_ATTENTION])
@pytest.mark.parametrize("to", list(Refund.Status))
def test_a_finished_refund_never_changes(payment, start, to):
    refund = Refund.objects.create(payment=payment, amount=Decimal("1.00"))
    Refund.objects.filter(pk=refund.pk).update(status=start)
    with transaction.atomic(), pytest.raises(InvalidTransition):
        _refund_transition(refund.pk, to)


def test_a_pending_refund_cannot_go_back_to_pending(payment):
    refund = Refund.objects.create(payment=payment, amount=Decimal("1.00"))
    with transaction.atomic(), pytest.raises(InvalidTransition):
        _refund_transition(refund.pk, Refund.Status.PENDING)
