"""Who manages what: an organizer's members manage only that organizer's events.

Used by every door (API, admin, site) so the rule is written once.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from events.models import Event, Organizer
from ticketing.db import PreparedQuery
from ticketing.recent import RecentCopies


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
    if user is None or not user.is_authenticated:
        return False
    return user.is_superuser or event.organizer_id in organizer_ids(user)


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


_EVENT_BY_PK = PreparedQuery(lambda event: Event.objects.filter(pk=event).order_by())

RECENT_EVENT_SECONDS = 1.0
_recent = RecentCopies(seconds=RECENT_EVENT_SECONDS)


def forget_recent_event(pk) -> None:
    """Drop this process's copy (an event saved here); other processes' copies age out."""
    _recent.forget(pk)
