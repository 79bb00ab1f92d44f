"""The client address every door uses (core/client_ip.py): throttles, idempotency scopes, login lockout.

With `TRUSTED_PROXY_COUNT=0` (the default) the address is the socket peer
(`REMOTE_ADDR`) and `X-Forwarded-For` is ignored, so a client cannot pick its
own address; with N trusted proxies it is the N-th address from the right of
`X-Forwarded-For` (the one the outermost trusted proxy saw), validated.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from core.client_ip import client_ip
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory

PROXY = "10.0.0.2"


def request(remote_addr: str = "192.0.2.1", forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


# --- The function -----------------------------------------------------------------------------------


def test_without_trusted_proxies_the_peer_address_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request("192.0.2.1")) == "192.0.2.1"
    assert client_ip(request("192.0.2.1", "203.0.113.9")) == "192.0.2.1"
    assert client_ip(request("192.0.2.1", "203.0.113.9, 198.51.100.1")) == "192.0.2.1"


def test_the_default_trusts_no_proxy():
    assert django_settings.TRUSTED_PROXY_COUNT == 0
    assert django_settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


@pytest.mark.parametrize(("count", "forwarded", "expected"), [
    (1, "198.51.100.7", "198.51.100.7"),
    (1, "203.0.113.66, 198.51.100.7", "198.51.100.7"),  # the left part is the client's to write
    (1, "203.0.113.66,198.51.100.7 ", "198.51.100.7"),
    (2, "203.0.113.66, 198.51.100.7, 10.0.0.9", "198.51.100.7"),
    (1, "2001:DB8:0:0::1", "2001:db8::1"),  # one spelling per address
    (1, "", PROXY),  # the proxy sent nothing: its own address
    (1, "203.0.113.66, not-an-address", PROXY),
    (1, "198.51.100.7:4711", PROXY),  # a port is not an address
    (1, "x" * 300, PROXY),
    (1, "fe80::1%" + "x" * 300, PROXY),
    (1, "::ffff:198.51.100.7", "198.51.100.7"),
    (2, "198.51.100.7", PROXY),  # fewer hops than proxies: nothing trustworthy
    (1, None, PROXY),
])
def test_behind_trusted_proxies_the_address_they_saw_is_the_client(settings, count, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = count
    assert client_ip(request(PROXY, forwarded)) == expected


def test_a_missing_peer_address_is_empty(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    req = RequestFactory().get("/")
    del req.META["REMOTE_ADDR"]
    assert client_ip(req) == ""


def test_drf_and_axes_are_wired_to_the_same_setting_and_function():
    assert django_settings.AXES_CLIENT_IP_CALLABLE == "core.client_ip.client_ip"
    assert django_settings.REST_FRAMEWORK["NUM_PROXIES"] == django_settings.TRUSTED_PROXY_COUNT


# --- The login lockout (django-axes) ----------------------------------------------------------------


def admin_login(client, username, **extra):
    """A failed login to the admin (a wrong password)."""
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": "wrong"}, **extra)


@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_escape_the_login_lockout(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    client = Client(REMOTE_ADDR="192.0.2.50")
    for i in range(5):
        admin_login(client, "xavier", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")

    assert admin_login(client, "xavier", HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


@pytest.mark.django_db
def test_rotating_x_forwarded_for_does_not_escape_the_token_endpoint_lockout(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    UserFactory(username="buyer")
    client = APIClient(REMOTE_ADDR="192.0.2.51")
    for i in range(5):
        client.post("/api/v1/auth/token/", {"username": "buyer", "password": "wrong"}, format="json",
                    HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")

    # Locked out: even the right password gets no token.
    response = client.post("/api/v1/auth/token/", {"username": "buyer", "password": "secret-pass-123"},
                           format="json", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert response.status_code != 200, response.content


@pytest.mark.django_db
def test_behind_one_trusted_proxy_the_lockout_is_per_client_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    via_proxy = Client(REMOTE_ADDR=PROXY)
    for i in range(5):  # the attacker rotates the part of the header it writes itself
        admin_login(via_proxy, "xavier", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}, 198.51.100.7")

    assert admin_login(via_proxy, "xavier", HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.7").status_code == 429
    # Another client behind the same proxy is not locked out with it.
    assert admin_login(via_proxy, "xavier", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 200


# --- A long X-Forwarded-For is no 500 anywhere ------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("proxies", [0, 1])
@pytest.mark.parametrize("junk", ["7" * 300, "198.51.100.7, " + "f" * 286, ("203.0.113.1, " * 30)[:300]])
def test_a_300_character_x_forwarded_for_breaks_nothing(settings, proxies, junk):
    from bookings.tests.factories import make_booking

    settings.TRUSTED_PROXY_COUNT = proxies
    assert len(junk) == 300
    tt = TicketTypeFactory(event=EventFactory(capacity=None), capacity=10)
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    api = APIClient(REMOTE_ADDR="192.0.2.60", HTTP_X_FORWARDED_FOR=junk)
    site = Client(REMOTE_ADDR="192.0.2.60", HTTP_X_FORWARDED_FOR=junk)

    assert api.get("/api/v1/events/").status_code == 200
    cancel = api.post(f"/api/v1/bookings/{booking.pk}/cancel/?token={booking.access_token}", {}, format="json",
                      HTTP_IDEMPOTENCY_KEY="long-forwarded-for")
    assert cancel.status_code == 200, cancel.content
    token = api.post("/api/v1/auth/token/", {"username": "nobody", "password": "wrong"}, format="json")
    assert token.status_code < 500
    assert admin_login(site, "nobody").status_code == 200
    pay = site.post(f"/bookings/{booking.pk}/pay/?token={booking.access_token}",
                    {"card_number": "4000000000000002", "expiry": "12/2099", "cvc": "123",
                     "cardholder_name": "Ada"})
    assert pay.status_code < 500
