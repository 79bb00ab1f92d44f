"""Payments and refunds in the admin, read-only.

Only the payment services change a payment or a refund; the one action here,
retrying a failed refund, calls `payments.services.refund_retry`. Members of an
organizer see only its events' payments and refunds (`backoffice.scoping`).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy

from backoffice.forms import run_for_each
from backoffice.scoping import OrganizerScopedAdmin, OrganizerScopedInline, ReadOnlyAdminMixin
from core.templatetags.site_tags import money
from events.permissions import can_retry_refund
from payments.models import Payment, Refund
from payments.selectors import (
    payments_stuck_processing,
    refunds_failed_unretried,
    refunds_needing_attention,
    refunds_stuck_pending,
)
from payments.services import refund_retry

PAYMENT_FIELDS = ["amount", "currency", "status", "card_brand", "card_last4", "gateway_reference", "failure_code",
                  "failure_message", "created_at", "updated_at"]


def _booking_link(booking_id) -> str:
    # The booking's reference as people see it (`Booking.reference`), from its id without a query.
    return format_html('<a href="{}">{}</a>', reverse("admin:bookings_booking_change", args=[booking_id]),
                       booking_id.hex[:8].upper())


class PaymentInline(ReadOnlyAdminMixin, OrganizerScopedInline, admin.TabularInline):
    """The payments of a booking, on its page."""

    model = Payment
    extra = 0
    fields = PAYMENT_FIELDS
    readonly_fields = PAYMENT_FIELDS
    show_change_link = True


class PaymentAttentionFilter(admin.SimpleListFilter):
    title = gettext_lazy("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("stuck", gettext_lazy("Stuck in processing"))]

    def queryset(self, request, queryset):
        if self.value() == "stuck":
            return payments_stuck_processing(queryset)
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, OrganizerScopedAdmin):
    list_display = ["short_id", "booking_column", "event", "amount_column", "status", "card_brand", "card_last4",
                    "created_at", "updated_at"]
    list_filter = ["status", PaymentAttentionFilter, ("booking__event", RelatedOnlyFieldListFilter)]
    list_select_related = ["booking__event"]
    search_fields = ["=id", "booking__email", "gateway_reference"]
    fields = ["booking", *PAYMENT_FIELDS]
    readonly_fields = fields

    @admin.display(description=gettext_lazy("payment"), ordering="created_at")
    def short_id(self, obj: Payment) -> str:
        return str(obj.pk)[:8]

    @admin.display(description=gettext_lazy("booking"))
    def booking_column(self, obj: Payment):
        return _booking_link(obj.booking_id)

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_column(self, obj: Payment) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description=gettext_lazy("event"))
    def event(self, obj: Payment):
        return obj.booking.event


class RefundAttentionFilter(admin.SimpleListFilter):
    title = gettext_lazy("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("failed", gettext_lazy("Failed, not retried")), ("stuck", gettext_lazy("Pending too long")),
                ("unrecorded", gettext_lazy("Refunded at the gateway, not recorded"))]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return refunds_failed_unretried(queryset)
        if self.value() == "unrecorded":
            return refunds_needing_attention(queryset)
        if self.value() == "stuck":
            return refunds_stuck_pending(queryset)
        return queryset


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, OrganizerScopedAdmin):
    list_display = ["short_id", "booking_column", "event", "amount_column", "status", "failure_code", "retry_of_column",
                    "reason", "created_at"]
    list_filter = ["status", RefundAttentionFilter, "cause", ("payment__booking__event", RelatedOnlyFieldListFilter)]
    list_select_related = ["payment__booking__event"]
    search_fields = ["=id", "payment__booking__email", "gateway_reference"]
    fields = ["payment", "amount", "status", "cause", "reason", "ticket_codes", "gateway_reference", "failure_code",
              "failure_message", "retry_of", "notified_at", "created_at", "updated_at"]
    readonly_fields = fields
    actions = ["retry_refunds"]

    @admin.display(description=gettext_lazy("refund"), ordering="created_at")
    def short_id(self, obj: Refund) -> str:
        return str(obj.pk)[:8]

    @admin.display(description=gettext_lazy("booking"))
    def booking_column(self, obj: Refund):
        return _booking_link(obj.payment.booking_id)

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_column(self, obj: Refund) -> str:
        return money(obj.amount, obj.payment.currency)

    @admin.display(description=gettext_lazy("event"))
    def event(self, obj: Refund):
        return obj.payment.booking.event

    @admin.display(description=gettext_lazy("retry of"))
    def retry_of_column(self, obj: Refund) -> str:
        return str(obj.retry_of_id)[:8] if obj.retry_of_id else ""

    @admin.display(description=gettext_lazy("tickets refunded"))
    def ticket_codes(self, obj: Refund) -> str:
        return ", ".join(f"{t.ticket_type.name} {t.code[:8]}" for t in obj.tickets.select_related("ticket_type"))

    def has_retry_permission(self, request):
        return can_retry_refund(request.user)

    @admin.action(description=gettext_lazy("Retry selected failed refunds"), permissions=["retry"])
    def retry_refunds(self, request, queryset):
        run_for_each(self, request, queryset.select_related("payment"), lambda r: refund_retry(refund=r),
                     done=ngettext_lazy("%(n)d refund queued again.", "%(n)d refunds queued again.", "n"),
                     log=_("Retried."))
