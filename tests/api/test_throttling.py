"""Throttling per user and per IP, tighter for bookings and pay (DESIGN.md sections 9 and 10).

Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (built from
API_THROTTLE_RATES); the project's throttles read them when a request comes,
so overriding the setting applies at once. Throttle history lives in the cache,
which the root conftest clears before every test. Time moves with time_machine.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from ticketing import settings as project_settings
from ticketing.settings import DEFAULT_THROTTLE_RATES, _throttle_rates

pytestmark = pytest.mark.django_db
API = "/api/v1"
GENEROUS = {"anon": "1000/min", "user": "1000/min", "ip": "1000/min", "bookings": "1000/min", "pay": "1000/min"}


@pytest.fixture
def rates(settings):
    """`rates(bookings="2/min", ...)`: these rates, generous ones for every other scope."""

    def apply(**overrides):
        merged = {**GENEROUS, **overrides}
        settings.API_THROTTLE_RATES = merged
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        return merged

    return apply


@pytest.fixture
def tt():
    return TicketTypeFactory(event=EventFactory(capacity=None), capacity=100, price=Decimal("10.00"))


def reserve(client, tt, **extra):
    body = {"event": str(tt.event_id), "items": [{"ticket_type": str(tt.pk), "quantity": 1}]}
    return client.post(f"{API}/bookings/", body, **extra)


def test_the_third_reservation_in_a_minute_is_429_with_retry_after(client_for, rates, assert_problem, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    tt = TicketTypeFactory(event=EventFactory(capacity=None), capacity=100)
    rates(bookings="2/min")
    client = client_for(UserFactory())

    assert [reserve(client, tt).status_code for _ in range(2)] == [201, 201]
    response = reserve(client, tt)

    body = assert_problem(response, 429, "throttled")
    assert response["Retry-After"] == "60"
    assert "60 seconds" in body["detail"]
    assert Booking.objects.count() == 2

    time_machine.move_to("2030-01-01 12:00:45Z", tick=False)
    assert reserve(client, tt)["Retry-After"] == "15"
    time_machine.move_to("2030-01-01 12:01:01Z", tick=False)
    assert reserve(client, tt).status_code == 201  # the window moved on


def test_the_bookings_rate_is_per_user(client_for, rates, tt):
    rates(bookings="2/min")
    first, second = client_for(UserFactory()), client_for(UserFactory())
    for _ in range(2):
        reserve(first, tt)

    assert reserve(first, tt).status_code == 429
    assert reserve(second, tt).status_code == 201


def test_cancelling_counts_against_the_bookings_rate_but_listing_does_not(client_for, rates, tt):
    rates(bookings="2/min")
    user = UserFactory()
    client = client_for(user)
    holds = [make_booking(items=[(tt, 1)], buyer=user) for _ in range(3)]

    assert [client.get(f"{API}/bookings/").status_code for _ in range(5)] == [200] * 5
    codes = [client.post(f"{API}/bookings/{b.pk}/cancel/").status_code for b in holds]

    assert codes == [200, 200, 429]


def test_pay_has_its_own_tighter_rate(client_for, rates, tt, assert_problem):
    rates(pay="1/min", bookings="1000/min")
    user = UserFactory()
    client = client_for(user)
    booking = make_booking(items=[(tt, 1)], buyer=user)
    declined = {"card_number": "4000000000000002", "exp_month": 12, "exp_year": 2099, "cvc": "123"}

    assert client.post(f"{API}/bookings/{booking.pk}/pay/", declined).status_code == 402
    assert_problem(client.post(f"{API}/bookings/{booking.pk}/pay/", declined), 429, "throttled")
    assert reserve(client, tt).status_code == 201  # reserving is another scope


def test_every_caller_is_also_limited_per_ip(client_for, rates, tt, assert_problem):
    rates(ip="3/min")
    callers = [client_for(UserFactory()) for _ in range(3)] + [client_for()]

    codes = [c.get(f"{API}/events/", REMOTE_ADDR="203.0.113.9").status_code for c in callers]

    assert codes == [200, 200, 200, 429]
    assert_problem(callers[0].get(f"{API}/events/", REMOTE_ADDR="203.0.113.9"), 429, "throttled")
    assert callers[0].get(f"{API}/events/", REMOTE_ADDR="198.51.100.4").status_code == 200


def test_anonymous_bookings_are_limited_by_address(client_for, rates, tt):
    rates(bookings="1/min")
    booking_a, booking_b = make_booking(items=[(tt, 1)]), make_booking(items=[(tt, 1)])
    guest = client_for()

    def cancel(booking, address):
        path = f"{API}/bookings/{booking.pk}/cancel/?token={booking.access_token}"
        return guest.post(path, REMOTE_ADDR=address).status_code

    assert cancel(booking_a, "203.0.113.1") == 200
    assert cancel(booking_b, "203.0.113.1") == 429
    assert cancel(booking_b, "203.0.113.2") == 200


def test_a_throttled_request_is_not_recorded_under_its_idempotency_key(client_for, rates, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    tt = TicketTypeFactory(event=EventFactory(capacity=None), capacity=100)
    rates(bookings="1/min")
    client = client_for(UserFactory())
    reserve(client, tt)

    assert reserve(client, tt, HTTP_IDEMPOTENCY_KEY="k").status_code == 429
    time_machine.move_to("2030-01-01 12:01:01Z", tick=False)
    retried = reserve(client, tt, HTTP_IDEMPOTENCY_KEY="k")

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried


def test_with_throttling_off_no_throttle_applies(client_for, settings, tt):
    """API_THROTTLE_RATES=off leaves no throttle classes; then even a scope's rate is ignored."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": [],
                               "DEFAULT_THROTTLE_RATES": {"bookings": "1/min", "ip": "1/min"}}
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 0  # five holds of one buyer: no hoarding limit either
    client = client_for(UserFactory())

    assert [reserve(client, tt).status_code for _ in range(5)] == [201] * 5
    assert [client.get(f"{API}/events/").status_code for _ in range(5)] == [200] * 5


