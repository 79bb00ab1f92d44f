"""The rules have one definition (`events.rules`); the one-round-trip guard restates the room rule
in SQL (`holds._GuardedHold.guard`). On PostgreSQL, on every case here, the SQL and the Python
agree, and both paths of `booking_reserve` answer what the rules say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.limits import BuyerCheck
from bookings.models import Booking, Ticket
from bookings.services import LineItem, booking_reserve, holds, rules
from bookings.tests.factories import new_email
from bookings.tests.test_services import path  # noqa: F401 - `path` is autouse: every case on both paths
from core.errors import EventNotPublished, SalesClosed, SoldOut
from events.models import Event, TicketType
from events.rules import SALES_OPEN, sales_state, ticket_type_available, type_remaining
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db

NOW = "2030-06-01 12:00Z"
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Case:
    capacity: int = 5
    sold: int = 0
    held: int = 0
    n: int = 1
    event_cap: tuple[int, int, int] | None = None  # capacity, sold, held of a capped event
    status: str = Event.Status.PUBLISHED
    sales_start: timedelta | None = None  # from now
    sales_end: timedelta | None = None
    starts_in: timedelta = timedelta(days=7)


CASES = {
    "capacity 0": Case(capacity=0),
    "room for exactly n": Case(capacity=5, sold=2, held=1, n=2),
    "one short": Case(capacity=5, sold=2, held=1, n=3),
    "exactly full by sales": Case(capacity=4, sold=4),
    "exactly full by holds": Case(capacity=4, held=4),
    "exactly full by sales and holds": Case(capacity=4, sold=1, held=3),
    "held and sold leave one": Case(capacity=6, sold=3, held=2),
    "event cap below the type's room": Case(capacity=5, n=3, event_cap=(4, 1, 1)),
    "event cap exactly enough": Case(capacity=5, n=2, event_cap=(4, 1, 1)),
    "event cap full": Case(capacity=5, event_cap=(2, 1, 1)),
    "type below the event's room": Case(capacity=2, sold=1, n=2, event_cap=(10, 1, 0)),
    "sales start now": Case(sales_start=timedelta(0)),
    "sales start a tick later": Case(sales_start=TICK),
    "sales end a tick later": Case(sales_end=TICK),
    "sales end now": Case(sales_start=-timedelta(days=1), sales_end=timedelta(0)),
    "no end, event starts a tick later": Case(starts_in=TICK),
    "no end, event starts now": Case(starts_in=timedelta(0)),
    "draft": Case(status=Event.Status.DRAFT),
    "cancelled": Case(status=Event.Status.CANCELLED),
    "cancelled and full": Case(status=Event.Status.CANCELLED, capacity=1, sold=1),
}


def setup(case: Case) -> tuple[Event, TicketType]:
    now = timezone.now()
    starts_at = now + case.starts_in
    cap, event_sold, event_held = case.event_cap or (None, 0, 0)
    event = EventFactory(capacity=cap, status=case.status, starts_at=starts_at, ends_at=starts_at + timedelta(hours=3))
    tt = TicketTypeFactory(
        event=event, capacity=case.capacity, max_per_booking=10,
        sales_start=None if case.sales_start is None else now + case.sales_start,
        sales_end=None if case.sales_end is None else now + case.sales_end,
    )
    # Counters as they would be after earlier sales and holds (what the rules read).
    TicketType.objects.filter(pk=tt.pk).update(sold=case.sold, held=case.held)
    Event.objects.filter(pk=event.pk).update(sold=event_sold, held=event_held)
    return Event.objects.get(pk=event.pk), TicketType.objects.get(pk=tt.pk)


def expected(event: Event, tt: TicketType, n: int):
    """What `events.rules` says a reservation of `n` gets: None (held) or the error's class."""
    if event.status != Event.Status.PUBLISHED:
        return EventNotPublished
    if sales_state(tt, event=event, now=timezone.now()) != SALES_OPEN:
        return SalesClosed
    return None if ticket_type_available(tt, event=event) >= n else SoldOut


def guard_ok(event: Event, copies: dict, quantities: dict) -> bool:
    sql, params = holds._GuardedHold.guard(event, copies, quantities)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        [(ok,)] = cursor.fetchall()
    return ok


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_guard_in_sql_and_the_room_rule_in_python_agree(case):
    event, tt = setup(case)
    quantities = {tt.pk: case.n}

    python = not rules.is_short(event, {tt.pk: tt}, quantities)

    if event.capacity is None:
        assert guard_ok(event, {tt.pk: tt}, quantities) is python is (type_remaining(tt) >= case.n)
    else:
        # The guard restates only the types' room: a capped event never reaches it.
        booking = Booking(event=event, email=new_email(), status=Booking.Status.RESERVED)
        tickets = [Ticket(booking=booking, ticket_type_id=tt.pk) for _i in range(case.n)]
        check = BuyerCheck.plan(event=event, buyer_id=None, email=booking.email, address=None,
                                tickets=case.n, now=timezone.now())
        with CaptureQueriesContext(connection) as ctx:
            attempt = holds.try_one_round_trip(event=event, quantities=quantities, booking=booking,
                                               tickets=tickets, now=timezone.now(), check=check)
        copies_read = 'SELECT "events_tickettype"'  # the "copies" path's stand-in reads its copy
        assert not attempt.written
        assert [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(copies_read)] == []


def test_the_guard_agrees_on_several_types_at_once():
    event = EventFactory()
    roomy, tight = TicketTypeFactory(event=event, capacity=5), TicketTypeFactory(event=event, capacity=2)
    TicketType.objects.filter(pk=tight.pk).update(sold=1)
    types = {tt.pk: TicketType.objects.get(pk=tt.pk) for tt in (roomy, tight)}

    for quantities in ({roomy.pk: 5, tight.pk: 1}, {roomy.pk: 1, tight.pk: 2}, {roomy.pk: 6, tight.pk: 1}):
        assert guard_ok(event, types, quantities) is (not rules.is_short(event, types, quantities))


def test_the_guard_refuses_a_copy_whose_window_is_no_longer_the_rows():
    """The window is decided in Python on the copy: the guard holds only while the row still has it."""
    tt = TicketTypeFactory(capacity=5)
    copy = TicketType.objects.get(pk=tt.pk)
    TicketType.objects.filter(pk=tt.pk).update(sales_end=timezone.now())

    assert guard_ok(tt.event, {tt.pk: copy}, {tt.pk: 1}) is False


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_both_paths_of_a_reservation_answer_what_the_rules_say(case):
    event, tt = setup(case)
    want = expected(event, tt, case.n)

    if want is None:
        booking = booking_reserve(event=event, items=[LineItem(tt, case.n)], email=new_email())
        assert booking.tickets.count() == case.n
    else:
        with pytest.raises(want):
            booking_reserve(event=event, items=[LineItem(tt, case.n)], email=new_email())
