"""Organizers and events in the admin; an event's ticket types are edited inline (`ticket_types`).

Staff members of an organizer see only its rows (`backoffice.scoping`); every
write goes through `events.services` (`backoffice.forms` explains how a refused
save becomes a form error); the list's sales columns, cancelling, the CSV
export and the sales dashboard are in `backoffice.views`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy

from backoffice import views as admin_views
from backoffice.admin.ticket_types import TicketTypeInline
from backoffice.forms import (
    EventZoneAdminMixin,
    LocalTimesFormMixin,
    ServiceErrorsForm,
    ServiceFormAdminMixin,
    adopt,
    run_for_each,
    service_fields,
)
from backoffice.local_time import format_local, zone_choices
from backoffice.scoping import OrganizerScopedAdmin, not_cancelled, organizers_managed_by
from core.errors import DomainError
from core.templatetags.site_tags import money
from events.models import Event, Organizer, TicketType
from events.permissions import can_change_event, can_create_event, can_delete_event, can_export_bookings
from events.selectors import availability_for_event, event_available
from events.services import (
    BUYER_LIMIT_FIELDS,
    EVENT_FIELDS,
    TICKET_TYPE_FIELDS,
    event_create,
    event_delete,
    event_has_bookings,
    event_publish,
    event_unpublish,
    event_update,
    ticket_type_create,
    ticket_type_delete,
    ticket_type_update,
)


def _money(value, currency: str) -> str:
    """"€1,234.00", "350.00 NOK": the site's one money format (`core.templatetags.site_tags.money`)."""
    return money(value or Decimal("0.00"), currency)


# --- Organizers ----------------------------------------------------------------------------------


@admin.register(Organizer)
class OrganizerAdmin(OrganizerScopedAdmin):
    """Organizers are a superuser's business (`create_organizer` makes them with their first member).

    A staff member given `view_organizer` by hand may read its own; nobody else adds, changes or
    deletes one, whatever permissions they hold: an Organizer a member cannot manage is of no use.
    """

    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


# --- Events ------------------------------------------------------------------------------------


class EventForm(LocalTimesFormMixin, ServiceErrorsForm):
    """An event; its times are entered and shown in its own zone, the one chosen in this form."""

    timezone = forms.TypedChoiceField(label=gettext_lazy("Time zone"), choices=zone_choices, initial="UTC",
                                      help_text=gettext_lazy("The times above are local times in this zone."))

    class Meta:
        model = Event
        fields = ["organizer", "name", "category", "description", "venue", "city", "starts_at", "ends_at", "timezone",
                  "currency", "capacity", *BUYER_LIMIT_FIELDS]

    def local_zone_name(self) -> str | None:
        if self.is_bound and "timezone" in self.fields and not self.fields["timezone"].disabled:
            return self.data.get(self.add_prefix("timezone"))
        return None if self.instance._state.adding else self.instance.timezone