# --- API_THROTTLE_RATES, parsed in ticketing/settings.py -------------------------------------------------


@pytest.mark.parametrize("value", ["off", "OFF", "  off  ", "Off"])
def test_off_means_no_rates_at_all(value):
    assert _throttle_rates(value) is None


def test_an_empty_value_keeps_the_defaults():
    assert _throttle_rates("") == DEFAULT_THROTTLE_RATES
    assert _throttle_rates("") is not DEFAULT_THROTTLE_RATES  # a copy: the defaults are never changed


def test_given_rates_merge_with_the_defaults():
    assert _throttle_rates("anon=1/min") == {**DEFAULT_THROTTLE_RATES, "anon": "1/min"}
    assert _throttle_rates(" bookings = 5/s , pay=1/min,, ") == {**DEFAULT_THROTTLE_RATES, "bookings": "5/s",
                                                                  "pay": "1/min"}
    assert DEFAULT_THROTTLE_RATES["anon"] == "120/min"


def test_the_defaults_are_tighter_for_bookings_and_pay():
    def per_minute(rate):
        n, period = rate.split("/")
        return int(n) * {"s": 60, "m": 1, "h": 1 / 60, "d": 1 / 1440}[period[0]]

    r = {k: per_minute(v) for k, v in DEFAULT_THROTTLE_RATES.items()}
    assert r["pay"] < r["bookings"] < r["anon"] < r["user"] <= r["ip"]


def test_the_settings_turn_rates_into_throttle_classes():
    """With rates, the IP, anon and user throttles are on; `off` would leave the list empty."""
    classes = project_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
    if project_settings.API_THROTTLE_RATES is None:
        assert classes == []
    else:
        assert classes == ["core.api.IPRateThrottle", "core.api.AnonRateThrottle",
                           "core.api.UserRateThrottle"]
        assert project_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == project_settings.API_THROTTLE_RATES


def test_retry_after_is_rounded_up_to_whole_seconds(client_for, rates, time_machine):
    time_machine.move_to("2030-01-01 12:00:00Z", tick=False)
    tt = TicketTypeFactory(event=EventFactory(capacity=None), capacity=100)
    rates(bookings="1/min")
    client = client_for(UserFactory())
    reserve(client, tt)

    time_machine.move_to("2030-01-01 12:00:00.5Z", tick=False)
    assert reserve(client, tt)["Retry-After"] == "60"  # 59.5 s left: never "59", which is too early
    time_machine.move_to("2030-01-01 12:00:59.9Z", tick=False)
    assert reserve(client, tt)["Retry-After"] == "1"  # never "0"


