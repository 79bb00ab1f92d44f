"""A card number or CVC is never stored or logged anywhere: only brand and last 4 digits."""

import logging
import re

import pytest
from django.core import mail
from django.db import connection

from bookings.tests.factories import make_booking
from events.tests.factories import TicketTypeFactory
from payments.gateway import Card
from payments.models import Payment
from payments.services import payment_authorize, refund_issue

NUMBER, CVC = "4111111111111111", "9137"
FORMS = [NUMBER, "4111 1111 1111 1111", "4111-1111-1111-1111"]
# The CVC as a value of its own (four digits may occur by chance inside a hex id or a token).
CVC_ALONE = re.compile(rf"(?<![0-9A-Za-z_]){CVC}(?![0-9A-Za-z_])")


def dump_every_table() -> str:
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            parts.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(parts)


@pytest.mark.django_db(transaction=True)
def test_a_purchase_and_refund_leave_no_card_number_or_cvc_anywhere(caplog):
    caplog.set_level(logging.DEBUG)
    tt = TicketTypeFactory(capacity=5)
    booking = make_booking(items=[(tt, 2)])
    card = Card(number="4111 1111 1111 1111", exp_month=12, exp_year=2099, cvc=CVC, holder_name="Ada")

    payment_authorize(booking=booking, card=card)  # the capture and the e-mail run on commit
    refund_issue(booking=booking)

    booking.refresh_from_db()
    assert booking.status == "refunded"
    payment = Payment.objects.get()
    assert (payment.card_brand, payment.card_last4) == ("visa", "1111")
    everything = "\n".join([dump_every_table(), caplog.text, *(m.message().as_string() for m in mail.outbox)])
    assert "1111" in everything  # the dump really contains the payment rows
    for secret in FORMS:
        assert secret not in everything
    assert not CVC_ALONE.search(everything)
    for text in (repr(card), str(card)):
        assert NUMBER not in text and CVC not in text
