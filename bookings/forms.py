"""Forms of the booking pages. They parse input only: `booking_reserve` checks every rule."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from bookings.services import LineItem
from events.models import TicketType


def quantity_field_name(ticket_type_id) -> str:
    return f"qty_{ticket_type_id}"


class ReserveForm(forms.Form):
    """One quantity per ticket type of the event, and an e-mail address unless the buyer has one.

    Limits, availability and sales windows are the service's to check; the
    quantity inputs' `max` on the page is only a hint for the browser.
    """

    email = forms.EmailField(label=_("E-mail address"), max_length=254)

    def __init__(self, *args, ticket_types: list[TicketType], ask_email: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not ask_email:
            del self.fields["email"]
        self.ticket_types = ticket_types
        for tt in ticket_types:
            self.fields[quantity_field_name(tt.pk)] = forms.IntegerField(label=tt.name, required=False, min_value=0)

    def line_items(self) -> list[LineItem]:
        return [
            LineItem(tt.pk, quantity)
            for tt in self.ticket_types
            if (quantity := self.cleaned_data.get(quantity_field_name(tt.pk)) or 0) > 0
        ]

    def quantity_errors(self) -> dict[str, str]:
        """The first error of each quantity field, by ticket type id."""
        return {
            str(tt.pk): self.errors[name][0]
            for tt in self.ticket_types
            if (name := quantity_field_name(tt.pk)) in self.errors
        }
