"""The catalogue pages: thin views over `events.selectors`.

The reservation form on the event page posts to `bookings:reserve` (the use
case belongs to the bookings app); that view re-renders this page through
`event_page_context` when the service refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.generic import ListView, View

from events.availability import availability_cache_key, without_lapsed_holds
from events.forms import EventFilterForm
from events.models import Event, TicketType
from events.permissions import can_manage_event
from events.rules import SALES_ENDED, SALES_NOT_STARTED, event_shortage, sales_state, shortage, ticket_type_available
from events.selectors import event_available, event_cities, event_list_published

# At or below this many seats left an event's card says "few left".
FEW_LEFT = 10


def availability_badge(available: int, short: str | None = None) -> str:
    """The event card's badge: `short` (`events.rules.event_shortage`) says sold out from all reserved."""
    if available <= 0:
        return short or "sold_out"
    if available <= FEW_LEFT:
        return "few_left"
    return "on_sale"


class EventListView(ListView):
    """Upcoming published events: search, filters and pages."""

    template_name = "events/event_list.html"
    context_object_name = "events"
    paginate_by = 12

    def get_queryset(self):
        self.filter_form = EventFilterForm(self.request.GET or None)
        if self.filter_form.is_bound:
            self.filter_form.is_valid()  # invalid fields are shown and ignored
        return event_list_published(**self.filter_form.filters())

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for event in context["events"]:
            event.available = event_available(event)
            short = event_shortage(event, available=event.available, unsold=event.type_unsold or 0)
            event.badge = availability_badge(event.available, short) if event.min_price is not None else "none"
        form = self.filter_form
        context.update(
            filter_form=form,
            cities=event_cities(),
            filtered=form.is_bound and any(v for v in form.filters().values()),
        )
        return context


# --- Event page ---------------------------------------------------------------------


@dataclass
class TicketRow:
    """One ticket type on the event page: price, what is left, and the quantity input's bounds."""

    ticket_type: TicketType
    available: int
    # "open", "sold_out", "all_reserved" (the rest is held by others: `events.rules.shortage`),
    # "not_started", "ended", "closed" (event not on sale)
    state: str
    value: int = 0
    error: str = ""
    left: int | None = None  # what the last SoldOut said was left

    @property
    def id(self):
        return self.ticket_type.pk

    @property
    def can_buy(self) -> bool:
        return self.state == "open"

    @property
    def max_quantity(self) -> int:
        return min(self.ticket_type.max_per_booking, self.available) if self.can_buy else 0

    @property
    def few_left(self) -> bool:
        return self.can_buy and self.available <= FEW_LEFT


def ticket_rows(event: Event, ticket_types: list[TicketType], *, values: dict | None = None,
                errors: dict | None = None, left: dict | None = None) -> list[TicketRow]:
    """The rows of the ticket table, from counters (`ticket_type_available`) and the sales window."""
    now = timezone.now()
    values, errors, left = values or {}, errors or {}, left or {}
    rows = []
    for tt in ticket_types:
        available = ticket_type_available(tt, event=event)
        window = sales_state(tt, event=event, now=now)
        if not event.is_published:
            state = "closed"
        elif window == SALES_NOT_STARTED:
            state = "not_started"
        elif window == SALES_ENDED:
            state = "ended"
        else:
            state = shortage(tt, event=event) or "open"
        rows.append(TicketRow(tt, available, state, value=values.get(str(tt.pk), 0) or 0,
                              error=errors.get(str(tt.pk), ""), left=left.get(str(tt.pk))))
    return rows


def polls(event: Event, rows: list[TicketRow]) -> bool:
    """Whether the ticket rows refresh themselves: while what is left can still change."""
    return event.is_published and any(row.state in ("open", "sold_out", "all_reserved") for row in rows)


@dataclass
class ReservePanel:
    """What the reservation form shows: e-mail field, entered values and errors."""

    ask_email: bool
    email: str = ""
    email_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    values: dict[str, int] = field(default_factory=dict)
    row_errors: dict[str, str] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)


def _reserve_panel_key(event: Event) -> str:
    return f"reserve-panel:{event.pk}"


