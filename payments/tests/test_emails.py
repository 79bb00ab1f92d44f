"""Issue 17 item 11: e-mails format money and times like the site, from a configurable sender name."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parseaddr
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from bookings.emails import booking_confirmation_send
from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.tests.factories import EventFactory, TicketTypeFactory
from payments.emails import refund_confirmation_send
from payments.models import Refund
from payments.services import payment_authorize, payment_capture, refund_issue, refund_process
from payments.tests.conftest import card

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def booking():
    event = EventFactory(name="Rock & Roll Night", timezone="Europe/Oslo", currency="EUR",
                         starts_at=datetime(2026, 12, 5, 18, 30, tzinfo=UTC),
                         ends_at=datetime(2026, 12, 5, 22, tzinfo=UTC))
    tt = TicketTypeFactory(event=event, name="Floor", price=Decimal("1029.00"), capacity=10)
    booking = make_booking(items=[(tt, 2)], email="ada@example.com")
    payment = payment_authorize(booking=booking, card=card())
    payment_capture(payment_id=payment.pk)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    mail.outbox.clear()
    return booking


def test_the_confirmation_shows_money_and_the_local_time_like_the_site(booking):
    assert booking_confirmation_send(booking_id=booking.pk)
    (message,) = mail.outbox
    assert "Sat 5 Dec 2026, 19:30 CET" in message.body
    assert "Total: €2,058.00" in message.body
    assert "Floor (€1,029.00)" in message.body
    assert f"Booking reference: {booking.reference}" in message.body
    assert "Rock & Roll Night" in message.body  # plain text is not HTML-escaped
    html = message.alternatives[0][0]
    assert "Sat 5 Dec 2026, 19:30 CET" in html and "€2,058.00" in html and booking.reference in html
    assert "Rock &amp; Roll Night" in html
    assert " EUR" not in message.body and "UTC" not in message.body


def test_the_refund_e_mail_shows_money_and_the_local_time_like_the_site(booking):
    refund = refund_process(refund_id=refund_issue(booking=booking, reason="test").pk)
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund_confirmation_send(refund_id=refund.pk)
    (message,) = mail.outbox
    assert "Your refund of €2,058.00 for Rock & Roll Night went through." in message.body
    assert "Sat 5 Dec 2026, 19:30 CET" in message.body
    assert f"Booking reference: {booking.reference}" in message.body


def test_e_mails_come_from_the_sender_name(booking):
    booking_confirmation_send(booking_id=booking.pk)
    (message,) = mail.outbox
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert parseaddr(message.message()["From"]) == (settings.DEFAULT_FROM_NAME, "tickets@localhost")


@pytest.mark.parametrize("env, expected", [
    ({}, "Ticketing <tickets@localhost>"),
    ({"DEFAULT_FROM_NAME": "Oslo Jazz Club", "DEFAULT_FROM_EMAIL": "hello@jazz.example"},
     "Oslo Jazz Club <hello@jazz.example>"),
    ({"DEFAULT_FROM_NAME": "Jazz, Blues & Co."}, '"Jazz, Blues & Co." <tickets@localhost>'),
    ({"DEFAULT_FROM_NAME": ""}, "tickets@localhost"),
    ({"DEFAULT_FROM_EMAIL": "Shop <shop@example.com>"}, "Shop <shop@example.com>"),
])
def test_the_sender_is_built_from_default_from_name_and_default_from_email(env, expected):
    environment = {k: v for k, v in os.environ.items() if k not in ("DEFAULT_FROM_NAME", "DEFAULT_FROM_EMAIL")}
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEFAULT_FROM_EMAIL)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**environment, "DJANGO_SETTINGS_MODULE": "ticketing.settings", "DJANGO_DEBUG": "true",
                                 **env})
    assert result.stdout.strip() == expected