class EventDateFilter(admin.SimpleListFilter):
    """When the event takes place: organizers look ahead more than back."""

    title = gettext_lazy("date")
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("upcoming", gettext_lazy("Upcoming")), ("7d", gettext_lazy("Next 7 days")),
                ("30d", gettext_lazy("Next 30 days")), ("past", gettext_lazy("Past"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "upcoming":
            return queryset.filter(ends_at__gte=now)
        if self.value() in ("7d", "30d"):
            days = 7 if self.value() == "7d" else 30
            return queryset.filter(ends_at__gte=now, starts_at__lt=now + timedelta(days=days))
        if self.value() == "past":
            return queryset.filter(ends_at__lt=now)
        return queryset


@admin.register(Event)
class EventAdmin(EventZoneAdminMixin, ServiceFormAdminMixin, OrganizerScopedAdmin):
    form = EventForm
    inlines = [TicketTypeInline]
    # Compact enough for 1280 px with the filters beside it (static/css/backoffice.css); the
    # organizer column only for someone who manages more than one (`get_list_display`).
    list_display = ["name", "organizer", "date_column", "status", "sold_column", "held_column",
                    "available_column", "capacity_column", "revenue_column"]
    list_filter = ["status", EventDateFilter, "category", ("organizer", RelatedOnlyFieldListFilter)]
    list_select_related = ["organizer"]
    search_fields = ["name", "venue", "city", "organizer__name"]
    actions = ["publish_events", "unpublish_events", "cancel_events", "export_bookings"]
    fieldsets = [
        (None, {"fields": ["organizer", "name", "slug", "status", "category", "description"]}),
        (gettext_lazy("Where and when"), {"fields": ["venue", "city", "starts_at", "ends_at", "timezone"]}),
        (gettext_lazy("Sales"), {"fields": ["currency", "capacity", "sales_summary", "published", "cancelled"]}),
        (gettext_lazy("Limits per buyer"), {"fields": BUYER_LIMIT_FIELDS, "classes": ["collapse"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["organizer", "name", "category", "description"]}),
        (gettext_lazy("Where and when"), {"fields": ["venue", "city", "starts_at", "ends_at", "timezone"]}),
        (gettext_lazy("Sales"), {"fields": ["currency", "capacity"]}),
        (gettext_lazy("Limits per buyer"), {"fields": BUYER_LIMIT_FIELDS, "classes": ["collapse"]}),
    ]

    # --- lists and pages

    def event_zone_name(self, obj):
        return obj.timezone

    def get_changelist(self, request, **kwargs):
        return admin_views.EventChangeList

    @admin.display(description=gettext_lazy("published at"))
    def published(self, obj):
        return format_local(obj.published_at, obj.timezone) or "–"

    @admin.display(description=gettext_lazy("cancelled at"))
    def cancelled(self, obj):
        return format_local(obj.cancelled_at, obj.timezone) or "–"

    def get_list_display(self, request):
        if organizers_managed_by(request.user)[:2].count() > 1:
            return self.list_display
        return [name for name in self.list_display if name != "organizer"]

    @admin.display(description=gettext_lazy("date"), ordering="starts_at")
    def date_column(self, obj):
        return format_local(obj.starts_at, obj.timezone)

    @admin.display(description=gettext_lazy("sold"), ordering="sold_total")
    def sold_column(self, obj):
        return obj.sold_total

    @admin.display(description=gettext_lazy("held"), ordering="held_total")
    def held_column(self, obj):
        return obj.held_total

    @admin.display(description=gettext_lazy("available"), ordering="type_remaining")
    def available_column(self, obj):
        return event_available(obj)

    @admin.display(description=gettext_lazy("capacity"), ordering="capacity_total")
    def capacity_column(self, obj):
        # The venue cap when there is one, else what the ticket types offer in total.
        return obj.capacity if obj.capacity is not None else obj.capacity_total

    @admin.display(description=gettext_lazy("revenue"), ordering="revenue")
    def revenue_column(self, obj):
        return _money(obj.revenue, obj.currency)

    @admin.display(description=gettext_lazy("sales"))
    def sales_summary(self, obj):
        if obj is None or obj.pk is None:
            return "–"
        availability = availability_for_event(event=obj)
        sold = sum(t.sold for t in availability.ticket_types)
        held = sum(t.held for t in availability.ticket_types)
        revenue = admin_views.event_revenue([obj.pk]).get(obj.pk)
        return format_html(
            _('{sold} sold · {held} held · {available} available · revenue {revenue} · <a href="{url}">sales '
              'dashboard</a>'),
            sold=sold, held=held, available=availability.available, revenue=_money(revenue, obj.currency),
            url=reverse("admin:events_event_dashboard", args=[obj.pk]),
        )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = ["slug", "status", "sales_summary", "published", "cancelled"]
        if obj is not None:
            readonly.append("organizer")  # an event never moves to another organizer
        return readonly

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        organizers = list(organizers_managed_by(request.user)[:2])
        if len(organizers) == 1:
            initial.setdefault("organizer", organizers[0].pk)
        return initial

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            context.update({
                "can_export": self.has_export_permission(request, obj),
                "can_cancel": self.has_change_permission(request, obj),
                "can_publish": self.has_change_permission(request, obj),
            })
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- permissions

    # The rules are `events.permissions`', which the API's permission classes call too.

    def has_add_permission(self, request):
        return can_create_event(request.user)

    def has_change_permission(self, request, obj=None):
        return can_change_event(request.user, obj) and not_cancelled(obj)

    def has_delete_permission(self, request, obj=None):
        return can_delete_event(request.user, obj)

    def has_export_permission(self, request, obj=None):
        return can_export_bookings(request.user, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletions go one by one through event_delete
        return actions

    # --- saving through the services

    def save_model_with_services(self, request, obj, form, change):
        if change:
            fields = service_fields(form, EVENT_FIELDS, changed_only=True)
            if fields:
                event_update(event=obj, **fields)
        else:
            fields = service_fields(form, EVENT_FIELDS, changed_only=False)
            adopt(obj, event_create(organizer=form.cleaned_data["organizer"], **fields))

    def save_formset_with_services(self, request, form, formset, change):
        if formset.model is not TicketType:
            return super().save_formset_with_services(request, form, formset, change)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        deleted = set(formset.deleted_forms)
        existing = [f for f in formset.initial_forms if f in deleted or f.has_changed()]
        # Existing ticket types in pk order: the global lock order (DESIGN.md section 6).
        for row in sorted(existing, key=lambda f: f.instance.pk):
            ticket_type = row.instance
            if row in deleted:
                try:
                    ticket_type_delete(ticket_type=ticket_type)
                except DomainError as error:
                    raise self.reject(error, formset=formset, label=ticket_type.name) from error
                formset.deleted_objects.append(ticket_type)
                continue
            fields = service_fields(row, TICKET_TYPE_FIELDS, changed_only=True)
            if not fields:
                continue
            try:
                ticket_type_update(ticket_type=ticket_type, **fields)
            except DomainError as error:
                raise self.reject(error, form=row) from error
            formset.changed_objects.append((ticket_type, list(fields)))
        for row in formset.extra_forms:
            if row in deleted or not row.has_changed():
                continue
            try:
                created = ticket_type_create(event=form.instance,
                                             **service_fields(row, TICKET_TYPE_FIELDS, changed_only=False))
            except DomainError as error:
                raise self.reject(error, form=row) from error
            adopt(row.instance, created)
            formset.new_objects.append(row.instance)

    def delete_model(self, request, obj):
        event_delete(event=obj)

    def get_deleted_objects(self, objs, request):
        # An event with bookings is never deleted (cancel it); say so without
        # collecting every booking and ticket for the confirmation page.
        booked = [obj for obj in objs if event_has_bookings(obj)]
        if booked:
            return [], {}, set(), [_("%(event)s has bookings: cancel it instead.") % {"event": e} for e in booked]
        return super().get_deleted_objects(objs, request)

    # --- actions

    @admin.action(description=gettext_lazy("Publish selected events"), permissions=["change"])
    def publish_events(self, request, queryset):
        run_for_each(self, request, queryset, lambda e: event_publish(event=e),
                     done=ngettext_lazy("%(n)d event published.", "%(n)d events published.", "n"),
                     log=_("Published."))

    @admin.action(description=gettext_lazy("Unpublish selected events (stop sales)"), permissions=["change"])
    def unpublish_events(self, request, queryset):
        run_for_each(self, request, queryset, lambda e: event_unpublish(event=e),
                     done=ngettext_lazy("%(n)d event unpublished.", "%(n)d events unpublished.", "n"),
                     log=_("Unpublished."))

    @admin.action(description=gettext_lazy("Cancel selected events and refund their bookings…"),
                  permissions=["change"])
    def cancel_events(self, request, queryset):
        return self._cancel(request, queryset, action="cancel_events")

    @admin.action(description=gettext_lazy("Export attendees (issued tickets) of selected events (CSV)"),
                  permissions=["export"])
    def export_bookings(self, request, queryset):
        return admin_views.export_response(request.user, list(queryset.order_by("starts_at")))

    def _cancel(self, request, queryset, *, action: str | None):
        """The confirmation page, then `event_cancel_and_refund` for each event; None when done."""
        form = admin_views.ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            admin_views.run_cancel(self, request, queryset, form.cleaned_data["reason"])
            return None
        return admin_views.confirmation_page(
            self, request, queryset=queryset, action=action, form=form,
            title=_("Cancel events"),
            question=_("Cancel these events? Sales stop, holds are released at once and every confirmed "
                       "booking is refunded in full. This cannot be undone."),
            button=_("Yes, cancel and refund"),
            items=admin_views.cancel_items(queryset),
        )

    # --- pages of one event

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/dashboard/", self.admin_site.admin_view(self.dashboard_view),
                 name=f"{prefix}_dashboard"),
            path("<path:object_id>/export/", self.admin_site.admin_view(self.export_view),
                 name=f"{prefix}_export"),
            path("<path:object_id>/cancel/", self.admin_site.admin_view(self.cancel_view),
                 name=f"{prefix}_cancel"),
            path("<path:object_id>/publish/", self.admin_site.admin_view(self.publish_view),
                 name=f"{prefix}_publish"),
            *super().get_urls(),
        ]

    def _event_or_404(self, request, object_id) -> Event:
        event = self.get_object(request, unquote(object_id))
        if event is None:
            raise Http404(_("No such event."))
        return event

    def dashboard_view(self, request, object_id):
        event = self._event_or_404(request, object_id)
        if not self.has_view_permission(request, event):
            raise PermissionDenied
        return admin_views.dashboard_view(self, request, event)

    def export_view(self, request, object_id):
        event = self._event_or_404(request, object_id)
        if not self.has_export_permission(request, event):
            raise PermissionDenied
        return admin_views.export_response(request.user, [event])

    def cancel_view(self, request, object_id):
        event = self._event_or_404(request, object_id)
        if not self.has_change_permission(request, event):
            raise PermissionDenied
        response = self._cancel(request, self.get_queryset(request).filter(pk=event.pk), action=None)
        if response is None:
            return HttpResponseRedirect(reverse("admin:events_event_change", args=[event.pk]))
        return response

    def publish_view(self, request, object_id):
        """The change page's Publish / Unpublish button (POST): `event_publish` or `event_unpublish`,
        as the list's actions, by the event's status; a refusal is shown as a message."""
        event = self._event_or_404(request, object_id)
        if not self.has_change_permission(request, event):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        change_page = HttpResponseRedirect(reverse("admin:events_event_change", args=[event.pk]))
        publish = event.status == Event.Status.DRAFT
        try:
            if publish:
                event_publish(event=event)
            else:
                event_unpublish(event=event)
        except DomainError as error:
            self.message_user(request, error.detail, messages.ERROR)
            return change_page
        self.log_change(request, event, _("Published.") if publish else _("Unpublished."))
        self.message_user(request, (_("“%(event)s” is published: it is on sale.") if publish
                                    else _("“%(event)s” is unpublished: sales stopped.")) % {"event": event.name},
                          messages.SUCCESS)
        return change_page
