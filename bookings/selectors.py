"""Reads over bookings and tickets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from bookings.models import Booking, Ticket
from events.models import Event, TicketType
from events.permissions import can_manage_event, organizer_ids


@dataclass(frozen=True)
class Mismatch:
    """A counter that disagrees with the ticket rows, or a ticket in the wrong booking state."""

    kind: str  # "ticket_type", "event" or "booking"
    pk: uuid.UUID
    label: str
    field: str
    counter: int | str
    actual: int | str

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.label}): {self.field} is {self.counter}, rows say {self.actual}"


def ticket_counts(*, event_ids: list[uuid.UUID] | None = None) -> dict[uuid.UUID, tuple[int, int]]:
    """(held, issued) ticket rows per ticket type, in one aggregate query."""
    qs = Ticket.objects.all()
    if event_ids is not None:
        qs = qs.filter(ticket_type__event_id__in=event_ids)
    rows = (
        qs.values("ticket_type_id")
        .annotate(held=Count("pk", filter=Q(status=Ticket.Status.HELD)),
                  issued=Count("pk", filter=Q(status=Ticket.Status.ISSUED)))
        .order_by()
    )
    return {row["ticket_type_id"]: (row["held"], row["issued"]) for row in rows}


def inventory_mismatches(*, event_ids: list[uuid.UUID] | None = None) -> list[Mismatch]:
    """Every counter that differs from its ticket rows, and tickets whose status contradicts their booking's.

    TicketType: held = tickets `held`, sold = tickets `issued`. Event: the sums
    over its types while it has a capacity, 0 while it has none.
    """
    counts = ticket_counts(event_ids=event_ids)
    types = TicketType.objects.all()
    events = Event.objects.all()
    if event_ids is not None:
        types, events = types.filter(event_id__in=event_ids), events.filter(pk__in=event_ids)
    found: list[Mismatch] = []
    per_event: dict[uuid.UUID, list[int]] = {}
    for tt in types.only("pk", "name", "event_id", "held", "sold"):
        held, issued = counts.get(tt.pk, (0, 0))
        sums = per_event.setdefault(tt.event_id, [0, 0])
        sums[0] += held
        sums[1] += issued
        if tt.held != held:
            found.append(Mismatch("ticket_type", tt.pk, tt.name, "held", tt.held, held))
        if tt.sold != issued:
            found.append(Mismatch("ticket_type", tt.pk, tt.name, "sold", tt.sold, issued))
    for event in events.only("pk", "name", "capacity", "held", "sold"):
        held, issued = per_event.get(event.pk, (0, 0)) if event.capacity is not None else (0, 0)
        if event.held != held:
            found.append(Mismatch("event", event.pk, event.name, "held", event.held, held))
        if event.sold != issued:
            found.append(Mismatch("event", event.pk, event.name, "sold", event.sold, issued))
    found.extend(_status_mismatches(event_ids))
    return found


# Ticket statuses each booking status allows.
_ALLOWED_TICKETS = {
    Booking.Status.RESERVED: {Ticket.Status.HELD},
    Booking.Status.PROCESSING: {Ticket.Status.HELD},
    Booking.Status.CONFIRMED: {Ticket.Status.ISSUED, Ticket.Status.REFUNDED},
    Booking.Status.REFUNDED: {Ticket.Status.REFUNDED},
    Booking.Status.EXPIRED: {Ticket.Status.RELEASED},
    Booking.Status.CANCELLED: {Ticket.Status.RELEASED},
}


def _status_mismatches(event_ids: list[uuid.UUID] | None) -> list[Mismatch]:
    found = []
    for booking_status, allowed in _ALLOWED_TICKETS.items():
        qs = Ticket.objects.filter(booking__status=booking_status).exclude(status__in=allowed)
        if event_ids is not None:
            qs = qs.filter(booking__event_id__in=event_ids)
        for ticket in qs.values("pk", "status", "booking_id")[:100]:
            found.append(Mismatch("booking", ticket["booking_id"], f"ticket {ticket['pk']}", "status",
                                  str(booking_status), ticket["status"]))
    return found


def booking_list_for_user(*, user, include_managed: bool = False) -> QuerySet[Booking]:
    """The user's own bookings, newest first; with `include_managed`, also the bookings of
    events the user manages as an organizer member (all of them for a superuser)."""
    if include_managed and user.is_superuser:
        qs = Booking.objects.all()
    elif include_managed:
        qs = Booking.objects.filter(Q(buyer=user) | Q(event__organizer_id__in=organizer_ids(user)))
    else:
        qs = Booking.objects.filter(buyer=user)
    return qs.select_related("event").order_by("-created_at")


def booking_visible_to(booking: Booking, *, user=None, token: str | None = None) -> bool:
    """Who may see a booking: its buyer, a member of the event's organizer, a superuser,
    or anyone holding its secret access token (guest links)."""
    import hmac

    if token and hmac.compare_digest(str(token).encode(), booking.access_token.encode()):
        return True
    if user is None or not user.is_authenticated:
        return False
    return booking.buyer_id == user.pk or can_manage_event(user, booking.event)


def booking_get_visible(*, booking_id, user=None, token: str | None = None) -> Booking | None:
    """The booking with its event and tickets if the caller may see it, else None (answer 404)."""
    booking = (
        Booking.objects.select_related("event__organizer")
        .prefetch_related("tickets__ticket_type")
        .filter(pk=booking_id)
        .first()
    )
    if booking is None or not booking_visible_to(booking, user=user, token=token):
        return None
    return booking


def booking_hold_expired(booking: Booking, *, now=None) -> bool:
    """Whether the booking's hold is over: expired, or still `reserved` past its deadline (not yet swept).

    Paying or cancelling such a hold is refused by the services (`HoldExpired`).
    """
    if booking.status == Booking.Status.EXPIRED:
        return True
    return booking.status == Booking.Status.RESERVED and booking.expires_at <= (now or timezone.now())


def booking_items(booking: Booking) -> list[dict]:
    """The booking's lines: ticket type, quantity, unit price, subtotal (from its prefetched tickets)."""
    lines: dict = {}
    for ticket in booking.tickets.all():
        line = lines.setdefault(
            (ticket.ticket_type_id, ticket.price),
            {"ticket_type": ticket.ticket_type, "quantity": 0, "price": ticket.price, "subtotal": 0},
        )
        line["quantity"] += 1
        line["subtotal"] += ticket.price
    return list(lines.values())


def booking_with_relations(booking: Booking, *, tickets: list[Ticket], payments: list) -> Booking:
    """`booking` with its tickets and payments attached as if prefetched, so that rendering it
    (`booking.tickets.all()`, `booking.payments.all()`) runs no query. For a service that has
    just written these rows and knows them all."""
    cache = {}
    for name, rows in (("tickets", tickets), ("payments", payments)):
        queryset = getattr(booking, name).get_queryset()  # unevaluated: runs no query
        queryset._result_cache, queryset._prefetch_done = list(rows), True  # what prefetch_related stores
        cache[name] = queryset
    booking._prefetched_objects_cache = cache
    return booking
