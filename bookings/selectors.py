"""Reads over bookings and tickets."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from bookings.models import Booking, Ticket
from core.errors import GuestLinkExpired
from events.models import Event, TicketType
from events.permissions import can_view_bookings, organizer_ids


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
    events the user manages as organizer staff who may view bookings (`can_view_bookings`;
    all of them for a superuser)."""
    if include_managed and user.is_superuser:
        qs = Booking.objects.all()
    elif include_managed and organizer_ids(user) and can_view_bookings(user):
        qs = Booking.objects.filter(Q(buyer=user) | Q(event__organizer_id__in=organizer_ids(user)))
    else:
        qs = Booking.objects.filter(buyer=user)
    return qs.select_related("event").order_by("-created_at")


@dataclass(frozen=True)
class BuyerBookingLists:
    """A buyer's bookings split at their events' ends (`booking_lists_for_buyer`).

    `upcoming`: bookings of events not ended yet, soonest event first (at most `UPCOMING_LIMIT`);
    `past`: bookings of ended events, latest event first, a query for the view to paginate. Each
    booking has its event (`select_related`) and `ticket_count`, the tickets it was made for.
    """

    upcoming: list[Booking]
    upcoming_more: bool
    past: QuerySet[Booking]


# Bounded work per request: a buyer's upcoming bookings are listed in full up to this many.
UPCOMING_LIMIT = 50


def booking_lists_for_buyer(*, user, now=None) -> BuyerBookingLists:
    """The buyer's own bookings for "My bookings": upcoming (event not ended at `now`) and past."""
    now = now or timezone.now()
    qs = Booking.objects.filter(buyer=user).select_related("event").annotate(ticket_count=Count("tickets"))
    upcoming = list(qs.filter(event__ends_at__gt=now).order_by("event__starts_at", "-created_at")[:UPCOMING_LIMIT + 1])
    return BuyerBookingLists(
        upcoming=upcoming[:UPCOMING_LIMIT],
        upcoming_more=len(upcoming) > UPCOMING_LIMIT,
        past=qs.filter(event__ends_at__lte=now).order_by("-event__starts_at", "-created_at"),
    )


@dataclass(frozen=True)
class BookingAccess:
    """A booking and how the caller reaches it.

    `owner`: the buyer's account or a guest link that still works; the owner sees
    the booking's access token and acts as the buyer (cancel a hold, ask for a
    refund). Otherwise the caller is the event's organizer staff, who may view
    bookings: the token is never shown to them, and what they may do is asked
    of `events.permissions` (`bookings.permissions`).
    """

    booking: Booking
    owner: bool


def guest_link_valid(booking: Booking, *, now=None) -> bool:
    """Whether the booking's guest link still works: until `GUEST_LINK_VALID_DAYS_AFTER_EVENT`
    days after its event ended."""
    ends = booking.event.ends_at + timedelta(days=settings.GUEST_LINK_VALID_DAYS_AFTER_EVENT)
    return (now or timezone.now()) < ends


def booking_access(booking: Booking, *, user=None, token: str | None = None, now=None) -> BookingAccess | None:
    """How the caller may reach `booking`: its buyer, a holder of a guest link that still works,
    or the event's organizer staff who may view bookings; None for anyone else (answer 404).

    A right token past `guest_link_valid`, with no other way in, raises `GuestLinkExpired`.
    """
    signed_in = user is not None and user.is_authenticated
    if signed_in and booking.buyer_id == user.pk:
        return BookingAccess(booking, owner=True)
    # Constant time: the token is a secret; bytes, so that any text can be compared.
    has_token = bool(token) and hmac.compare_digest(str(token).encode(), booking.access_token.encode())
    if has_token and guest_link_valid(booking, now=now):
        return BookingAccess(booking, owner=True)
    if signed_in and can_view_bookings(user, booking.event):
        return BookingAccess(booking, owner=False)
    if has_token:
        raise GuestLinkExpired()
    return None


def booking_visible_to(booking: Booking, *, user=None, token: str | None = None) -> bool:
    """Who may see a booking (`booking_access`); an expired guest link raises `GuestLinkExpired`."""
    return booking_access(booking, user=user, token=token) is not None


def booking_get_access(*, booking_id, user=None, token: str | None = None) -> BookingAccess | None:
    """The booking with its event and tickets and how the caller reaches it, or None (answer 404);
    `GuestLinkExpired` for an expired guest link."""
    booking = (
        Booking.objects.select_related("event__organizer")
        .prefetch_related("tickets__ticket_type")
        .filter(pk=booking_id)
        .first()
    )
    return None if booking is None else booking_access(booking, user=user, token=token)


def booking_get_visible(*, booking_id, user=None, token: str | None = None) -> Booking | None:
    """The booking with its event and tickets if the caller may see it, else None (answer 404);
    `GuestLinkExpired` for an expired guest link."""
    access = booking_get_access(booking_id=booking_id, user=user, token=token)
    return None if access is None else access.booking


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


def lapsed_holds_per_type(*, event: Event, now) -> dict[uuid.UUID, int]:
    """{ticket type id: held tickets of `event` whose reservation lapsed by `now` but is not expired
    yet} (the sweeper or a reservation that needs the seats releases them). One query."""
    rows = (
        Ticket.objects.filter(ticket_type__event_id=event.pk, status=Ticket.Status.HELD,
                              booking__status=Booking.Status.RESERVED, booking__expires_at__lte=now)
        .values("ticket_type_id").annotate(n=Count("pk")).order_by()
    )
    return {row["ticket_type_id"]: row["n"] for row in rows}
