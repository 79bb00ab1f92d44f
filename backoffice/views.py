"""Admin pages and reads of the organizer back office beyond the model forms.

The sales dashboard of an event, the sales columns of the event list, the
streamed CSV export of bookings and attendees, and the confirmation pages of
the admin actions that move money (cancel an event, refund bookings). They
read bookings and payments and call their services, which the back office,
on top of the three apps, may import.
"""

from __future__ import annotations

import csv
import itertools
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, DecimalField, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from backoffice.local_time import DATE_FORMAT, format_export, format_local
from backoffice.scoping import scope_queryset
from bookings.models import Booking, Ticket
from core.errors import DomainError
from events.models import Event, TicketType
from events.rules import remaining_expression
from events.selectors import TicketTypeAvailability, availability_for_event
from payments.models import Payment, Refund
from payments.selectors import (
    bookings_awaiting_cancellation_refund,
    payments_stuck_processing,
    refunds_failed_unretried,
    refunds_needing_attention,
    refunds_stuck_pending,
)
from payments.services import event_cancel_and_refund

# --- Sales dashboard -------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeSales(TicketTypeAvailability):
    """A ticket type's availability (the catalogue's figures) and its revenue."""

    revenue: Decimal


@dataclass(frozen=True)
class DayBar:
    day: date
    label: str  # the day as the back office writes dates (DATE_FORMAT)
    sold: int
    x: float
    y: float
    width: float
    height: float


# The chart spans at least CHART_MIN_DAYS (a single day of sales drawn alone is one wide block that
# reads as a broken chart) and at most CHART_MAX_DAYS.
CHART_WIDTH, CHART_HEIGHT, CHART_MIN_DAYS, CHART_MAX_DAYS = 720, 180, 7, 90
CENTS = Decimal("0.01")


def revenue_tickets():
    """The tickets whose prices are revenue: issued ones (refunded tickets are not revenue)."""
    return Ticket.objects.filter(status=Ticket.Status.ISSUED)


def event_revenue(event_ids: Iterable) -> dict:
    """Revenue per event: the prices of its issued tickets (refunded tickets are not revenue)."""
    rows = (
        revenue_tickets().filter(ticket_type__event_id__in=list(event_ids))
        .values("ticket_type__event_id").annotate(revenue=Sum("price")).order_by()
    )
    return {row["ticket_type__event_id"]: row["revenue"] for row in rows}


def type_sales(event: Event, availability=None) -> list[TypeSales]:
    """Sold / held / available (the catalogue's definition) and revenue of each ticket type."""
    availability = availability or availability_for_event(event=event)
    revenue = dict(
        revenue_tickets().filter(ticket_type__event_id=event.pk)
        .values("ticket_type_id").annotate(revenue=Sum("price")).order_by()
        .values_list("ticket_type_id", "revenue")
    )
    return [
        TypeSales(**vars(row), revenue=(revenue.get(row.id) or Decimal(0)).quantize(CENTS))
        for row in availability.ticket_types
    ]


def sold_per_day(event: Event) -> list[DayBar]:
    """Tickets sold (issued, not refunded) per day in the event's time zone, as bars of an SVG chart.

    Days without sales are shown as empty bars; the chart ends on the last day
    with sales and spans at least `CHART_MIN_DAYS` (the days before the first
    sale are empty) and at most `CHART_MAX_DAYS`.
    """
    tz = zoneinfo.ZoneInfo(event.timezone)
    counts = dict(
        Ticket.objects.filter(ticket_type__event_id=event.pk, status=Ticket.Status.ISSUED, issued_at__isnull=False)
        .annotate(day=TruncDate("issued_at", tzinfo=tz)).values("day").annotate(n=Count("pk")).order_by()
        .values_list("day", "n")
    )
    if not counts:
        return []
    last = max(counts)
    first = max(min(min(counts), last - timedelta(days=CHART_MIN_DAYS - 1)),
                last - timedelta(days=CHART_MAX_DAYS - 1))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    top = max(counts.get(d, 0) for d in days) or 1
    slot = CHART_WIDTH / len(days)
    bars = []
    for i, day in enumerate(days):
        n = counts.get(day, 0)
        height = round(CHART_HEIGHT * n / top, 1)
        bars.append(DayBar(day=day, label=dateformat.format(day, DATE_FORMAT), sold=n,
                           x=round(i * slot + slot * 0.1, 1), y=round(CHART_HEIGHT - height, 1),
                           width=round(slot * 0.8, 1), height=height))
    return bars


