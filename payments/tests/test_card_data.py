"""A card number or CVC is never stored, cached, logged or mailed anywhere: only brand and last 4 digits.

A purchase runs end to end (reserve -> authorize -> capture -> confirmation e-mail -> refund ->
refund e-mail), once through the services and once through the site and API doors, with every
logger at DEBUG and every SQL statement logged with its parameters. Then every table, every key
of the Redis database, the captured log and every e-mail are searched for the secrets.
"""

import logging
import re

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from core.errors import PaymentDeclined
from events.tests.factories import TicketTypeFactory
from payments.gateway import Card
from payments.models import MockCharge, Payment, Refund
from payments.services import payment_authorize, refund_issue

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: the tasks run on commit, as in production

NUMBER, CVC = "4111111111111111", "9137"
DECLINED_NUMBER = "4000000000000002"
# Random identifiers (UUIDs, with or without dashes) are removed before looking for the CVC on its
# own: four digits occur by chance inside them (a UUID's "-9137-" group), which would make the
# test flaky without telling anything about card data.
UUIDS = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


def number_forms(number: str) -> list[str]:
    groups = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return [number, groups, groups.replace(" ", "-"), number[:12]]  # [:12]: everything but the last 4


@pytest.fixture
def every_log(caplog):
    """Every logger at DEBUG into caplog, and SQL logged with its parameters (django.db.backends)."""
    caplog.set_level(logging.DEBUG)
    attached = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            caplog.set_level(logging.DEBUG, logger=name)
            if not logger.propagate:
                logger.addHandler(caplog.handler)
                attached.append(logger)
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = False
    for logger in attached:
        logger.removeHandler(caplog.handler)


def as_text(value) -> str:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def dump_every_table() -> str:
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - introspected names
            parts.append(f"== {table}")
            parts.extend(as_text(value) for row in cursor.fetchall() for value in row)
    return "\n".join(parts)


