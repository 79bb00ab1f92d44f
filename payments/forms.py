"""The card form of the booking page. It parses input; `payment_authorize` checks the card."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from payments.gateway import Card


class SensitiveInput(forms.TextInput):
    """A text input that never writes its value back into the page (card number, CVC)."""

    def format_value(self, value):
        return None


class PaymentForm(forms.Form):
    """Card details for one authorization; never stored (only brand and last 4 digits are kept)."""

    card_number = forms.CharField(
        label=_("Card number"), max_length=23,
        widget=SensitiveInput(attrs={"autocomplete": "cc-number", "inputmode": "numeric"}),
    )
    exp_month = forms.IntegerField(
        label=_("Expiry month (MM)"),
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "min": 1, "max": 12}),
    )
    exp_year = forms.IntegerField(
        label=_("Expiry year (YYYY)"),
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "min": 2000, "max": 2100}),
    )
    cvc = forms.CharField(
        label=_("Security code (CVC)"), max_length=4,
        widget=SensitiveInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )
    cardholder_name = forms.CharField(
        label=_("Name on card"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "cc-name"}),
    )

    def clean_exp_year(self) -> int:
        year = self.cleaned_data["exp_year"]
        return year + 2000 if 0 <= year < 100 else year  # "27" means 2027

    @sensitive_variables("data")
    def card(self) -> Card:
        data = self.cleaned_data
        return Card(number=data["card_number"], exp_month=data["exp_month"], exp_year=data["exp_year"],
                    cvc=data["cvc"].strip(), holder_name=data["cardholder_name"])
