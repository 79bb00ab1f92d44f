"""Bookings and tickets in the admin, read-only.

Money, statuses and tickets are never edited here: they change only through
the services, which the actions call (refund, resend the confirmation, cancel
a hold). Members of an organizer see only its bookings (`backoffice.scoping`).
Payments and refunds are shown with each booking; the refund action calls
`payments.services.refund_issue`, exactly what the API's refund endpoint calls.
"""

from __future__ import annotations

import logging
import smtplib

from django.contrib import admin
from django.contrib.admin import DateFieldListFilter, RelatedOnlyFieldListFilter
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy

from backoffice import views as admin_views
from backoffice.admin.payments import PaymentInline
from backoffice.forms import run_for_each
from backoffice.local_time import format_local
from backoffice.scoping import OrganizerScopedAdmin, OrganizerScopedInline, ReadOnlyAdminMixin
from bookings.emails import booking_confirmation_send
from bookings.models import Booking, Ticket
from bookings.services import booking_cancel
from core.errors import InvalidTransition
from core.templatetags.site_tags import money
from events.permissions import can_cancel_booking, can_refund_booking, can_resend_confirmation
from payments.models import Refund
from payments.services import refund_issue

logger = logging.getLogger(__name__)


class TicketInline(ReadOnlyAdminMixin, OrganizerScopedInline, admin.TabularInline):
    model = Ticket
    extra = 0
    fields = ["ticket_type", "status", "price", "attendee_name", "code", "issued_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("ticket_type")


class BookingChangeList(ChangeList):
    """The change list with each booking's ticket count, in the list query (no query per row)."""

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.annotate(ticket_total=Count("tickets", distinct=True))


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdminMixin, OrganizerScopedAdmin):
    # Compact enough for 1280 px with the filters beside it (static/css/backoffice.css); a hold's
    # expiry (15 minutes) is on its page, the "Reserved" filter lists the holds.
    list_display = ["short_id", "event", "email_column", "status", "total_column", "ticket_count", "created_column"]
    list_filter = ["status", ("event", RelatedOnlyFieldListFilter), ("created_at", DateFieldListFilter)]
    list_select_related = ["event"]
    search_fields = ["email", "=id", "tickets__code", "tickets__attendee_name"]
    fields = ["event", "status", "email", "buyer", "total", "currency", "created_at", "expires_at", "confirmed_at",
              "confirmation_sent_at", "closed_at", "refunds"]
    readonly_fields = fields
    actions = ["refund_bookings", "resend_confirmation", "cancel_holds"]

    def get_changelist(self, request, **kwargs):
        return BookingChangeList

    def get_inlines(self, request, obj):
        return [TicketInline, PaymentInline]

    @admin.display(description=gettext_lazy("booking"), ordering="created_at")
    def short_id(self, obj: Booking) -> str:
        return obj.reference

    @admin.display(description=gettext_lazy("total"), ordering="total")
    def total_column(self, obj: Booking) -> str:
        return money(obj.total, obj.currency)

    @admin.display(description=gettext_lazy("created"), ordering="created_at")
    def created_column(self, obj: Booking) -> str:
        return format_local(obj.created_at, obj.event.timezone)

    @admin.display(description=gettext_lazy("e-mail"), ordering="email")
    def email_column(self, obj: Booking) -> str:
        # A long address may break before its "@" rather than widen the list.
        local, at, domain = obj.email.rpartition("@")
        return format_html("{}<wbr>{}{}", local, at, domain) if at else obj.email

    @admin.display(description=gettext_lazy("tickets"), ordering="ticket_total")
    def ticket_count(self, obj: Booking) -> int:
        return obj.ticket_total

    @admin.display(description=gettext_lazy("refunds"))
    def refunds(self, obj: Booking):
        rows = Refund.objects.filter(payment__booking_id=obj.pk).order_by("created_at")
        if not rows:
            return "–"
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            _("refund"), _("amount"), _("status"), _("reason"), _("created"),
            format_html_join(
                "", "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (reverse("admin:payments_refund_change", args=[r.pk]), str(r.pk)[:8],
                     money(r.amount, obj.currency),
                     r.get_status_display() + (f" ({r.failure_code})" if r.failure_code else ""), r.reason,
                     format_local(r.created_at, obj.event.timezone))
                    for r in rows
                ),
            ),
        )

    # --- action permissions (see events/organizer_group.py)

    # The actions get their rows from `get_queryset` (scoped), so the model-level check suffices;
    # the API asks the same functions about one booking.

    def has_refund_permission(self, request):
        return can_refund_booking(request.user)

    def has_resend_permission(self, request):
        return can_resend_confirmation(request.user)

    def has_cancel_permission(self, request):
        return can_cancel_booking(request.user)

    # --- actions: each calls the service the other doors call

    @admin.action(description=gettext_lazy("Refund selected bookings in full…"), permissions=["refund"])
    def refund_bookings(self, request, queryset):
        form = admin_views.ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            run_for_each(self, request, queryset.select_related("event"),
                         lambda b: refund_issue(booking=b, reason=reason),
                         done=ngettext_lazy("%(n)d refund queued.", "%(n)d refunds queued.", "n"),
                         log=_("Refund queued: %(reason)s") % {"reason": reason})
            return None
        return admin_views.confirmation_page(
            self, request, queryset=queryset, action="refund_bookings", form=form,
            title=_("Refund bookings"),
            question=_("Refund every issued ticket of these bookings? The money goes back to the buyer's card "
                       "and the tickets go back on sale."),
            button=_("Yes, refund"),
            items=[f"{b.reference} – {b.email} – {b.event} – {money(b.total, b.currency)} "
                   f"({b.get_status_display()})" for b in queryset.select_related("event")],
        )

    @admin.action(description=gettext_lazy("Resend the confirmation e-mail"), permissions=["resend"])
    def resend_confirmation(self, request, queryset):
        def resend(booking: Booking) -> None:
            try:
                sent = booking_confirmation_send(booking_id=booking.pk, force=True)
            except (OSError, smtplib.SMTPException) as exc:
                logger.exception("resending the confirmation of booking %s failed", booking.pk)
                raise InvalidTransition(_("The mail server refused the message; try again later.")) from exc
            if not sent:
                raise InvalidTransition(_("Only a confirmed booking has a confirmation to send."))

        run_for_each(self, request, queryset, resend,
                     done=ngettext_lazy("%(n)d confirmation sent again.", "%(n)d confirmations sent again.", "n"),
                     log=_("Confirmation e-mail sent again."))

    @admin.action(description=gettext_lazy("Cancel selected holds (release the tickets)"), permissions=["cancel"])
    def cancel_holds(self, request, queryset):
        run_for_each(self, request, queryset.select_related("event"), lambda b: booking_cancel(booking=b),
                     done=ngettext_lazy("%(n)d hold cancelled.", "%(n)d holds cancelled.", "n"),
                     log=_("Hold cancelled."))


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdminMixin, OrganizerScopedAdmin):
    list_display = ["short_code", "attendee_name", "ticket_type", "event", "booking_link", "status", "price_column",
                    "issued_at"]
    list_filter = ["status", ("ticket_type__event", RelatedOnlyFieldListFilter)]
    list_select_related = ["ticket_type__event", "booking"]
    search_fields = ["=code", "attendee_name", "booking__email"]
    fields = ["booking", "ticket_type", "status", "price", "attendee_name", "code", "issued_at"]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("code"), ordering="code")
    def short_code(self, obj: Ticket) -> str:
        return obj.code[:8]

    @admin.display(description=gettext_lazy("event"), ordering="ticket_type__event__starts_at")
    def event(self, obj: Ticket):
        return obj.ticket_type.event

    @admin.display(description=gettext_lazy("price"), ordering="price")
    def price_column(self, obj: Ticket) -> str:
        return money(obj.price, obj.ticket_type.event.currency)

    @admin.display(description=gettext_lazy("booking"))
    def booking_link(self, obj: Ticket):
        return format_html('<a href="{}">{}</a>', reverse("admin:bookings_booking_change", args=[obj.booking_id]),
                           obj.booking.reference)
