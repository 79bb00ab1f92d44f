"""Shared pieces of the API tests: JSON clients with token auth, the problem-details check, paid bookings.

Helpers are handed out as fixtures (this directory is not a package, so test
modules cannot import from here).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from bookings.models import Booking
from bookings.tests.factories import make_booking
from core.tokens import api_token_create
from payments.services import payment_authorize, payment_capture
from payments.tests.conftest import card

MONEY = re.compile(r"^-?\d+\.\d{2}$")


class JsonClient(APIClient):
    """DRF's test client speaking JSON by default (the API parses nothing else)."""

    default_format = "json"


def make_client(user=None) -> JsonClient:
    client = JsonClient()
    if user is not None:
        key = api_token_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def check_problem(response, status: int, code: str | None = None) -> dict:
    """The response has `status` and a problem-details body (DESIGN.md section 3) with a `code`."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body, dict), body
    assert body["status"] == status, body
    assert isinstance(body.get("code"), str) and body["code"], body
    assert body.get("title") and body.get("type", "").startswith("about:blank#"), body
    assert isinstance(body.get("detail"), str), body
    if code is not None:
        assert body["code"] == code, body
    return body


def check_money(value) -> Decimal:
    """Money goes over the wire as a decimal string with two places ("49.00")."""
    assert isinstance(value, str) and MONEY.match(value), value
    return Decimal(value)


def paid_booking(tt, *, buyer=None, n: int = 2, email: str | None = None) -> Booking:
    """A confirmed booking with a captured payment, built by the services production uses.

    In a test transaction the capture queued on commit never runs, so it is
    called here; in a committed (transactional) test it already ran and this
    second call is the documented no-op.
    """
    booking = make_booking(items=[(tt, n)], buyer=buyer, email=email)
    payment = payment_authorize(booking=booking, card=card())
    payment_capture(payment_id=payment.pk)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    return booking


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Test users log in with a cheap hash: the default PBKDF2 costs ~0.3 s per user on this machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def client_for():
    """`client_for(user)`: a JSON API client sending the user's token; `client_for()`: anonymous."""
    return make_client


@pytest.fixture
def assert_problem():
    return check_problem


@pytest.fixture
def assert_money():
    return check_money


@pytest.fixture
def make_paid_booking():
    return paid_booking
