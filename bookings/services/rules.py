"""The business rules of a reservation, on rows already read: no SQL here.

Each check raises the domain error the buyer sees; `set_prices` fills in what the rows say.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bookings.limits import BuyerCheck, Usage
from bookings.models import Booking, Ticket
from core.errors import Busy, EventNotPublished, InvalidInput, LimitExceeded, SalesClosed, SoldOut
from events.models import Event, TicketType
from events.rules import (
    ALL_RESERVED,
    SALES_ENDED,
    SALES_NOT_STARTED,
    cap_shortage,
    event_remaining,
    sales_state,
    shortage,
    ticket_type_available,
    type_remaining,
)


@dataclass(frozen=True)
class LineItem:
    """`quantity` tickets of one ticket type (an instance or its id)."""

    ticket_type: TicketType | uuid.UUID | str
    quantity: int

    @property
    def ticket_type_id(self) -> uuid.UUID:
        if isinstance(self.ticket_type, TicketType):
            return self.ticket_type.pk
        return uuid.UUID(str(self.ticket_type))


def merge_items(items: Sequence[LineItem]) -> dict[uuid.UUID, int]:
    """{ticket type id: quantity}, bounded before anything is built: at most BOOKING_MAX_ITEMS
    items and BOOKING_MAX_TICKETS tickets, whatever the ticket types allow."""
    if not items:
        raise InvalidInput(_("Choose at least one ticket."), errors={"items": [_("This list may not be empty.")]})
    if len(items) > settings.BOOKING_MAX_ITEMS:
        message = ngettext("At most %(n)d ticket type in one booking.", "At most %(n)d ticket types in one booking.",
                           settings.BOOKING_MAX_ITEMS) % {"n": settings.BOOKING_MAX_ITEMS}
        raise LimitExceeded(message, errors={"items": [message]})
    quantities: dict[uuid.UUID, int] = {}
    total = 0
    for item in items:
        try:
            pk = item.ticket_type_id
        except (ValueError, TypeError, AttributeError):
            raise InvalidInput(_("Unknown ticket type."), errors={"items": [_("Unknown ticket type.")]}) from None
        quantity = item.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidInput(
                _("Quantity must be a whole number of at least 1."),
                errors={"items": [_("Quantity must be a whole number of at least 1.")]},
            )
        total += quantity
        if total > settings.BOOKING_MAX_TICKETS:
            message = ngettext("At most %(n)d ticket in one booking.", "At most %(n)d tickets in one booking.",
                               settings.BOOKING_MAX_TICKETS) % {"n": settings.BOOKING_MAX_TICKETS}
            raise LimitExceeded(message, errors={"items": [message]})
        quantities[pk] = quantities.get(pk, 0) + quantity
    return quantities


def booking_email(email: str, buyer: AbstractBaseUser | None) -> str:
    """The e-mail given, else the signed-in buyer's; `InvalidInput` unless it is valid."""
    email = (email or "").strip()
    if not email and buyer is not None and buyer.is_authenticated:
        email = getattr(buyer, "email", "") or ""
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid e-mail address."),
                           errors={"email": [_("Enter a valid e-mail address.")]}) from None
    return email


def check_sellable(event: Event, types: Mapping[uuid.UUID, TicketType],
                   quantities: Mapping[uuid.UUID, int], now: datetime) -> None:
    """The event is published, each type is on sale at `now` (`events.rules.sales_state`), and no
    quantity is above its type's limit per booking."""
    if event.status != Event.Status.PUBLISHED:
        raise EventNotPublished()
    for pk, quantity in quantities.items():
        tt = types[pk]
        window = sales_state(tt, event=event, now=now)
        if window == SALES_NOT_STARTED:
            raise SalesClosed(_("Sales for '%(name)s' have not started yet.") % {"name": tt.name})
        if window == SALES_ENDED:
            raise SalesClosed(_("Sales for '%(name)s' are closed.") % {"name": tt.name})
        if quantity > tt.max_per_booking:
            raise LimitExceeded(
                ngettext("At most %(n)d '%(name)s' ticket per booking.",
                         "At most %(n)d '%(name)s' tickets per booking.", tt.max_per_booking)
                % {"n": tt.max_per_booking, "name": tt.name},
                errors={"items": [_("Quantity above the limit per booking.")]},
            )


def check_buyer(check: BuyerCheck, event: Event, usage: Usage | None) -> None:
    """The buyer's limits under the event's terms as just read (`check` counted under the copy's).

    Limits switched on since the copy need a lock and a count this transaction did not take:
    `Busy`, and the retry starts from the fresh event.
    """
    fresh = check.replan(event)
    if not check.counts_cover(fresh):
        raise Busy()
    if usage is not None:
        fresh.check(usage)


def is_short(event: Event, types: Mapping[uuid.UUID, TicketType], quantities: Mapping[uuid.UUID, int]) -> bool:
    """Whether some type, or the capped event, has less room than requested (`events.rules`)."""
    if any(type_remaining(types[pk]) < n for pk, n in quantities.items()):
        return True
    event_left = event_remaining(event)
    return event_left is not None and event_left < sum(quantities.values())


def sold_out(event: Event, types: Mapping[uuid.UUID, TicketType], quantities: Mapping[uuid.UUID, int]) -> SoldOut:
    """The `SoldOut` to raise: what is left of each requested type, and the first shortfall in words.

    `all_reserved` is True when nothing is left of the short type (or under the event cap) only
    because others hold it (`events.rules.shortage`): it may come back, "check back soon".
    """
    event_left = event_remaining(event)
    available = {str(pk): ticket_type_available(types[pk], event=event) for pk in quantities}
    all_reserved = False
    for pk, n in quantities.items():
        left = type_remaining(types[pk])
        if left < n:
            name = types[pk].name
            if left:
                detail = ngettext("Only %(n)d '%(name)s' ticket left.", "Only %(n)d '%(name)s' tickets left.",
                                  left) % {"n": left, "name": name}
            elif shortage(types[pk], event=event) == ALL_RESERVED:
                all_reserved = True
                detail = _("All '%(name)s' tickets are reserved; check back soon.") % {"name": name}
            else:
                detail = _("'%(name)s' is sold out.") % {"name": name}
            break
    else:
        if event_left:
            detail = ngettext("Only %(n)d ticket left for this event.", "Only %(n)d tickets left for this event.",
                              event_left) % {"n": event_left}
        elif cap_shortage(event) == ALL_RESERVED:
            all_reserved = True
            detail = _("All tickets for this event are reserved; check back soon.")
        else:
            detail = _("This event is sold out.")
    return SoldOut(detail, available=available, all_reserved=all_reserved)


def set_prices(booking: Booking, tickets: list[Ticket], event: Event, types: Mapping[uuid.UUID, TicketType],
               quantities: Mapping[uuid.UUID, int]) -> None:
    """The booking's currency and total, and each ticket's type and price, from the rows given."""
    booking.event, booking.currency = event, event.currency
    booking.total = sum((types[pk].price * n for pk, n in quantities.items()), Decimal("0.00"))
    for ticket in tickets:
        ticket.ticket_type = types[ticket.ticket_type_id]
        ticket.price = ticket.ticket_type.price
