"""The payment gateway interface, card checks, and the configured gateway.

A gateway authorizes a card for an amount, then captures, voids or refunds
that authorization by its reference. Every call carries an idempotency key
derived from our own row (e.g. `payment:<id>:capture`), so a call repeated
after a crash or a retried task is answered with the first result and never
moves money twice. Card data passes through `authorize` only: it is never
stored, logged or put in a task message; our rows keep brand and last 4 digits.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables


@dataclass(frozen=True, repr=False)
class Card:
    """Card details as entered; `repr` and `str` never show the number or CVC."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    holder_name: str = ""

    def __repr__(self) -> str:
        return f"Card({self.brand} ending {self.last4})"

    __str__ = __repr__

    @property
    def digits(self) -> str:
        return re.sub(r"[ -]", "", self.number or "")

    @property
    def last4(self) -> str:
        return self.digits[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self.digits)


# What a card's fields may hold: a number of 12 to 19 ASCII digits (spaces or hyphens between them are
# dropped); a CVC of 3 or 4 ASCII digits. The API takes the number as CARD_NUMBER_PATTERN states it
# (at most one space or hyphen between two digits, which also bounds its length) and its schema says so.
CARD_NUMBER_PATTERN = r"^[0-9](?:[ -]?[0-9]){11,18}$"
CARD_DIGITS = r"[0-9]{12,19}"
CVC_PATTERN = r"^[0-9]{3,4}$"


@sensitive_variables("digits")
def card_brand(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"51", "52", "53", "54", "55"} or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if digits.startswith("6011") or digits.startswith("65"):
        return "discover"
    return "unknown"


@sensitive_variables("digits", "ch")
def luhn_valid(digits: str) -> bool:
    if not re.fullmatch(r"[0-9]+", digits):  # ASCII digits only: str.isdigit() also takes "²" and "٤"
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


@sensitive_variables("card", "digits")
def card_errors(card: Card, *, today: date) -> dict[str, list[str]]:
    """Field errors of a card (number: digits + Luhn; expiry: real and not past; CVC: 3-4 digits)."""
    errors: dict[str, list[str]] = {}
    digits = card.digits
    if not (re.fullmatch(CARD_DIGITS, digits) and luhn_valid(digits)):
        errors["card_number"] = [_("Enter a valid card number.")]
    month, year = card.exp_month, card.exp_year
    if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
        errors["exp_month"] = [_("Enter a month from 1 to 12.")]
    elif not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
        errors["exp_year"] = [_("Enter a four-digit year.")]
    elif (year, month) < (today.year, today.month):
        errors["exp_year"] = [_("This card has expired.")]
    if not (isinstance(card.cvc, str) and re.fullmatch(CVC_PATTERN, card.cvc)):
        errors["cvc"] = [_("Enter the 3 or 4 digits on the back of the card.")]
    return errors


# --- Results and errors -----------------------------------------------------------


@dataclass(frozen=True)
class Authorization:
    reference: str
    brand: str
    last4: str


@dataclass(frozen=True)
class Capture:
    """`status` is `succeeded`, or `pending` while the processor is still working
    (ask again with the same key after `retry_after` seconds)."""

    reference: str
    status: str
    retry_after: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class RefundResult:
    reference: str


class GatewayError(Exception):
    """Base of what a gateway raises."""


class Declined(GatewayError):
    """The processor refused: anticipated, safe to show the buyer (`code`, `message`)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class GatewayUnavailable(GatewayError):
    """The processor could not be reached or failed: try again later with the same key."""


# --- Interface ---------------------------------------------------------------------


class Gateway(abc.ABC):
    @abc.abstractmethod
    def authorize(self, *, card: Card, amount: Decimal, currency: str, idempotency_key: str) -> Authorization:
        """Reserve `amount` on the card; raises `Declined`."""

    @abc.abstractmethod
    def capture(self, *, reference: str, amount: Decimal, idempotency_key: str) -> Capture:
        """Take the authorized money; raises `Declined` when it cannot be captured."""

    @abc.abstractmethod
    def void(self, *, reference: str, idempotency_key: str) -> None:
        """Release an authorization that will not be captured."""

    @abc.abstractmethod
    def refund(self, *, reference: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        """Give back part or all of a capture; raises `Declined` when refused."""


@cache
def _gateway_class(path: str) -> type[Gateway]:
    return import_string(path)


def get_gateway() -> Gateway:
    """The gateway named by the `PAYMENT_GATEWAY` setting."""
    return _gateway_class(settings.PAYMENT_GATEWAY)()