def dump_redis() -> str:
    """Every key and value of the Redis database the run uses (cache, throttles, broker)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    parts = []
    for key in client.scan_iter():
        parts.append(as_text(key))
        kind = as_text(client.type(key))
        if kind == "string":
            parts.append(as_text(client.get(key)))
        elif kind == "hash":
            parts.extend(as_text(v) for kv in client.hgetall(key).items() for v in kv)
        elif kind == "list":
            parts.extend(as_text(v) for v in client.lrange(key, 0, -1))
        elif kind == "set":
            parts.extend(as_text(v) for v in client.smembers(key))
        elif kind == "zset":
            parts.extend(as_text(v) for v in client.zrange(key, 0, -1))
    return "\n".join(parts)


def dump_mail() -> str:
    """Each message as sent (as_string), plus its text parts decoded (a base64 body hides nothing then)."""
    parts = []
    for message in mail.outbox:
        mime = message.message()
        parts.append(mime.as_string())
        for part in mime.walk():
            if part.get_content_maintype() == "text":
                parts.append(part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8"))
    return "\n".join(parts)


def everything(caplog) -> str:
    return "\n".join([dump_every_table(), dump_redis(), caplog.text, dump_mail()])


def assert_no_card_data(text: str, *numbers: str) -> None:
    for number in numbers:
        for form in number_forms(number):
            assert form not in text, f"card number {form!r} found"
    tokens = re.split(r"[^0-9A-Za-z]+", UUIDS.sub(" ", text))
    assert CVC not in tokens, "CVC found"


def assert_the_flow_really_ran(caplog, booking: Booking) -> None:
    """The dump is only worth something if the purchase, refund, mails and SQL log are all in it."""
    booking.refresh_from_db()
    assert booking.status == Booking.Status.REFUNDED
    assert set(Ticket.objects.filter(booking=booking).values_list("status", flat=True)) == {"refunded"}
    payment = Payment.objects.get(status=Payment.Status.REFUNDED)
    assert (payment.card_brand, payment.card_last4) == ("visa", "1111")
    assert MockCharge.objects.get(reference=payment.gateway_reference).capture_count == 1
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    subjects = [m.subject for m in mail.outbox]
    assert len(subjects) == 2 and subjects[0].startswith("Your tickets for") and subjects[1].startswith("Your refund")
    text = everything(caplog)
    assert "INSERT INTO" in caplog.text and str(payment.pk) in caplog.text  # SQL really logged, with parameters
    assert "1111" in text and payment.gateway_reference in text  # the dump really holds the payment rows


def test_a_purchase_and_refund_through_the_services_leave_no_card_number_or_cvc_anywhere(every_log):
    tt = TicketTypeFactory(capacity=5)
    booking = make_booking(items=[(tt, 2)])
    declined = Card(number=DECLINED_NUMBER, exp_month=12, exp_year=2099, cvc=CVC, holder_name="Ada Lovelace")
    card = Card(number="4111 1111 1111 1111", exp_month=12, exp_year=2099, cvc=CVC, holder_name="Ada Lovelace")

    with pytest.raises(PaymentDeclined):
        payment_authorize(booking=booking, card=declined)
    payment_authorize(booking=booking, card=card)  # capture, confirmation and e-mail run on commit
    refund_issue(booking=booking)  # refund and its e-mail run on commit

    assert_the_flow_really_ran(every_log, booking)
    failed = Payment.objects.get(status=Payment.Status.FAILED)
    assert (failed.card_brand, failed.card_last4, failed.failure_code) == ("visa", "0002", "card_declined")
    assert_no_card_data(everything(every_log), NUMBER, DECLINED_NUMBER)


def test_a_purchase_through_the_site_and_the_api_leaves_no_card_number_or_cvc_anywhere(every_log, client):
    tt = TicketTypeFactory(capacity=5)
    booking = make_booking(items=[(tt, 2)])
    form = {"card_number": "4000 0000 0000 0002", "expiry": "12/2099", "cvc": CVC,
            "cardholder_name": "Ada Lovelace"}
    api = APIClient()
    pay_url = f"/api/v1/bookings/{booking.pk}/pay/?token={booking.access_token}"
    body = {"card_number": NUMBER, "exp_month": 12, "exp_year": 2099, "cvc": CVC, "cardholder_name": "Ada Lovelace"}

    # The site: a declined card is shown on the booking page after a redirect (the form's errors and the
    # name on the card wait in the session), without writing the number or CVC back into the page.
    page = client.post(f"{reverse('bookings:pay', kwargs={'pk': booking.pk})}?token={booking.access_token}", form,
                       follow=True)
    assert page.status_code == 200 and page.redirect_chain
    assert "Your card was declined." in page.content.decode()
    assert_no_card_data(page.content.decode(), DECLINED_NUMBER)
    # The API, with an Idempotency-Key (its fingerprint of the body is stored), then the same request replayed.
    first = api.post(pay_url, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-once")
    replay = api.post(pay_url, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-once")
    assert first.status_code == replay.status_code == 202, first.content
    assert replay["Idempotent-Replayed"] == "true"
    refund = api.post(f"/api/v1/bookings/{booking.pk}/refund/?token={booking.access_token}", {}, format="json",
                      HTTP_IDEMPOTENCY_KEY="refund-once")
    assert refund.status_code == 202, refund.content

    assert_the_flow_really_ran(every_log, booking)
    assert_no_card_data(everything(every_log) + first.content.decode(), NUMBER, DECLINED_NUMBER)


def test_a_card_shows_only_its_brand_and_last_four_digits():
    card = Card(number="4111 1111 1111 1111", exp_month=12, exp_year=2099, cvc=CVC, holder_name="Ada Lovelace")
    for text in (repr(card), str(card), f"{card}", f"{card!r}", repr([card]), repr({"card": card})):
        assert_no_card_data(text, NUMBER)
        assert "visa" in text and "1111" in text