# --- The client address (core/client_ip.py, TRUSTED_PROXY_COUNT) ---------------------------------


def test_rotating_x_forwarded_for_does_not_escape_the_anonymous_rate(client_for, rates, settings, assert_problem):
    settings.TRUSTED_PROXY_COUNT = 0
    rates(anon="3/min")
    guest = client_for()

    codes = [guest.get(f"{API}/events/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
             for i in range(4)]

    assert codes == [200, 200, 200, 429]
    assert_problem(guest.get(f"{API}/events/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="198.51.100.1, 10.0.0.1"),
                   429, "throttled")
    assert guest.get(f"{API}/events/", REMOTE_ADDR="192.0.2.11").status_code == 200  # another peer


def test_rotating_x_forwarded_for_does_not_escape_the_per_ip_rate(client_for, rates, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    rates(ip="2/min")
    caller = client_for(UserFactory())

    codes = [caller.get(f"{API}/events/", REMOTE_ADDR="192.0.2.12", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
             for i in range(3)]

    assert codes == [200, 200, 429]


def test_rotating_x_forwarded_for_does_not_escape_the_anonymous_pay_rate(client_for, rates, settings, tt):
    settings.TRUSTED_PROXY_COUNT = 0
    rates(pay="1/min")
    booking = make_booking(items=[(tt, 1)])
    path = f"{API}/bookings/{booking.pk}/pay/?token={booking.access_token}"
    declined = {"card_number": "4000000000000002", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    guest = client_for()

    first = guest.post(path, declined, REMOTE_ADDR="192.0.2.13", HTTP_X_FORWARDED_FOR="203.0.113.1")
    second = guest.post(path, declined, REMOTE_ADDR="192.0.2.13", HTTP_X_FORWARDED_FOR="203.0.113.2")

    assert (first.status_code, second.status_code) == (402, 429)


def test_behind_one_trusted_proxy_each_client_address_has_its_own_rate(client_for, rates, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    rates(anon="2/min")
    guest = client_for()

    def get(forwarded):
        return guest.get(f"{API}/events/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded).status_code

    # The client writes the left part itself; the proxy appends the address it saw.
    assert [get(f"203.0.113.{i}, 198.51.100.7") for i in range(3)] == [200, 200, 429]
    assert get("198.51.100.8") == 200  # another client behind the same proxy


def test_guessing_guest_tokens_is_throttled_before_any_booking_is_read(client_for, rates, assert_problem,
                                                                        django_assert_num_queries):
    """The booking routes find the booking in their permission check (issue 15 item 10); the
    throttles still come first, so a refused guess counts and a throttled one reads nothing."""
    rates(anon="3/min", ip="3/min")
    booking = make_booking(items=[(TicketTypeFactory(), 1)], email="guest@example.com")
    client = client_for()
    path = f"{API}/bookings/{booking.pk}/"

    assert [client.get(f"{path}?token=guess-{i}").status_code for i in range(3)] == [404, 404, 404]
    with django_assert_num_queries(0):
        response = client.get(f"{path}?token={booking.access_token}")

    assert_problem(response, 429, "throttled")


def test_organizer_writes_refused_by_permission_count_against_the_rate(client_for, rates, assert_problem, tt):
    rates(ip="2/min")
    client = client_for(UserFactory())
    path = f"{API}/events/{tt.event_id}/"

    assert [client.patch(path, {"name": "x"}).status_code for _ in range(2)] == [403, 403]
    assert_problem(client.patch(path, {"name": "x"}), 429, "throttled")


def test_an_anonymous_write_is_401_before_any_throttle(client_for, rates, assert_problem, tt):
    rates(anon="2/min", ip="2/min")
    client = client_for()

    statuses = [client.patch(f"{API}/events/{tt.event_id}/", {"name": "x"}).status_code for _ in range(4)]

    assert statuses == [401, 401, 401, 401]
    assert client.get(f"{API}/events/").status_code == 200  # the refused writes used none of the rate