def sales_summary(selling: list[DayBar]) -> str:
    """The chart's figures in a sentence (read before the bars, and all there is to read on one day)."""
    if not selling:
        return ""
    total = sum(b.sold for b in selling)
    sold = ngettext("%(n)d ticket sold", "%(n)d tickets sold", total) % {"n": total}
    if len(selling) == 1:
        return _("%(sold)s, all on %(day)s.") % {"sold": sold, "day": selling[0].label}
    best = max(selling, key=lambda b: b.sold)
    return _("%(sold)s on %(days)d days since %(first)s; the best day was %(best)s (%(n)d).") % {
        "sold": sold, "days": len(selling), "first": selling[0].label, "best": best.label, "n": best.sold}


def dashboard_view(model_admin, request, event: Event) -> TemplateResponse:
    availability = availability_for_event(event=event)
    types = type_sales(event, availability)
    bars = sold_per_day(event)
    selling = [b for b in bars if b.sold]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": event,
        "title": _("Sales dashboard: %(event)s") % {"event": event.name},
        "event": event,
        "starts": format_local(event.starts_at, event.timezone),
        "types": types,
        "totals": {
            "capacity": event.capacity if event.capacity is not None else sum(t.capacity for t in types),
            "sold": sum(t.sold for t in types),
            "held": sum(t.held for t in types),
            "available": availability.available,
            "revenue": sum((t.revenue for t in types), Decimal("0.00")),
        },
        "bars": bars,
        "chart": {
            "width": CHART_WIDTH, "height": CHART_HEIGHT, "max": max((b.sold for b in bars), default=0),
            "total": sum(b.sold for b in bars), "first_day": bars[0].day if bars else None,
            "last_day": bars[-1].day if bars else None,
            "first_label": bars[0].label if bars else "", "last_label": bars[-1].label if bars else "",
            "summary": sales_summary(selling),
        },
        "stuck_payments": list(
            payments_stuck_processing(Payment.objects.filter(booking__event_id=event.pk)).select_related("booking")
            .order_by("updated_at")
        ),
        "stuck_refunds": list(
            refunds_stuck_pending(Refund.objects.filter(payment__booking__event_id=event.pk))
            .select_related("payment__booking").order_by("updated_at")
        ),
        "failed_refunds": list(
            refunds_failed_unretried(Refund.objects.filter(payment__booking__event_id=event.pk))
            .select_related("payment__booking").order_by("created_at")
        ),
        "unrecorded_refunds": list(
            refunds_needing_attention(Refund.objects.filter(payment__booking__event_id=event.pk))
            .select_related("payment__booking").order_by("created_at")
        ),
        "awaiting_cancellation_refund": bookings_awaiting_cancellation_refund(event_ids=[event.pk]).count(),
        "stuck_after_minutes": max(1, settings.PAYMENT_STUCK_AFTER_SECONDS // 60),
    }
    return TemplateResponse(request, "admin/events/event/dashboard.html", context)


# --- Event list -------------------------------------------------------------------------------


class EventChangeList(ChangeList):
    """The change list with each event's sales, computed in the list query (no query per row)."""

    def get_queryset(self, request, exclude_parameters=None):
        return with_sales(super().get_queryset(request, exclude_parameters))


def with_sales(queryset):
    """Events annotated with their ticket types' totals and revenue (correlated subqueries, one query)."""
    def type_sum(expression):
        return Coalesce(
            Subquery(
                TicketType.objects.filter(event_id=OuterRef("pk")).order_by().values("event_id")
                .annotate(total=Sum(expression)).values("total"),
                output_field=IntegerField(),
            ),
            Value(0),
        )

    revenue = Subquery(
        revenue_tickets().filter(ticket_type__event_id=OuterRef("pk")).order_by()
        .values("ticket_type__event_id").annotate(total=Sum("price")).values("total"),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )
    return queryset.annotate(
        sold_total=type_sum("sold"),
        held_total=type_sum("held"),
        capacity_total=type_sum("capacity"),
        # The name `event_available` reads: the sum of the types' remainders.
        type_remaining=type_sum(remaining_expression()),
        revenue=Coalesce(revenue, Value(Decimal("0.00")), output_field=DecimalField(max_digits=14, decimal_places=2)),
    )


# --- CSV export ----------------------------------------------------------------------------------

CSV_HEADER = [
    "event", "booking", "booking_status", "email", "booked_at", "confirmed_at", "total", "currency",
    "ticket_code", "ticket_type", "ticket_status", "price", "attendee_name", "issued_at", "time_zone",
]
# The columns holding times: written as the wall clock in the event's zone (`time_zone`), to the second.
CSV_TIMES = {"booked_at", "confirmed_at", "issued_at"}
# The door list: issued tickets only. A hold (reserved, not paid) is not an attendee, and a refunded,
# released or expired ticket lets nobody in; holds are not exported at all.
EXPORT_TICKET_STATUSES = (Ticket.Status.ISSUED,)
# Spreadsheets (Excel) read a UTF-8 file as UTF-8, names with accents included, only after this mark.
BOM = "\ufeff"


