"""Who manages what: an organizer's members manage only that organizer's events.

Used by every door (API, admin, site) so the rule is written once.

Two questions, answered together for every organizer action:
- which rows: a member of an organizer manages only its events (`can_manage_event`,
  `events_managed_by`; superusers: every event);
- which actions: the Django model permission the admin asks for (the "Organizer"
  group of `organizer_group.py` holds them; a view-only staff member holds only
  the `view_` ones). Membership alone permits no write.

`has_organizer_permission` combines both; the `can_*` functions name each action
with the permission the admin checks for it, and both the admin (its
`has_*_permission` methods and action permissions) and the API's permission
classes call them. Without a row (`event=None`), they answer the admin's
model-level question: may the user do this to the rows it manages at all.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.db import CompiledQuery
from core.recent import RecentCopies
from events.models import Event, Organizer


def organizer_ids(user) -> frozenset[int]:
    """Ids of the organizers the user is a member of (memoized on the user object for a request)."""
    if user is None or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_organizer_ids", None)
    if cached is None:
        cached = frozenset(Organizer.objects.filter(members=user).values_list("pk", flat=True))
        user._organizer_ids = cached
    return cached


def can_manage_event(user, event: Event) -> bool:
    """Whether `event` is one of the user's organizers' (which rows; not which actions)."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_superuser or event.organizer_id in organizer_ids(user)


# --- Which actions: the admin's permissions, for every door -------------------------------------


def has_organizer_permission(user, perm: str, event: Event | None = None) -> bool:
    """The user holds the model permission `perm` ("app_label.codename", directly, through a
    group, or as an active superuser) and, for a particular `event`, manages it."""
    if user is None or not user.is_authenticated or not user.has_perm(perm):
        return False
    return event is None or can_manage_event(user, event)


def can_create_event(user, organizer: Organizer | None = None) -> bool:
    """`events.add_event`, for `organizer` (None: for at least one organizer the user belongs to)."""
    if not has_organizer_permission(user, "events.add_event"):
        return False
    if user.is_superuser:
        return True
    ids = organizer_ids(user)
    return bool(ids) if organizer is None else organizer.pk in ids


def can_view_event(user, event: Event | None = None) -> bool:
    """The admin's view permission: `events.view_event` or `events.change_event`."""
    return (has_organizer_permission(user, "events.view_event", event)
            or has_organizer_permission(user, "events.change_event", event))


def can_change_event(user, event: Event | None = None) -> bool:
    """`events.change_event`: edit the event, publish, unpublish and cancel it (the admin's
    actions ask for "change" too)."""
    return has_organizer_permission(user, "events.change_event", event)


can_publish_event = can_cancel_event = can_change_event


def can_delete_event(user, event: Event | None = None) -> bool:
    return has_organizer_permission(user, "events.delete_event", event)


def can_add_ticket_type(user, event: Event | None = None) -> bool:
    return has_organizer_permission(user, "events.add_tickettype", event)


def can_change_ticket_type(user, event: Event | None = None) -> bool:
    return has_organizer_permission(user, "events.change_tickettype", event)


def can_delete_ticket_type(user, event: Event | None = None) -> bool:
    return has_organizer_permission(user, "events.delete_tickettype", event)


def can_view_bookings(user, event: Event | None = None) -> bool:
    """See the event's bookings (and their payments and refunds) as its organizer: `bookings.view_booking`."""
    return has_organizer_permission(user, "bookings.view_booking", event)


def can_export_bookings(user, event: Event | None = None) -> bool:
    """The CSV export of an event's bookings and attendees: see the event and its bookings."""
    return can_view_event(user, event) and can_view_bookings(user, event)


# Booking actions take the booking (or a refund) but use only `.event` / `.payment.booking.event`:
# bookings and payments build on events, never the reverse, so their models are not imported here.

def can_refund_booking(user, booking=None) -> bool:
    """Refund a booking as its organizer (at any time): `bookings.refund_booking`."""
    return has_organizer_permission(user, "bookings.refund_booking", booking and booking.event)


def can_cancel_booking(user, booking=None) -> bool:
    """Release a buyer's hold as the organizer: `bookings.cancel_booking`."""
    return has_organizer_permission(user, "bookings.cancel_booking", booking and booking.event)


def can_resend_confirmation(user, booking=None) -> bool:
    return has_organizer_permission(user, "bookings.resend_booking_confirmation", booking and booking.event)


def can_retry_refund(user, refund=None) -> bool:
    return has_organizer_permission(user, "payments.retry_refund", refund and refund.payment.booking.event)


def events_managed_by(user) -> QuerySet[Event]:
    if user is None or not user.is_authenticated:
        return Event.objects.none()
    if user.is_superuser:
        return Event.objects.all()
    return Event.objects.filter(organizer_id__in=organizer_ids(user))


def events_visible_to(user) -> QuerySet[Event]:
    """Published events for everyone, plus every event the user manages (drafts, cancelled)."""
    if user is not None and user.is_authenticated and user.is_superuser:
        return Event.objects.all()
    return Event.objects.filter(
        Q(status__in=[Event.Status.PUBLISHED, Event.Status.CANCELLED]) | Q(organizer_id__in=organizer_ids(user))
    )


def event_visible_to(user, pk, *, recent: bool = False) -> Event | None:
    """One event if `events_visible_to(user)` holds it, else None. A primary-key read, then the
    rule in Python: the reservation path pays one cheap query, not a query per organizer check.

    `recent=True` (the reservation path): a published event may be this process's copy from the
    last `RECENT_EVENT_SECONDS`, no query at all. A reservation reads again, under its locks,
    everything of the event it relies on (status, start, capacity, currency), so a copy a
    second old can only change which refusal a buyer gets (not published instead of not found
    for an event unpublished in that second, unknown ticket type for one deleted), never what
    is sold. Anything but a published event is read from the database.
    """
    event = _recent.get(pk) if recent else None
    if event is None:
        rows = _EVENT_BY_PK.fetch(event=pk)
        if not rows:
            return None
        event = rows[0]
        if recent and event.status == Event.Status.PUBLISHED:
            _recent.put([event])
    public = event.status in (Event.Status.PUBLISHED, Event.Status.CANCELLED)
    return event if public or can_manage_event(user, event) else None


_EVENT_BY_PK = CompiledQuery(lambda event: Event.objects.filter(pk=event).order_by())

RECENT_EVENT_SECONDS = 1.0
_recent = RecentCopies(seconds=RECENT_EVENT_SECONDS)


def forget_recent_event(pk) -> None:
    """Drop this process's copy (an event saved here); other processes' copies age out."""
    _recent.forget(pk)
