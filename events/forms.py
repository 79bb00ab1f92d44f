"""Forms of the catalogue pages (the reservation form is `bookings.forms.ReserveForm`)."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from events.models import Event


class DateInput(forms.DateInput):
    input_type = "date"


class EventFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"), required=False, max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("Event, artist, venue…")}),
    )
    city = forms.CharField(
        label=_("City"), required=False, max_length=100, widget=forms.TextInput(attrs={"list": "city-list"})
    )
    category = forms.ChoiceField(
        label=_("Category"), required=False, choices=[("", _("Any category")), *Event.Category.choices]
    )
    starts_after = forms.DateField(label=_("From"), required=False, widget=DateInput)
    starts_before = forms.DateField(label=_("Until"), required=False, widget=DateInput)

    def clean(self):
        data = super().clean()
        after, before = data.get("starts_after"), data.get("starts_before")
        if after and before and before < after:
            self.add_error("starts_before", _("The end date must not be before the start date."))
        return data

    def filters(self) -> dict:
        """Keyword arguments for `event_list_published` from the valid fields (invalid ones are ignored)."""
        data = self.cleaned_data if self.is_bound else {}
        tz = timezone.get_current_timezone()
        after, before = data.get("starts_after"), data.get("starts_before")
        return {
            "q": data.get("q") or None,
            "city": data.get("city") or None,
            "category": data.get("category") or None,
            "starts_after": datetime.combine(after, time.min, tzinfo=tz) if after else None,
            "starts_before": datetime.combine(before, time.max, tzinfo=tz) if before else None,
        }
