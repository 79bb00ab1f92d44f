"""Organizer writes on events and ticket types.

Capacity rules live here: a capacity never drops below what is sold plus held.
Changing a capacity locks the rows in the global order (Event -> TicketTypes by
pk), the same order reservations use. Cancelling an event releases holds, so
it lives in `bookings.services.event_cancel`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from core.currencies import validate_price
from core.db import locking_atomic
from core.errors import CapacityConflict, HasSales, InvalidInput, InvalidTransition
from events.models import Event, Organizer, TicketType

# An organizer's own hoarding limits (bookings.limits); empty: the site's defaults.
BUYER_LIMIT_FIELDS = ["max_holds_per_buyer", "max_holds_per_ip", "max_tickets_per_buyer"]
EVENT_FIELDS = frozenset(
    {"name", "description", "venue", "city", "category", "starts_at", "ends_at", "timezone", "currency", "capacity",
     *BUYER_LIMIT_FIELDS}
)
TICKET_TYPE_FIELDS = frozenset(
    {"name", "description", "price", "capacity", "max_per_booking", "sales_start", "sales_end", "position"}
)


def _validate(instance: Event | TicketType, *, exclude: list[str] | None = None) -> None:
    """Model validation (field rules and `clean`) as `InvalidInput` with field errors."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors = {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        first = next(iter(errors.values()))[0]
        raise InvalidInput(first, errors=errors) from None