class _Echo:
    """A file-like object whose `write` returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (buyers type names and e-mails)."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def export_rows(user, event_ids: list) -> Iterator[list[str]]:
    """One row per issued ticket of the events (the attendees; holds are not), in booking order."""
    tickets = scope_queryset(
        Ticket.objects.filter(booking__event_id__in=event_ids, status__in=EXPORT_TICKET_STATUSES), user
    ).order_by("booking__event__starts_at", "booking__created_at", "booking_id", "ticket_type__position", "pk")
    fields = ["booking__event__name", "booking_id", "booking__status", "booking__email", "booking__created_at",
              "booking__confirmed_at", "booking__total", "booking__currency", "code", "ticket_type__name", "status",
              "price", "attendee_name", "issued_at", "booking__event__timezone"]
    times = [i for i, name in enumerate(CSV_HEADER) if name in CSV_TIMES]
    yield CSV_HEADER
    for row in tickets.values_list(*fields).iterator(chunk_size=2000):
        row = list(row)
        for i in times:
            row[i] = format_export(row[i], row[-1])
        yield [_cell(v) for v in row]


def export_response(user, events: list[Event]) -> StreamingHttpResponse:
    """The attendees (issued tickets) of `events` as a CSV download, streamed row by row, after a BOM."""
    writer = csv.writer(_Echo())
    rows = export_rows(user, [e.pk for e in events])
    lines = itertools.chain([BOM], (writer.writerow(row) for row in rows))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    name = f"bookings-{events[0].slug}" if len(events) == 1 else f"bookings-{timezone.localdate():%Y-%m-%d}"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


# --- Confirmation pages of actions that move money ----------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason (recorded with each refund)"), max_length=300, required=False,
                             widget=forms.TextInput(attrs={"size": 60}))


def confirmation_page(model_admin, request, *, queryset, action: str | None, title: str, question: str,
                      button: str, items: list, form: ReasonForm) -> TemplateResponse:
    """A confirmation page that posts back to the action (list) or to the page it was opened from."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "question": question,
        "button": button,
        "items": items,
        "form": form,
        "action": action,
        "selected": [str(pk) for pk in queryset.values_list("pk", flat=True)] if action else [],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)


def run_cancel(model_admin, request, events: Iterable[Event], reason: str) -> None:
    """Cancel each event through `event_cancel_and_refund`; one message for the done, one per failure."""
    done = refunds = 0
    for event in events:
        try:
            queued = len(event_cancel_and_refund(event=event, reason=reason))
        except DomainError as error:
            model_admin.message_user(request, f"{event}: {error.detail}", messages.ERROR)
            continue
        model_admin.log_change(request, event, _("Cancelled; %(refunds)s.") % {"refunds": _refunds_queued(queued)})
        refunds += queued
        done += 1
    if done:
        model_admin.message_user(
            request,
            ngettext("%(n)d event cancelled; %(refunds)s.", "%(n)d events cancelled; %(refunds)s.", done)
            % {"n": done, "refunds": _refunds_queued(refunds)},
            messages.SUCCESS,
        )


def _refunds_queued(n: int) -> str:
    return ngettext("%(r)d refund queued", "%(r)d refunds queued", n) % {"r": n}


def cancel_items(events: Iterable[Event]) -> list[str]:
    """What cancelling each event will do, for the confirmation page."""
    events = list(events)
    counts = {
        row["event_id"]: row
        for row in Booking.objects.filter(event_id__in=[e.pk for e in events]).values("event_id").annotate(
            confirmed=Count("pk", filter=Q(status=Booking.Status.CONFIRMED)),
            holds=Count("pk", filter=Q(status=Booking.Status.RESERVED)),
            processing=Count("pk", filter=Q(status=Booking.Status.PROCESSING)),
        ).order_by()
    }
    items = []
    for event in events:
        row = counts.get(event.pk, {"confirmed": 0, "holds": 0, "processing": 0})
        items.append(
            _("%(event)s (%(start)s): %(confirmed)s refunded, %(holds)s released, %(processing)s voided.")
            % {"event": event.name, "start": format_local(event.starts_at, event.timezone),
               "confirmed": ngettext("%(n)d confirmed booking", "%(n)d confirmed bookings", row["confirmed"])
               % {"n": row["confirmed"]},
               "holds": ngettext("%(n)d hold", "%(n)d holds", row["holds"]) % {"n": row["holds"]},
               "processing": ngettext("%(n)d payment in progress", "%(n)d payments in progress", row["processing"])
               % {"n": row["processing"]}}
        )
    return items
