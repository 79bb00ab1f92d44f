"""Card testing through the API door: `POST /bookings/{id}/pay/` answers the decline limits as problem details.

Per booking: 409 `too_many_declines` (the hold is released); per client
address and hour: 429 `payment_attempts_exceeded` with `Retry-After`. The
address is `core.client_ip.client_ip`, so a forged X-Forwarded-For
changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from payments.models import MockCharge

pytestmark = pytest.mark.django_db
API = "/api/v1"
DECLINED = {"card_number": "4000000000000002", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
GOOD = {**DECLINED, "card_number": "4111111111111111"}


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.PAYMENT_DECLINES_PER_BOOKING = 5
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 20
    settings.TRUSTED_PROXY_COUNT = 0
    generous = {"anon": "1000/min", "user": "1000/min", "ip": "1000/min", "bookings": "1000/min", "pay": "1000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": generous}


@pytest.fixture
def tt():
    return new_ticket_type()


def new_ticket_type():
    """On sale from now (as moved by time_machine, if it was)."""
    return TicketTypeFactory(event=EventFactory(capacity=None), capacity=100, price=Decimal("10.00"))


def pay(client, booking, body, **extra):
    return client.post(f"{API}/bookings/{booking.pk}/pay/?token={booking.access_token}", body, **extra)


def test_five_declines_release_the_hold_and_a_sixth_attempt_is_refused(client_for, tt, assert_problem):
    buyer = UserFactory()
    client = client_for(buyer)
    booking = make_booking(items=[(tt, 2)], buyer=buyer)

    assert [pay(client, booking, DECLINED).status_code for _ in range(4)] == [402] * 4
    fifth = assert_problem(pay(client, booking, DECLINED), 409, "too_many_declines")
    assert "released" in fifth["detail"]
    assert client.get(f"{API}/bookings/{booking.pk}/").json()["status"] == "cancelled"

    sixth = pay(client, booking, GOOD)
    assert_problem(sixth, 409, "too_many_declines")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert booking.payments.count() == 5


def test_a_different_booking_from_the_same_address_is_refused_after_the_hourly_limit(
        client_for, settings, assert_problem, time_machine):
    time_machine.move_to("2030-01-01 12:59:30Z", tick=False)
    tt = new_ticket_type()
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 2
    guest = client_for()
    first, second = make_booking(items=[(tt, 1)]), make_booking(items=[(tt, 1)])
    for _ in range(2):  # rotating X-Forwarded-For changes nothing with no trusted proxy
        assert pay(guest, first, DECLINED, REMOTE_ADDR="192.0.2.5", HTTP_X_FORWARDED_FOR=f"203.0.113.{_}"
                   ).status_code == 402
    charges = MockCharge.objects.count()

    refused = pay(guest, second, GOOD, REMOTE_ADDR="192.0.2.5", HTTP_X_FORWARDED_FOR="203.0.113.77")

    assert_problem(refused, 429, "payment_attempts_exceeded")
    assert refused["Retry-After"] == "30"
    assert MockCharge.objects.count() == charges
    second.refresh_from_db()
    assert second.status == Booking.Status.RESERVED
    assert pay(guest, second, GOOD, REMOTE_ADDR="192.0.2.6").status_code == 202  # another address


def test_behind_a_trusted_proxy_the_address_it_saw_is_limited(client_for, tt, settings, assert_problem):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 1
    guest = client_for()
    first, second = make_booking(items=[(tt, 1)]), make_booking(items=[(tt, 1)])
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}

    assert pay(guest, first, DECLINED, **via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 402
    assert_problem(pay(guest, second, GOOD, **via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.1, 198.51.100.7"),
                   429, "payment_attempts_exceeded")
    assert pay(guest, second, GOOD, **via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 202


def test_a_refusal_by_the_address_limit_is_not_kept_under_its_idempotency_key(
        client_for, settings, time_machine):
    time_machine.move_to("2030-01-01 12:50Z", tick=False)
    tt = new_ticket_type()
    settings.PAYMENT_DECLINES_PER_IP_PER_HOUR = 1
    guest = client_for()
    first, second = make_booking(items=[(tt, 1)]), make_booking(items=[(tt, 1)])
    assert pay(guest, first, DECLINED).status_code == 402
    assert pay(guest, second, GOOD, HTTP_IDEMPOTENCY_KEY="pay-second").status_code == 429

    time_machine.move_to("2030-01-01 13:00:01Z", tick=False)
    retried = pay(guest, second, GOOD, HTTP_IDEMPOTENCY_KEY="pay-second")

    assert retried.status_code == 202, retried.content
    assert "Idempotent-Replayed" not in retried