def _check_fields(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(_("Unknown fields: %(f)s") % {"f": ", ".join(sorted(unknown))},
                           errors={f: [_("Unknown field.")] for f in sorted(unknown)})


def _check_prices_fit(event: Event, currency: str) -> None:
    """Refuse a currency its ticket types' prices do not fit (EUR 10.50 cannot become JPY)."""
    for price in event.ticket_types.values_list("price", flat=True):
        try:
            validate_price(price, currency)
        except ValidationError:
            message = _("A ticket type costs %(price)s, which %(currency)s cannot express: change its price first.") % {
                "price": price, "currency": currency}
            raise InvalidInput(message, errors={"currency": [message]}) from None


def _unique_slug(organizer: Organizer, name: str) -> str:
    base = slugify(name)[:180] or "event"
    slug, n = base, 1
    while Event.objects.filter(organizer=organizer, slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def event_create(*, organizer: Organizer, **fields: Any) -> Event:
    """A new event, as a draft."""
    _check_fields(fields, EVENT_FIELDS)
    event = Event(organizer=organizer, **fields)
    event.slug = _unique_slug(organizer, event.name or "")
    _validate(event)
    event.save()
    return event


def event_update(*, event: Event, **fields: Any) -> Event:
    """Change an event's details; its capacity never drops below sold + held.

    Setting or changing the capacity locks the event and all its ticket types
    and recomputes the event counters from the types' (the counters are only
    kept while the event is capped).
    """
    _check_fields(fields, EVENT_FIELDS)
    with locking_atomic():
        locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
        if locked.status == Event.Status.CANCELLED:
            raise InvalidTransition(_("A cancelled event cannot be changed."))
        if "currency" in fields and fields["currency"] != locked.currency and event_has_bookings(locked):
            raise HasSales(_("The currency cannot change once tickets have been booked."))
        if "currency" in fields and fields["currency"] != locked.currency:
            _check_prices_fit(locked, fields["currency"])
        capacity_changes = "capacity" in fields and fields["capacity"] != locked.capacity
        for name, value in fields.items():
            setattr(locked, name, value)
        _validate(locked)
        if capacity_changes:
            types = TicketType.objects.select_for_update(no_key=True).filter(event_id=locked.pk).order_by("pk")
            # Lock first: an aggregate query drops FOR UPDATE, and the sums must
            # include every reservation that is in flight on these types.
            list(types.values_list("pk", flat=True))
            totals = TicketType.objects.filter(event_id=locked.pk).aggregate(sold=Sum("sold"), held=Sum("held"))
            sold, held = totals["sold"] or 0, totals["held"] or 0
            if locked.capacity is not None and locked.capacity < sold + held:
                raise CapacityConflict(
                    _("Capacity cannot be lower than %(n)d, the tickets already sold or held.") % {"n": sold + held},
                    errors={"capacity": [_("Must be at least %(n)d.") % {"n": sold + held}]},
                )
            locked.sold, locked.held = (sold, held) if locked.capacity is not None else (0, 0)
        locked.save()
    event.refresh_from_db()
    return event


def event_publish(*, event: Event) -> Event:
    """`draft` -> `published`: the event goes on sale (it needs a ticket type and a future date)."""
    with locking_atomic():
        locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
        if locked.status != Event.Status.DRAFT:
            raise InvalidTransition(_("Only a draft event can be published."))
        # Not ready to sell is a conflict with the event's state (409), not bad input: publishing sends none.
        if not locked.ticket_types.exists():
            raise InvalidTransition(_("Add at least one ticket type before publishing."),
                                    errors={"ticket_types": [_("Add at least one ticket type.")]})
        if locked.ends_at <= timezone.now():
            raise InvalidTransition(_("An event that has ended cannot be published."),
                                    errors={"ends_at": [_("This date is in the past.")]})
        now = timezone.now()
        Event.objects.filter(pk=locked.pk).update(status=Event.Status.PUBLISHED, published_at=now, updated_at=now)
    event.refresh_from_db()
    return event


def event_unpublish(*, event: Event) -> Event:
    """`published` -> `draft`: sales stop; existing bookings stay valid."""
    with locking_atomic():
        locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
        if locked.status != Event.Status.PUBLISHED:
            raise InvalidTransition(_("Only a published event can be unpublished."))
        Event.objects.filter(pk=locked.pk).update(status=Event.Status.DRAFT, updated_at=timezone.now())
    event.refresh_from_db()
    return event


def event_has_bookings(event: Event) -> bool:
    """An event that ever had a booking keeps its currency and is never deleted (cancel it instead)."""
    return event.bookings.exists()


def ticket_type_has_tickets(ticket_type: TicketType) -> bool:
    """A ticket type that ever had a ticket booked is never deleted."""
    return ticket_type.tickets.exists()


def event_delete(*, event: Event) -> None:
    """Delete an event that never had a booking; otherwise `HasSales` (cancel it instead).

    Locks the event, then its ticket types (the global order) before looking for
    bookings: a reservation in flight on an uncapped event holds its types, not
    the event, so the check waits for it and sees its booking.
    """
    with locking_atomic():
        locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
        list(TicketType.objects.select_for_update(no_key=True).filter(event_id=locked.pk).order_by("pk")
             .values_list("pk"))
        if event_has_bookings(locked):
            raise HasSales()
        locked.delete()


@transaction.atomic
def ticket_type_create(*, event: Event, **fields: Any) -> TicketType:
    """A new ticket type for an event that is not cancelled."""
    _check_fields(fields, TICKET_TYPE_FIELDS)
    if event.status == Event.Status.CANCELLED:
        raise InvalidTransition(_("A cancelled event cannot be changed."))
    ticket_type = TicketType(event=event, **fields)
    _validate(ticket_type)
    try:
        with transaction.atomic():
            ticket_type.save()
    except IntegrityError:
        raise InvalidInput(_("This event already has a ticket type with this name."),
                           errors={"name": [_("Already used for this event.")]}) from None
    return ticket_type


def ticket_type_update(*, ticket_type: TicketType, **fields: Any) -> TicketType:
    """Change a ticket type; its capacity never drops below sold + held."""
    _check_fields(fields, TICKET_TYPE_FIELDS)
    with locking_atomic():
        # The ticket type's row only: the event is read after the lock, in a statement of its own,
        # so a cancellation that committed while this waited is seen (`event_cancel` locks the
        # event, then every ticket type: the two queue, in the global order).
        locked = TicketType.objects.select_for_update(no_key=True, of=("self",)).get(pk=ticket_type.pk)
        locked.event = Event.objects.get(pk=locked.event_id)
        if locked.event.status == Event.Status.CANCELLED:
            raise InvalidTransition(_("A cancelled event cannot be changed."))
        for name, value in fields.items():
            setattr(locked, name, value)
        _validate(locked)
        if locked.capacity < locked.sold + locked.held:
            n = locked.sold + locked.held
            raise CapacityConflict(
                _("Capacity cannot be lower than %(n)d, the tickets already sold or held.") % {"n": n},
                errors={"capacity": [_("Must be at least %(n)d.") % {"n": n}]},
            )
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise InvalidInput(_("This event already has a ticket type with this name."),
                               errors={"name": [_("Already used for this event.")]}) from None
    ticket_type.refresh_from_db()
    return ticket_type


def ticket_type_delete(*, ticket_type: TicketType) -> None:
    """Delete a ticket type no ticket was ever booked for; otherwise `HasSales`."""
    with locking_atomic():
        locked = TicketType.objects.select_for_update(no_key=True).get(pk=ticket_type.pk)
        if ticket_type_has_tickets(locked):
            raise HasSales(_("Tickets of this type have been booked; set its capacity to what is sold instead."))
        locked.delete()
