"""Forms of the booking pages. They parse and bound input; `booking_reserve` checks every rule."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from bookings.services import LineItem
from events.models import TicketType


def quantity_field_name(ticket_type_id) -> str:
    return f"qty_{ticket_type_id}"


def _too_many(tt: TicketType, ceiling: int) -> str:
    """The service's words for a quantity above the type's limit per booking (or the ceiling)."""
    if tt.max_per_booking <= ceiling:
        return ngettext("At most %(n)d '%(name)s' ticket per booking.", "At most %(n)d '%(name)s' tickets per booking.",
                        tt.max_per_booking) % {"n": tt.max_per_booking, "name": tt.name}
    return ngettext("At most %(n)d ticket in one booking.", "At most %(n)d tickets in one booking.",
                    ceiling) % {"n": ceiling}


class ReserveForm(forms.Form):
    """One quantity per ticket type of the event, and an e-mail address unless the buyer has one.

    Each quantity is bounded by its type's per-booking limit and the total by BOOKING_MAX_TICKETS,
    so an absurd number is refused here, before anything is built (the service checks the same
    limits again on the locked rows). Availability, sales windows and the buyer's limits are the
    service's to check; the quantity inputs' `max` on the page is only a hint for the browser.
    """

    email = forms.EmailField(label=_("E-mail address"), max_length=254)

    def __init__(self, *args, ticket_types: list[TicketType], ask_email: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not ask_email:
            del self.fields["email"]
        self.ticket_types = ticket_types
        ceiling = settings.BOOKING_MAX_TICKETS
        for tt in ticket_types:
            self.fields[quantity_field_name(tt.pk)] = forms.IntegerField(
                label=tt.name, required=False, min_value=0, max_value=min(tt.max_per_booking, ceiling),
                # Django formats the message with the validator's values: a "%" in a name is escaped.
                error_messages={"max_value": _too_many(tt, ceiling).replace("%", "%%")},
            )

    def clean(self):
        cleaned = super().clean()
        total = sum(cleaned.get(quantity_field_name(tt.pk)) or 0 for tt in self.ticket_types)
        if total > settings.BOOKING_MAX_TICKETS:
            raise forms.ValidationError(
                ngettext("At most %(n)d ticket in one booking.", "At most %(n)d tickets in one booking.",
                         settings.BOOKING_MAX_TICKETS) % {"n": settings.BOOKING_MAX_TICKETS},
                code="max_tickets",
            )
        return cleaned

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
