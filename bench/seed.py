"""Data for the bench, through the project's services and ORM (import after `django.setup()`).

Bulk data (a million sold tickets, thousands of expired holds) is written with
`INSERT ... SELECT generate_series`, keeping the counters equal to the ticket
rows so `check_inventory` stays clean.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from bookings.models import Ticket
from core.tokens import api_tokens_create_many
from events.models import Event, Organizer, TicketType
from events.services import event_create, event_publish, ticket_type_create

PRICE = Decimal("49.00")
_names = itertools.count(1)


def organizer() -> Organizer:
    return Organizer.objects.get_or_create(slug="bench", defaults={"name": "Bench Live"})[0]


def buyers(count: int) -> list[str]:
    """`count` buyer accounts (no usable password) and their API token keys.

    The keys are stored as the project stores them (digests, core/tokens.py). They are
    40 hex characters, DRF's key format, and also written in plain to DRF's token table when
    the bench's settings install it (bench/settings.py): a commit from before hashed tokens
    (`bench/ab.py --base`) then authenticates the same buyers with the same keys.
    """
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bench-buyer-{i}", email=f"buyer{i}@example.com", password=make_password(None))
        for i in range(count)
    )
    keys = api_tokens_create_many(users=users, key_length=40)
    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authtoken.models import Token

        Token.objects.bulk_create(Token(user=user, key=key) for user, key in zip(users, keys, strict=True))
    return keys


def on_sale(*, capacity: int, label: str) -> tuple[Event, TicketType]:
    """A fresh published event (no venue cap) with one ticket type of `capacity`."""
    starts = timezone.now() + timedelta(days=30)
    event = event_create(
        organizer=organizer(), name=f"Bench {label} #{next(_names)}", venue="Bench Arena", city="Berlin",
        starts_at=starts, ends_at=starts + timedelta(hours=3),
    )
    ticket_type = ticket_type_create(event=event, name="General admission", price=PRICE, capacity=capacity)
    return event_publish(event=event), ticket_type


def oversell_check(ticket_type: TicketType) -> dict:
    """Counters and rows of a sold-out type: sold + held and its ticket rows must both equal the capacity."""
    ticket_type.refresh_from_db()
    rows = Ticket.objects.filter(ticket_type=ticket_type).count()
    counted = ticket_type.sold + ticket_type.held
    return {"capacity": ticket_type.capacity, "sold_plus_held": counted, "ticket_rows": rows,
            "ok": counted == rows == ticket_type.capacity}


_BOOKINGS_SQL = """
INSERT INTO bookings_booking (id, event_id, buyer_id, email, status, expires_at, total, currency, access_token,
                              created_at, updated_at, confirmed_at)
SELECT gen_random_uuid(), %(event)s, NULL, 'bulk' || g || '@example.com', %(status)s, %(expires)s,
       %(price)s * %(per_booking)s, 'EUR',
       replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''),
       now(), now(), CASE WHEN %(status)s = 'confirmed' THEN now() END
FROM generate_series(1, %(bookings)s) AS g
"""
_TICKETS_SQL = """
INSERT INTO bookings_ticket (id, booking_id, ticket_type_id, status, price, attendee_name, code, issued_at)
SELECT gen_random_uuid(), b.id, %(tt)s, %(ticket_status)s, %(price)s, '', gen_random_uuid()::text,
       CASE WHEN %(ticket_status)s = 'issued' THEN now() END
FROM bookings_booking AS b CROSS JOIN generate_series(1, %(per_booking)s)
WHERE b.event_id = %(event)s
"""


def _bulk_bookings(ticket_type: TicketType, *, bookings: int, per_booking: int, status: str, ticket_status: str,
                   counter: str) -> float:
    """`bookings` bookings of `per_booking` tickets on a fresh type (the only one of its event); seconds taken."""
    params = {"event": ticket_type.event_id, "tt": ticket_type.pk, "status": status, "ticket_status": ticket_status,
              "price": PRICE, "per_booking": per_booking, "bookings": bookings,
              "expires": timezone.now() + timedelta(minutes=15)}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_BOOKINGS_SQL, params)
        cursor.execute(_TICKETS_SQL, params)
        TicketType.objects.filter(pk=ticket_type.pk).update(**{counter: bookings * per_booking})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookings_booking, bookings_ticket, events_tickettype")
    return time.perf_counter() - started


def sold_tickets(ticket_type: TicketType, tickets: int) -> float:
    """`tickets` issued tickets (confirmed bookings of two) on a fresh type, `sold` to match; seconds taken."""
    return _bulk_bookings(ticket_type, bookings=tickets // 2, per_booking=2, status="confirmed",
                          ticket_status="issued", counter="sold")


def expired_holds(ticket_type: TicketType, holds: int) -> float:
    """`holds` one-ticket holds on a fresh type, `held` to match, then moved past their deadline."""
    seconds = _bulk_bookings(ticket_type, bookings=holds, per_booking=1, status="reserved",
                             ticket_status="held", counter="held")
    with connection.cursor() as cursor:  # time travel: the holds lapsed a minute ago
        cursor.execute("UPDATE bookings_booking SET expires_at = now() - interval '1 minute' WHERE event_id = %s",
                       [ticket_type.event_id])
    return seconds
