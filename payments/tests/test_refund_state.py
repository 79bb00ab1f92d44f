"""`booking_refund_state`: the one reading of a booking's refunds that its pages show."""

from decimal import Decimal
from unittest import mock

import pytest

from bookings.tests.factories import make_booking
from events.tests.factories import TicketTypeFactory
from payments.gateway import Declined
from payments.mock_gateway import MockGateway
from payments.models import Refund
from payments.selectors import booking_refund_state
from payments.services import payment_authorize, refund_issue, refund_process, refund_retry
from payments.tests.conftest import card

# Real commits: the capture and refund tasks run (eagerly) when the service's transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)

REFUSING_CARD = "4000000000006660"  # the mock gateway refuses every refund of it


@pytest.fixture
def tt():
    return TicketTypeFactory(capacity=10, price=Decimal("25.00"))


def paid_booking(tt, n=2, number="4111111111111111"):
    booking = make_booking(items=[(tt, n)])
    payment_authorize(booking=booking, card=card(number))
    booking.refresh_from_db()
    return booking


def refund_queued(booking, **kwargs) -> Refund:
    """A refund created but not yet sent to the gateway (its task not run)."""
    with mock.patch("payments.tasks.refund_process_task.delay"):
        return refund_issue(booking=booking, **kwargs)


def test_a_booking_without_refunds_may_ask_for_one(tt):
    state = booking_refund_state(paid_booking(tt))
    assert (state.state, state.refund, state.being_refunded, state.may_request) == ("none", None, frozenset(), True)


def test_a_queued_refund_is_pending_with_its_tickets_being_refunded_and_no_second_request(tt):
    booking = paid_booking(tt, 2)
    refund = refund_queued(booking)

    state = booking_refund_state(booking)

    assert (state.state, state.refund, state.may_request) == ("pending", refund, False)
    assert state.being_refunded == {t.pk for t in booking.tickets.all()}


def test_a_refund_the_gateway_made_succeeded(tt):
    booking = paid_booking(tt, 2)
    refund = refund_issue(booking=booking)

    state = booking_refund_state(booking)

    assert (state.state, state.refund, state.being_refunded) == ("succeeded", refund, frozenset())


def test_a_partial_refund_that_succeeded_still_lets_the_rest_be_refunded(tt):
    booking = paid_booking(tt, 2)
    refund_issue(booking=booking, tickets=[booking.tickets.first()])
    assert booking_refund_state(booking).may_request


def test_a_refund_the_gateway_refused_is_failed_and_not_offered_again(tt):
    booking = paid_booking(tt, 2, number=REFUSING_CARD)
    refund = refund_issue(booking=booking)

    state = booking_refund_state(booking)

    assert (state.state, state.refund, state.may_request, state.being_refunded) == (
        "failed", refund, False, frozenset())


def test_a_retried_failed_refund_reads_as_the_retry(tt):
    booking = paid_booking(tt, 1)
    with mock.patch.object(MockGateway, "refund", side_effect=Declined("refund_failed", "Issuer unavailable")):
        failed = refund_issue(booking=booking)
    with mock.patch("payments.tasks.refund_process_task.delay"):
        retry = refund_retry(refund=failed)
    assert booking_refund_state(booking).state == "pending"

    refund_process(refund_id=retry.pk)

    state = booking_refund_state(booking)
    assert (state.state, state.refund) == ("succeeded", retry)


def test_a_failed_refund_whose_tickets_were_refunded_since_no_longer_counts(tt):
    booking = paid_booking(tt, 1)
    with mock.patch.object(MockGateway, "refund", side_effect=Declined("refund_failed", "Issuer unavailable")):
        refund_issue(booking=booking)
    later = refund_issue(booking=booking)  # the organizer refunded the tickets another way

    state = booking_refund_state(booking)
    assert (state.state, state.refund) == ("succeeded", later)


def test_a_refund_the_shop_could_not_record_needs_attention(tt):
    booking = paid_booking(tt, 1)
    refund = refund_queued(booking)
    Refund.objects.filter(pk=refund.pk).update(status=Refund.Status.NEEDS_ATTENTION)

    state = booking_refund_state(booking)
    assert (state.state, state.refund, state.may_request) == ("needs_attention", refund, False)


def test_reading_the_state_takes_two_queries(tt, django_assert_num_queries):
    booking = paid_booking(tt, 2)
    refund_queued(booking)
    with django_assert_num_queries(2):
        booking_refund_state(booking)
