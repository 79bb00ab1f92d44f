"""The card form of the booking page. It parses input; `payment_authorize` checks the card."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.utils import ErrorDict
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from payments.gateway import Card


class SensitiveInput(forms.TextInput):
    """A text input that never writes its value back into the page (card number, CVC)."""

    def format_value(self, value):
        return None


# MM/YY or MM/YYYY, a slash (or hyphen, dot) between them with or without spaces; or MMYY / MMYYYY.
_EXPIRY = (re.compile(r"([0-9]{1,2})\s*[/.-]\s*([0-9]{2}|[0-9]{4})"), re.compile(r"([0-9]{2})\s*([0-9]{2}|[0-9]{4})"))


def parse_expiry(value: str) -> tuple[int, int] | None:
    """(month, four-digit year) of "12/27", "12 / 2027", "1227"...; None when it is not such a date."""
    value = value.strip()
    match = next((m for pattern in _EXPIRY if (m := pattern.fullmatch(value))), None)
    if match is None:
        return None
    month, year = int(match[1]), int(match[2])
    return month, year + 2000 if year < 100 else year  # "27" means 2027


class PaymentForm(forms.Form):
    """Card details for one authorization; never stored (only brand and last 4 digits are kept).

    The card number may be typed with spaces (the page groups it by 4 as it is typed) and the
    expiry is one field, MM/YY or MM/YYYY. The API keeps its own fields (`exp_month`, `exp_year`).
    """

    card_number = forms.CharField(
        label=_("Card number"), max_length=23,
        widget=SensitiveInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric",
                                     "data-card-number": "", "placeholder": "1234 5678 9012 3456"}),
    )
    expiry = forms.CharField(
        label=_("Expiry date (MM/YY)"), max_length=9,
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "inputmode": "numeric", "placeholder": "MM/YY",
                                      "size": 7}),
    )
    cvc = forms.CharField(
        label=_("Security code (CVC)"), max_length=4,
        widget=SensitiveInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )
    cardholder_name = forms.CharField(
        label=_("Name on card"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "cc-name"}),
    )

    # The card check's field names (`payments.gateway.card_errors`, the API's) and this form's field.
    error_fields = {"exp_month": "expiry", "exp_year": "expiry"}
    # What a failed payment keeps for the page after the redirect: never the card number, expiry or CVC.
    kept_fields = ("cardholder_name",)

    def clean_expiry(self) -> tuple[int, int]:
        parsed = parse_expiry(self.cleaned_data["expiry"])
        if parsed is None:
            raise ValidationError(_("Enter the expiry date as MM/YY, e.g. 08/29."), code="invalid_expiry")
        if not 1 <= parsed[0] <= 12:
            raise ValidationError(_("Enter a month from 1 to 12."), code="invalid_expiry")
        return parsed

    @sensitive_variables("data")
    def card(self) -> Card:
        data = self.cleaned_data
        month, year = data["expiry"]
        return Card(number=data["card_number"], exp_month=month, exp_year=year,
                    cvc=data["cvc"].strip(), holder_name=data["cardholder_name"])

    def stash(self) -> dict:
        """What the page shows again after the redirect (Post/Redirect/Get): errors and the kept fields."""
        return {
            "data": {name: self.data.get(name, "")[:100] for name in self.kept_fields},
            "errors": self.errors.get_json_data(),
        }

    @classmethod
    def from_stash(cls, stash: dict) -> PaymentForm:
        """An unbound form showing the errors of a failed POST, with the kept fields filled in."""
        form = cls(initial={name: stash.get("data", {}).get(name, "") for name in cls.kept_fields})
        form._errors = ErrorDict()
        for field, errors in stash.get("errors", {}).items():
            if field != NON_FIELD_ERRORS and field not in form.fields:
                continue
            kwargs = {"error_class": "nonfield"} if field == NON_FIELD_ERRORS else {"field_id": form[field].auto_id}
            form._errors[field] = form.error_class(
                [ValidationError(e["message"], code=e.get("code") or None) for e in errors],
                renderer=form.renderer, **kwargs)
        return form
