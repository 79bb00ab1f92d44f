"""Ticket types in the admin: their own pages and the inline rows on an event's page.

Saves go through `events.services` (`ticket_type_create`/`update`/`delete`), as
on the API; the sold and held counters are read-only here.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.forms.models import InlineForeignKeyField
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.forms import (
    EventZoneAdminMixin,
    LocalTimesFormMixin,
    ServiceErrorsForm,
    ServiceFormAdminMixin,
    ServiceInlineMixin,
    adopt,
    service_fields,
)
from backoffice.scoping import OrganizerScopedAdmin, OrganizerScopedInline, not_cancelled
from core.templatetags.site_tags import money
from events.models import TicketType
from events.permissions import can_add_ticket_type, can_change_ticket_type, can_delete_ticket_type
from events.selectors import ticket_type_available
from events.services import (
    TICKET_TYPE_FIELDS,
    ticket_type_create,
    ticket_type_delete,
    ticket_type_has_tickets,
    ticket_type_update,
)


class TicketTypeForm(LocalTimesFormMixin, ServiceErrorsForm):
    """A ticket type; its sales window is entered and shown in its event's time zone."""

    # The event's zone when the form class is made for one event (the inline's rows, see `get_formset`).
    zone_hint: str | None = None

    class Meta:
        model = TicketType
        fields = ["event", "name", "description", "price", "capacity", "max_per_booking", "sales_start", "sales_end",
                  "position"]

    def local_zone_name(self) -> str | None:
        event = self._event()
        return event.timezone if event is not None else self.zone_hint

    def _event(self):
        # An inline row: the event being edited on the same page, with the zone submitted there.
        parent = self.fields.get("event")
        if isinstance(parent, InlineForeignKeyField):
            return parent.parent_instance
        # Its own page: the event chosen above (cleaned before the sales window), else its saved event.
        chosen = getattr(self, "cleaned_data", {}).get("event")
        if chosen is not None:
            return chosen
        if self.instance.event_id is not None:
            return self.instance.event
        return None


def _available(ticket_type: TicketType):
    """The catalogue's availability of a saved ticket type; a dash on an unsaved form row."""
    return "–" if ticket_type.pk is None or ticket_type._state.adding else ticket_type_available(ticket_type)


class TicketTypeInline(ServiceInlineMixin, OrganizerScopedInline, admin.TabularInline):
    model = TicketType
    form = TicketTypeForm
    extra = 0
    fields = ["name", "price", "capacity", "sold", "held", "available", "max_per_booking", "sales_start", "sales_end",
              "position"]
    readonly_fields = ["sold", "held", "available"]
    show_change_link = True

    @admin.display(description=gettext_lazy("available"))
    def available(self, obj: TicketType):
        return _available(obj)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # The column headers name the event's zone (the rows read the zone of the event on the page).
        formset.form = type(formset.form.__name__, (formset.form,), {"zone_hint": obj.timezone if obj else None})
        return formset

    # `obj` is the event (the parent row).
    def has_add_permission(self, request, obj=None):
        return can_add_ticket_type(request.user, obj) and not_cancelled(obj)

    def has_change_permission(self, request, obj=None):
        return can_change_ticket_type(request.user, obj) and not_cancelled(obj)

    def has_delete_permission(self, request, obj=None):
        return can_delete_ticket_type(request.user, obj) and not_cancelled(obj)


@admin.register(TicketType)
class TicketTypeAdmin(EventZoneAdminMixin, ServiceFormAdminMixin, OrganizerScopedAdmin):
    form = TicketTypeForm
    list_display = ["name", "event", "price_column", "capacity", "sold", "held", "available"]
    list_filter = [("event", RelatedOnlyFieldListFilter)]
    list_select_related = ["event"]
    search_fields = ["name", "event__name"]
    autocomplete_fields = ["event"]
    fields = ["event", "name", "description", "price", "capacity", "sold", "held", "available", "max_per_booking",
              "sales_start", "sales_end", "position"]

    @admin.display(description=gettext_lazy("available"))
    def available(self, obj: TicketType):
        return _available(obj)

    def event_zone_name(self, obj):
        return obj.event.timezone
    @admin.display(description=gettext_lazy("price"), ordering="price")
    def price_column(self, obj: TicketType) -> str:
        return money(obj.price, obj.event.currency)

    def get_readonly_fields(self, request, obj=None):
        # A ticket type never moves to another event.
        return ["sold", "held", "available"] + (["event"] if obj is not None else [])

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletions go one by one through ticket_type_delete
        return actions

    def has_add_permission(self, request):
        return can_add_ticket_type(request.user)

    def has_change_permission(self, request, obj=None):
        event = obj and obj.event
        return can_change_ticket_type(request.user, event) and not_cancelled(event)

    def has_delete_permission(self, request, obj=None):
        event = obj and obj.event
        return can_delete_ticket_type(request.user, event) and not_cancelled(event)

    def save_model_with_services(self, request, obj, form, change):
        if change:
            fields = service_fields(form, TICKET_TYPE_FIELDS, changed_only=True)
            if fields:
                ticket_type_update(ticket_type=obj, **fields)
        else:
            fields = service_fields(form, TICKET_TYPE_FIELDS, changed_only=False)
            adopt(obj, ticket_type_create(event=form.cleaned_data["event"], **fields))

    def delete_model(self, request, obj):
        ticket_type_delete(ticket_type=obj)

    def get_deleted_objects(self, objs, request):
        # A booked ticket type is never deleted; say so without collecting its tickets.
        booked = [obj for obj in objs if ticket_type_has_tickets(obj)]
        if booked:
            return [], {}, set(), [_("%(type)s has been booked: set its capacity to what is sold instead.")
                                   % {"type": t} for t in booked]
        return super().get_deleted_objects(objs, request)
