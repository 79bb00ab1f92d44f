from datetime import date, timedelta
from decimal import Decimal

import pytest

from payments.gateway import Card, Declined, card_brand, card_errors, get_gateway, luhn_valid
from payments.mock_gateway import MockGateway
from payments.models import MockCharge
from payments.tests.conftest import card

TODAY = date(2030, 6, 15)


@pytest.mark.parametrize("number", ["4111111111111111", "4242 4242 4242 4242", "4000-0000-0000-0002"])
def test_luhn_accepts_valid_numbers(number):
    assert luhn_valid(Card(number, 1, 2031, "123").digits)


@pytest.mark.parametrize("number", ["4111111111111112", "abcd", "", "4111 1111 1111 111x"])
def test_luhn_rejects_invalid_numbers(number):
    assert not luhn_valid(Card(number, 1, 2031, "123").digits)


@pytest.mark.parametrize(
    "digits, brand",
    [("4111111111111111", "visa"), ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
     ("378282246310005", "amex"), ("6011111111111117", "discover"), ("3056930009020004", "unknown")],
)
def test_card_brand(digits, brand):
    assert card_brand(digits) == brand


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"number": "4111111111111112"}, "card_number"),
        ({"number": "411111"}, "card_number"),
        ({"exp_month": 13}, "exp_month"),
        ({"exp_month": 0}, "exp_month"),
        ({"exp_month": 5, "exp_year": 2030}, "exp_year"),
        ({"exp_year": 30}, "exp_year"),
        ({"cvc": "12"}, "cvc"),
        ({"cvc": "12345"}, "cvc"),
        ({"cvc": "12a"}, "cvc"),
        # Only ASCII digits: str.isdigit() also takes these, and int("²") raised (a 500 at the API).
        ({"number": "\u00b2" * 16}, "card_number"),
        ({"number": "\u0664" + "\u0661" * 15}, "card_number"),  # 4111... in Arabic-Indic digits
        ({"number": "4111\t1111 1111 1111"}, "card_number"),  # groups are separated by spaces or hyphens
        ({"cvc": "\u0661\u0662\u0663"}, "cvc"),
    ],
)
def test_card_errors_name_the_bad_field(overrides, field):
    assert field in card_errors(card(**overrides), today=TODAY)


def test_a_card_expiring_this_month_is_still_valid():
    assert card_errors(card(exp_month=6, exp_year=2030, cvc="1234"), today=TODAY) == {}


def test_a_card_never_shows_its_number_or_cvc():
    c = card(cvc="9876")
    for text in (repr(c), str(c), f"{c}"):
        assert "4111111111111111" not in text and "9876" not in text
    assert repr(c) == "Card(visa ending 1111)"


def test_the_configured_gateway_is_the_mock_by_default():
    assert isinstance(get_gateway(), MockGateway)


# --- the mock gateway -------------------------------------------------------------

pytestmark = pytest.mark.django_db
gateway = MockGateway()


def authorize(number="4111111111111111", key="k-auth", amount="50.00"):
    return gateway.authorize(card=card(number), amount=Decimal(amount), currency="EUR", idempotency_key=key)


@pytest.mark.parametrize(
    "number, code",
    [("4000000000000002", "card_declined"), ("4000000000009995", "insufficient_funds"),
     ("4000000000000069", "expired_card"), ("4000000000000127", "incorrect_cvc"),
     ("4111111111111112", "invalid_number")],
)
def test_decline_cards_are_refused_with_their_code(number, code):
    with pytest.raises(Declined) as exc:
        authorize(number)
    assert exc.value.code == code
    assert not MockCharge.objects.exists()


@pytest.mark.parametrize("number", ["4111111111111111", "4242424242424242"])
def test_success_cards_authorize_and_keep_only_brand_and_last4(number):
    auth = authorize(number)
    charge = MockCharge.objects.get(reference=auth.reference)
    assert (auth.brand, auth.last4) == ("visa", number[-4:])
    assert (charge.card_brand, charge.card_last4, charge.status) == ("visa", number[-4:], "authorized")


def test_the_same_key_replays_the_first_answer():
    first = authorize(key="same")
    again = authorize(key="same")
    assert first == again
    assert MockCharge.objects.count() == 1


def test_capture_once_by_reference_and_never_twice():
    auth = authorize()
    first = gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap-1")
    replay = gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap-1")
    assert first.succeeded and replay == first
    with pytest.raises(Declined) as exc:
        gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap-2")
    assert exc.value.code == "already_captured"
    assert MockCharge.objects.get().capture_count == 1


def test_capture_cannot_exceed_the_authorization_and_a_void_stops_it():
    auth = authorize()
    with pytest.raises(Declined, match="amount_too_large"):
        gateway.capture(reference=auth.reference, amount=Decimal("50.01"), idempotency_key="cap")
    gateway.void(reference=auth.reference, idempotency_key="void")
    with pytest.raises(Declined, match="already_voided"):
        gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap")
    with pytest.raises(Declined, match="no_such_charge"):
        gateway.capture(reference="ch_unknown", amount=Decimal("1.00"), idempotency_key="cap-x")


def test_a_captured_charge_cannot_be_voided():
    auth = authorize()
    gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap")
    with pytest.raises(Declined, match="already_captured"):
        gateway.void(reference=auth.reference, idempotency_key="void")


def test_the_slow_card_captures_only_after_its_processing_delay(settings, time_machine):
    settings.PAYMENT_CAPTURE_DELAY_SECONDS = 5
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    auth = authorize("4000000000000119")

    pending = gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap")
    assert (pending.status, pending.retry_after) == ("pending", 5)
    time_machine.shift(timedelta(seconds=3))
    assert gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap").retry_after == 2
    time_machine.shift(timedelta(seconds=2))
    assert gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap").succeeded
    assert MockCharge.objects.get().capture_count == 1


def test_refunds_never_exceed_the_capture():
    auth = authorize(amount="50.00")
    gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap")
    gateway.refund(reference=auth.reference, amount=Decimal("30.00"), idempotency_key="r1")
    gateway.refund(reference=auth.reference, amount=Decimal("30.00"), idempotency_key="r1")  # replay
    with pytest.raises(Declined, match="amount_too_large"):
        gateway.refund(reference=auth.reference, amount=Decimal("20.01"), idempotency_key="r2")
    gateway.refund(reference=auth.reference, amount=Decimal("20.00"), idempotency_key="r3")
    charge = MockCharge.objects.get()
    assert (charge.refunded_amount, charge.refund_count) == (Decimal("50.00"), 2)


def test_refunds_need_a_capture():
    auth = authorize()
    with pytest.raises(Declined, match="not_captured"):
        gateway.refund(reference=auth.reference, amount=Decimal("1.00"), idempotency_key="r")


def test_the_refund_failing_card_captures_but_refuses_refunds():
    auth = authorize("4000000000006660")
    assert gateway.capture(reference=auth.reference, amount=Decimal("50.00"), idempotency_key="cap").succeeded
    with pytest.raises(Declined, match="refund_failed"):
        gateway.refund(reference=auth.reference, amount=Decimal("10.00"), idempotency_key="r")
