"""The site's card form: one expiry field (MM/YY or MM/YYYY), a card number with or without spaces,
and what a refused payment keeps for the page after the redirect (never the card)."""

import pytest

from payments.forms import PaymentForm, parse_expiry

CARD = {"card_number": "4111 1111 1111 1111", "expiry": "08/29", "cvc": "123", "cardholder_name": "Ada Lovelace"}


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("08/29", (8, 2029)), ("8/29", (8, 2029)), ("08/2029", (8, 2029)), ("08 / 29", (8, 2029)),
        (" 08 /2029 ", (8, 2029)), ("0829", (8, 2029)), ("082029", (8, 2029)), ("08-29", (8, 2029)),
        ("12/99", (12, 2099)), ("13/29", (13, 2029)),  # the month's range is the form's to check
    ],
)
def test_an_expiry_is_read_as_mm_yy_or_mm_yyyy(typed, parsed):
    assert parse_expiry(typed) == parsed


@pytest.mark.parametrize("typed", ["", "August 2029", "8/2", "08/029", "829", "08/29/01", "٠٨/٢٩", "08//29"])
def test_anything_else_is_not_an_expiry(typed):
    assert parse_expiry(typed) is None


@pytest.mark.parametrize("number", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"])
def test_the_card_number_is_taken_with_or_without_spaces(number):
    form = PaymentForm({**CARD, "card_number": number})
    assert form.is_valid(), form.errors
    card = form.card()
    assert (card.digits, card.exp_month, card.exp_year, card.last4) == ("4111111111111111", 8, 2029, "1111")


@pytest.mark.parametrize(("expiry", "message"), [
    ("August", "Enter the expiry date as MM/YY, e.g. 08/29."),
    ("00/29", "Enter a month from 1 to 12."),
    ("13/2029", "Enter a month from 1 to 12."),
])
def test_a_bad_expiry_is_an_error_at_its_field(expiry, message):
    form = PaymentForm({**CARD, "expiry": expiry})
    assert not form.is_valid()
    assert form.errors["expiry"] == [message]


def test_a_refused_form_keeps_its_errors_and_the_name_but_never_the_card():
    form = PaymentForm({**CARD, "cvc": ""})
    assert not form.is_valid()
    form.add_error(None, "Your card was declined.")

    stash = form.stash()

    assert stash["data"] == {"cardholder_name": "Ada Lovelace"}
    text = repr(stash)
    assert "4111" not in text and "08/29" not in text and "123" not in text
    again = PaymentForm.from_stash(stash)
    assert not again.is_bound
    assert again.non_field_errors() == ["Your card was declined."]
    assert again.errors["cvc"] == ["This field is required."]
    html = str(again["cvc"].as_field_group()) + str(again["cardholder_name"].as_field_group())
    assert 'aria-invalid="true"' in html and 'value="Ada Lovelace"' in html


def test_a_stash_from_elsewhere_is_read_safely():
    form = PaymentForm.from_stash({"errors": {"nonsense": [{"message": "x"}]}, "data": {"card_number": "4111"}})
    assert dict(form.errors) == {} and form["card_number"].value() is None
