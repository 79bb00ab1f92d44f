"""Reserve: hold tickets for a buyer until the hold expires."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from bookings.limits import BuyerCheck, client_network
from bookings.models import Booking, Ticket
from bookings.selectors import booking_with_relations
from bookings.services import holds, inventory, rules
from bookings.services.rules import LineItem
from events.models import Event


def booking_reserve(
    *,
    event: Event,
    items: Sequence[LineItem],
    email: str = "",
    buyer: AbstractBaseUser | None = None,
    client_ip: str | None = None,
) -> Booking:
    """Hold the requested tickets until the hold expires; never oversell, never past a buyer's limits.

    Every rule (`rules`: status, sales window, limits per booking and per buyer, room) holds on
    rows locked or guarded in the same transaction, else nothing is written and the domain error
    is raised (`Busy` when the rows changed under a copy in a way that needs a retry).
    `client_ip` is the client's address, as the door gives it (per-address limit).
    Returns the booking with its tickets (and no payments) attached: rendering it needs no query.
    """
    quantities = rules.merge_items(items)
    email = rules.booking_email(email, buyer)
    now = timezone.now()
    booking, tickets = _unsaved_booking(event, quantities, email, buyer, client_ip, now)
    check = BuyerCheck.plan(event=event, buyer_id=booking.buyer_id, email=email, address=booking.client_ip,
                            tickets=len(tickets), now=now)

    attempt = holds.try_one_round_trip(event=event, quantities=quantities, booking=booking, tickets=tickets,
                                       now=now, check=check)
    if attempt.written:
        return _reserved(booking, tickets)

    check = check.replan(attempt.event)
    with holds.locked_inventory(attempt.event, quantities.keys(), check) as locked:
        event, types = locked.event, locked.types
        rules.check_sellable(event, types, quantities, now)
        rules.check_buyer(check, event, locked.usage)
        if rules.is_short(event, types, quantities):
            if inventory.reclaim_expired_holds(event, types, now):
                event, types = holds.reread(event, types)
            if rules.is_short(event, types, quantities):
                raise rules.sold_out(event, types, quantities)
        rules.set_prices(booking, tickets, event, types, quantities)
        holds.write_hold(event, quantities, booking, tickets)
    return _reserved(booking, tickets)


def _unsaved_booking(event: Event, quantities: Mapping[uuid.UUID, int], email: str,
                     buyer: AbstractBaseUser | None, client_ip: str | None,
                     now: datetime) -> tuple[Booking, list[Ticket]]:
    """The booking and its tickets, built but not saved; the prices come later, from the rows read."""
    booking = Booking(
        event=event,
        buyer=buyer if buyer is not None and buyer.is_authenticated else None,
        email=email,
        status=Booking.Status.RESERVED,
        expires_at=now + timedelta(minutes=settings.BOOKING_HOLD_MINUTES),
        currency=event.currency,
        client_ip=client_network(client_ip),
    )
    tickets = [
        Ticket(booking=booking, ticket_type_id=pk, status=Ticket.Status.HELD)
        for pk, n in quantities.items()
        for _i in range(n)
    ]
    return booking, tickets


def _reserved(booking: Booking, tickets: list[Ticket]) -> Booking:
    tickets.sort(key=lambda t: (t.ticket_type.position, t.pk))
    return booking_with_relations(booking, tickets=tickets, payments=[])
