"""Template helpers of the buyer site: money in an event's currency."""

from decimal import Decimal, InvalidOperation

from django import template
from django.utils import formats
from django.utils.translation import gettext as _

from core.currencies import currency_decimals

register = template.Library()

# Currencies shown with a symbol; every other one with its ISO code after the amount.
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹"}


@register.filter
def money(amount, currency: str) -> str:
    """`49.00|money:"EUR"` -> "€49.00"; `49|money:"CHF"` -> "49.00 CHF"; grouping by the active locale.

    As many decimal places as the currency has (core.currencies: JPY none, KWD three).
    """
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        return str(amount)
    code = (currency or "").upper()
    number = formats.number_format(value, decimal_pos=currency_decimals(code), use_l10n=True,
                                   force_grouping=True)
    symbol = SYMBOLS.get(code)
    return f"{symbol}{number}" if symbol else f"{number}\u00a0{code}".strip()


@register.filter
def price_range(event, currency: str | None = None) -> str:
    """An event's price range from `event_list_published`'s `min_price`/`max_price` annotations."""
    low, high = getattr(event, "min_price", None), getattr(event, "max_price", None)
    currency = currency or event.currency
    if low is None:
        return ""
    if high == 0:
        return _("Free")
    if low == high:
        return money(low, currency)
    return f"{money(low, currency)} – {money(high, currency)}"