def reserve_panel_stash(request: HttpRequest, event: Event, panel: ReservePanel) -> None:
    """Keep a refused reservation's form (quantities, e-mail, errors) for the event page the buyer is
    redirected to (Post/Redirect/Get: reloading that page sends nothing again)."""
    request.session[_reserve_panel_key(event)] = {
        "email": panel.email,
        "email_errors": [str(e) for e in panel.email_errors],
        "errors": [str(e) for e in panel.errors],
        "values": {str(k): int(v) for k, v in panel.values.items()},
        "row_errors": {str(k): str(v) for k, v in panel.row_errors.items()},
        "left": {str(k): int(v) for k, v in panel.left.items()},
    }


def reserve_panel_pop(request: HttpRequest, event: Event) -> ReservePanel | None:
    """The refused reservation's form kept by `reserve_panel_stash`, once; None when there is none."""
    stash = request.session.pop(_reserve_panel_key(event), None) if hasattr(request, "session") else None
    if not isinstance(stash, dict):
        return None
    return ReservePanel(ask_email=asks_email(request), **stash)


def asks_email(request: HttpRequest) -> bool:
    """Guests (and accounts without an address) give an e-mail address for their tickets."""
    user = request.user
    return not (user.is_authenticated and user.email)


def visible_event_or_404(request: HttpRequest, pk) -> Event:
    """Published and cancelled events for everyone; drafts only for the organizer's members."""
    event = get_object_or_404(Event.objects.select_related("organizer"), pk=pk)
    if event.status == Event.Status.DRAFT and not can_manage_event(request.user, event):
        raise Http404
    return event


def event_page_context(request: HttpRequest, event: Event, *, panel: ReservePanel | None = None) -> dict:
    panel = panel or ReservePanel(ask_email=asks_email(request))
    bookable, types = without_lapsed_holds(event, list(event.ticket_types.all()), now=timezone.now())
    rows = ticket_rows(bookable, types, values=panel.values, errors=panel.row_errors, left=panel.left)
    prices = [row.ticket_type.price for row in rows]
    return {
        "event": event,
        "rows": rows,
        "panel": panel,
        # All reserved: the form stays, so tickets whose hold ends can be reserved once the rows update.
        "can_reserve": any(row.can_buy or row.state == "all_reserved" for row in rows),
        "polling": polls(event, rows),
        "min_price": min(prices, default=None),
        "max_price": max(prices, default=None),
        "hold_minutes": settings.BOOKING_HOLD_MINUTES,
    }


class EventDetailView(View):
    """An event, its ticket types with live availability, and the reservation form."""

    def get(self, request, pk, slug):
        event = visible_event_or_404(request, pk)
        if slug != event.slug:
            return redirect(event, permanent=True)
        panel = reserve_panel_pop(request, event)
        return render(request, "events/event_detail.html", event_page_context(request, event, panel=panel))


def _cached_event_with_types(pk) -> tuple[Event, list[TicketType]] | None:
    """The event and its ticket types as `without_lapsed_holds` gives them, shared by every poller for
    AVAILABILITY_CACHE_SECONDS, or until seats come back (`events.availability.availability_changed`)."""
    key = availability_cache_key(pk)
    found = cache.get(key)
    if found is None:
        event = Event.objects.prefetch_related("ticket_types").filter(pk=pk).first()
        if event is None:
            return None
        found = without_lapsed_holds(event, list(event.ticket_types.all()), now=timezone.now())
        cache.set(key, found, settings.AVAILABILITY_CACHE_SECONDS)
    return found


_SMALL_NUMBER = re.compile(r"[0-9]{1,4}")


def quantity_values(params) -> dict[str, int]:
    """The quantities a poller sent back (`qty_<id>`), so a refresh keeps what the buyer typed."""
    values = {}
    for name, raw in params.items():
        raw = raw.strip()
        if name.startswith("qty_") and _SMALL_NUMBER.fullmatch(raw):  # ASCII digits: str.isdigit() takes "²"
            values[name[4:]] = int(raw)
    return values


class EventAvailabilityView(View):
    """The ticket table's rows, polled by htmx every few seconds; served from a 2-second cache."""

    def get(self, request, pk):
        found = _cached_event_with_types(pk)
        if found is None:
            raise Http404
        event, types = found
        if event.status == Event.Status.DRAFT and not can_manage_event(request.user, event):
            raise Http404
        rows = ticket_rows(event, types, values=quantity_values(request.GET))
        polling = polls(event, rows)
        return render(request, "events/_ticket_rows.html", {"event": event, "rows": rows, "polling": polling})
