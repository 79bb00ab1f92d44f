"""Lifecycle of a booking after its reservation: payment start, confirm, fail, cancel, refund of
issued tickets, expiry of lapsed holds, and the cancellation of a whole event.

Each takes its locks in the global order (package docstring) and decides on rows read after them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from bookings.models import Booking, Ticket
from bookings.services import inventory
from bookings.services.holds import lock_inventory
from core.db import locking_atomic
from core.errors import Busy, HoldExpired, InvalidInput, InvalidTransition
from events.availability import availability_changed
from events.models import Event, TicketType


def _lock_booking(booking: Booking) -> tuple[Event, Booking]:
    """Lock a booking's event (when capped) and ticket types, then the booking itself.

    The event returned is read after the locks, whatever the age of the caller's copy; a cap set
    meanwhile is refused as `Busy` (its lock would come after the types'), and the retry takes it.
    """
    type_ids = Ticket.objects.filter(booking_id=booking.pk).values_list("ticket_type_id", flat=True).distinct()
    event, _types = lock_inventory(booking.event, list(type_ids), fresh=True)
    locked = Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
    return event, locked


def _refresh(booking: Booking) -> Booking:
    """The caller's instance, updated to what was just committed."""
    booking.refresh_from_db()
    return booking


def booking_cancel(*, booking: Booking) -> Booking:
    """Give up a hold (`reserved` only): its tickets are released at once.

    A hold already past its deadline ends as `expired` rather than `cancelled`.
    """
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.RESERVED:
            raise InvalidTransition(_("Only a reservation that is not yet paid can be cancelled."))
        status = Booking.Status.EXPIRED if locked.expires_at <= now else Booking.Status.CANCELLED
        inventory.release_holds(event=event, booking_ids=[locked.pk], status=status, now=now)
    return _refresh(booking)


def booking_start_payment(*, booking: Booking) -> Booking:
    """`reserved` -> `processing`: the card is authorized, capture follows; the hold is kept.

    Locks only the booking; no counter moves. A hold past its deadline raises `HoldExpired`.
    """
    with locking_atomic():
        locked = Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
        if locked.status == Booking.Status.EXPIRED or (
            locked.status == Booking.Status.RESERVED and locked.expires_at <= timezone.now()
        ):
            raise HoldExpired()
        if locked.status != Booking.Status.RESERVED:
            raise InvalidTransition(_("This booking is not awaiting payment."))
        Booking.objects.filter(pk=locked.pk).update(status=Booking.Status.PROCESSING, updated_at=timezone.now())
    return _refresh(booking)


def booking_confirm(*, booking: Booking) -> Booking:
    """`processing` -> `confirmed`: held tickets become issued, held capacity becomes sold.

    Decides on rows read after its locks: a cancelled event refuses it (`InvalidTransition`).
    """
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.PROCESSING:
            raise InvalidTransition(_("Only a booking being paid can be confirmed."))
        if event.status == Event.Status.CANCELLED:
            raise InvalidTransition(_("The event has been cancelled."))
        per_type = inventory.held_per_type([locked.pk])
        Ticket.objects.filter(booking_id=locked.pk, status=Ticket.Status.HELD).update(
            status=Ticket.Status.ISSUED, issued_at=now
        )
        Booking.objects.filter(pk=locked.pk).update(status=Booking.Status.CONFIRMED, confirmed_at=now, updated_at=now)
        inventory.move_counters(event=event, per_type=per_type, held=-1, sold=+1)
    return _refresh(booking)


def booking_fail_payment(*, booking: Booking) -> Booking:
    """`processing` -> `cancelled`: the payment failed; the hold is released."""
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.PROCESSING:
            raise InvalidTransition(_("This booking is not being paid."))
        inventory.release_holds(event=event, booking_ids=[locked.pk], status=Booking.Status.CANCELLED, now=now)
    return _refresh(booking)


def tickets_release_sold(*, booking: Booking, tickets: Sequence[Ticket | uuid.UUID] | None = None) -> list[Ticket]:
    """Refund issued tickets of a confirmed booking: sold capacity goes back on sale.

    `tickets` defaults to every issued ticket. When none stays issued the
    booking becomes `refunded`. Returns the released tickets.
    """
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.CONFIRMED:
            raise InvalidTransition(_("Only tickets of a confirmed booking can be refunded."))
        issued = Ticket.objects.filter(booking_id=locked.pk, status=Ticket.Status.ISSUED)
        if tickets is not None:
            wanted = {t.pk if isinstance(t, Ticket) else uuid.UUID(str(t)) for t in tickets}
            if not wanted:
                message = _("Choose at least one ticket.")
                raise InvalidInput(message, errors={"tickets": [message]})
            issued = issued.filter(pk__in=wanted)
            if issued.count() != len(wanted):
                raise InvalidTransition(_("Only issued tickets of this booking can be refunded."))
        released = list(issued)
        if not released:
            raise InvalidTransition(_("This booking has no issued tickets."))
        per_type: dict[uuid.UUID, int] = {}
        for ticket in released:
            per_type[ticket.ticket_type_id] = per_type.get(ticket.ticket_type_id, 0) + 1
        Ticket.objects.filter(pk__in=[t.pk for t in released]).update(status=Ticket.Status.REFUNDED)
        inventory.move_counters(event=event, per_type=per_type, sold=-1)
        availability_changed(event.pk)  # the seats are on sale again: the event page shows them at once
        if not Ticket.objects.filter(booking_id=locked.pk, status=Ticket.Status.ISSUED).exists():
            Booking.objects.filter(pk=locked.pk).update(status=Booking.Status.REFUNDED, updated_at=now)
    _refresh(booking)
    for ticket in released:
        ticket.status = Ticket.Status.REFUNDED
    return released


def holds_expire(*, batch_size: int | None = None, max_batches: int = 50) -> int:
    """Release every hold past its deadline; return how many bookings expired.

    One short transaction per event and batch. Bookings locked elsewhere are skipped, so several
    workers can sweep at once: each booking is expired exactly once, a skipped one by a later run.
    """
    batch_size = batch_size or settings.HOLDS_EXPIRE_BATCH
    expired = 0
    for _batch in range(max_batches):
        now = timezone.now()
        rows = list(
            Booking.objects.filter(status=Booking.Status.RESERVED, expires_at__lte=now)
            .order_by("expires_at").values_list("pk", "event_id")[:batch_size]
        )
        if not rows:
            break
        by_event: dict[uuid.UUID, list[uuid.UUID]] = {}
        for pk, event_id in rows:
            by_event.setdefault(event_id, []).append(pk)
        done = 0
        for event_id, booking_ids in by_event.items():
            try:
                done += _expire_bookings(event_id, booking_ids, now)
            except Busy:
                continue  # a hot row stayed locked: a later run takes these
        expired += done
        if done == 0:
            break
    return expired


def _expire_bookings(event_id: uuid.UUID, booking_ids: list[uuid.UUID], now: datetime) -> int:
    with locking_atomic():
        type_ids = list(
            Ticket.objects.filter(booking_id__in=booking_ids, status=Ticket.Status.HELD)
            .values_list("ticket_type_id", flat=True).distinct()
        )
        if not type_ids:
            return 0  # released since they were listed (another sweeper, a cancel): nothing to lock
        event, _types = lock_inventory(Event.objects.get(pk=event_id), type_ids, fresh=True)
        locked_ids = list(
            Booking.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk__in=booking_ids, status=Booking.Status.RESERVED, expires_at__lte=now)
            .values_list("pk", flat=True)
        )
        if locked_ids:
            inventory.release_holds(event=event, booking_ids=locked_ids, status=Booking.Status.EXPIRED, now=now)
    return len(locked_ids)


def event_cancel(*, event: Event) -> list[uuid.UUID]:
    """Cancel an event: no more sales, every hold released at once.

    Locks the event and all its ticket types first, so no reservation slips in. Returns the ids
    of confirmed bookings, to be refunded; a booking being paid can no longer be confirmed.
    """
    now = timezone.now()
    with locking_atomic():
        locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
        if locked.status == Event.Status.CANCELLED:
            raise InvalidTransition(_("The event is already cancelled."))
        list(TicketType.objects.select_for_update(no_key=True).filter(event_id=locked.pk).order_by("pk").values_list("pk"))
        Event.objects.filter(pk=locked.pk).update(status=Event.Status.CANCELLED, cancelled_at=now, updated_at=now)
        hold_ids = list(
            Booking.objects.select_for_update(no_key=True)
            .filter(event_id=locked.pk, status=Booking.Status.RESERVED).values_list("pk", flat=True)
        )
        if hold_ids:
            inventory.release_holds(event=locked, booking_ids=hold_ids, status=Booking.Status.CANCELLED, now=now)
        confirmed = list(
            Booking.objects.filter(event_id=locked.pk, status=Booking.Status.CONFIRMED).values_list("pk", flat=True)
        )
    event.refresh_from_db()
    return confirmed
