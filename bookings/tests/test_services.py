from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.services import (
    LineItem,
    booking_cancel,
    booking_confirm,
    booking_fail_payment,
    booking_reserve,
    booking_start_payment,
    event_cancel,
    holds,
    holds_expire,
    rules,
    tickets_release_sold,
)
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from bookings.tests.factories import make_booking, new_email
from core.db import statement_sql
from core.db.server_prepared import numbered
from core.errors import (
    EventNotPublished,
    HoldExpired,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    SalesClosed,
    SoldOut,
)
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory

pytestmark = pytest.mark.django_db

HOLD = timedelta(minutes=15)


def counters(obj):
    obj.refresh_from_db()
    return obj.sold, obj.held


def reserve(tt, n=1, **kwargs):
    """A reservation of `n` tickets of `tt`, by a buyer of its own unless `email` or `buyer` is given."""
    if "buyer" not in kwargs:
        kwargs.setdefault("email", new_email())
    return booking_reserve(event=tt.event, items=[LineItem(tt, n)], **kwargs)


def sent(ctx) -> list[str]:
    """What went to the server, one item per round trip, prepared statements written out (Django's
    BEGIN and COMMIT markers left out: the backend sends them with statements or not at all)."""
    return [statement_sql(q["sql"]) for q in ctx.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]


BUYERS_TICKETS = 'FROM "bookings_ticket" AS t JOIN "bookings_booking" AS b'  # bookings.limits


def statuses(booking):
    return sorted(booking.tickets.values_list("status", flat=True))


class FreshCopies:
    """Stands in for this process's recent copies of ticket types (`holds._RECENT_TYPES`): a
    copy read a moment ago, so every reservation of an uncapped event takes the one round trip."""

    def get(self, pk):
        return TicketType.objects.filter(pk=pk).first()

    def put(self, objs):
        pass

    def forget(self, pk):
        pass


@pytest.fixture(autouse=True, params=["cold", "copies"])
def path(request, monkeypatch):
    """Every test here runs on both paths of `booking_reserve`. "cold": this process's real copies
    of ticket types, empty when the test starts, so a type's first reservation takes the locked
    path. "copies": a fresh copy of every type, so each reservation of an uncapped event takes
    the one round trip. Both must give the same answers."""
    if request.param == "copies":
        monkeypatch.setattr(holds, "_RECENT_TYPES", FreshCopies())
    return request.param


def read_here(*types):
    """As if this process had just reserved `types`: real recent copies, taken now."""
    holds._RECENT_TYPES.put([TicketType.objects.get(pk=tt.pk) for tt in types])


# --- booking_reserve ------------------------------------------------------------


def test_reserve_holds_tickets_until_the_hold_expires(time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    tt = TicketTypeFactory(capacity=5, price=Decimal("49.50"), event__starts_at=timezone.now() + timedelta(days=3))

    booking = reserve(tt, 2)

    assert booking.status == Booking.Status.RESERVED
    assert booking.expires_at == timezone.now() + HOLD
    assert booking.total == Decimal("99.00")
    assert booking.currency == "EUR"
    assert statuses(booking) == ["held", "held"]
    assert counters(tt) == (0, 2)
    codes = list(booking.tickets.values_list("code", flat=True))
    assert len(set(codes)) == 2 and all(len(c) == 32 for c in codes)


def test_reserve_takes_several_types_in_one_booking_and_merges_repeated_items():
    event = EventFactory()
    a = TicketTypeFactory(event=event, price=Decimal("10.00"))
    b = TicketTypeFactory(event=event, price=Decimal("25.00"))

    booking = booking_reserve(event=event, items=[LineItem(a, 1), LineItem(b.pk, 2), LineItem(str(a.pk), 1)],
                              email="a@example.com")

    assert booking.total == Decimal("70.00")
    assert counters(a) == (0, 2)
    assert counters(b) == (0, 2)


def test_reserve_uses_the_buyers_email_when_none_is_given():
    buyer = UserFactory(email="fan@example.com")
    booking = reserve(TicketTypeFactory(), email="", buyer=buyer)
    assert (booking.email, booking.buyer) == ("fan@example.com", buyer)


@pytest.mark.parametrize(
    "items, field",
    [
        ([], "items"),
        ([LineItem("not-a-uuid", 1)], "items"),
        ([LineItem("00000000-0000-0000-0000-000000000000", 1)], "items"),
    ],
)
def test_reserve_rejects_bad_items_and_changes_nothing(items, field):
    tt = TicketTypeFactory()
    with pytest.raises(InvalidInput) as exc:
        booking_reserve(event=tt.event, items=items, email="a@example.com")
    assert field in exc.value.errors
    assert not Booking.objects.exists()


@pytest.mark.parametrize("quantity", [0, -1, True, 1.5, "2"])
def test_reserve_rejects_quantities_that_are_not_positive_whole_numbers(quantity):
    tt = TicketTypeFactory()
    with pytest.raises(InvalidInput):
        reserve(tt, quantity)
    assert counters(tt) == (0, 0)


def test_reserve_rejects_a_ticket_type_of_another_event():
    tt = TicketTypeFactory()
    other = EventFactory()
    with pytest.raises(InvalidInput):
        booking_reserve(event=other, items=[LineItem(tt, 1)], email="a@example.com")
    assert counters(tt) == (0, 0)


def test_reserve_rejects_an_invalid_email():
    tt = TicketTypeFactory()
    with pytest.raises(InvalidInput) as exc:
        reserve(tt, email="not-an-email")
    assert "email" in exc.value.errors


@pytest.mark.parametrize("status", [Event.Status.DRAFT, Event.Status.CANCELLED])
def test_reserve_refuses_an_event_that_is_not_published(status):
    tt = TicketTypeFactory(event__status=status)
    with pytest.raises(EventNotPublished) as exc:
        reserve(tt)
    assert exc.value.code == "event_not_published"
    assert counters(tt) == (0, 0)


def test_reserve_refuses_before_sales_start_and_after_sales_end():
    now = timezone.now()
    early = TicketTypeFactory(sales_start=now + timedelta(hours=1))
    late = TicketTypeFactory(sales_start=now - timedelta(days=2), sales_end=now - timedelta(days=1))
    with pytest.raises(SalesClosed):
        reserve(early)
    with pytest.raises(SalesClosed):
        reserve(late)


def test_sales_close_when_the_event_starts_unless_the_type_says_otherwise(time_machine):
    tt = TicketTypeFactory()
    time_machine.move_to(tt.event.starts_at + timedelta(minutes=1))
    with pytest.raises(SalesClosed):
        reserve(tt)


def test_reserve_refuses_more_than_max_per_booking():
    tt = TicketTypeFactory(max_per_booking=4)
    with pytest.raises(LimitExceeded) as exc:
        reserve(tt, 5)
    assert "At most 4" in exc.value.detail
    reserve(tt, 4)
    assert counters(tt) == (0, 4)


def test_reserve_refuses_more_than_is_left_and_says_what_is_left():
    tt = TicketTypeFactory(capacity=5, name="General")
    make_booking(items=[(tt, 2)], status=Booking.Status.CONFIRMED)

    with pytest.raises(SoldOut) as exc:
        reserve(tt, 4)

    assert exc.value.code == "sold_out"
    assert exc.value.detail == "Only 3 'General' tickets left."
    assert exc.value.extra["available"] == {str(tt.pk): 3}
    assert counters(tt) == (2, 0)
    assert Booking.objects.count() == 1


def test_sold_out_says_so_when_nothing_is_left():
    tt = TicketTypeFactory(capacity=1, name="VIP")
    make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    with pytest.raises(SoldOut, match="'VIP' is sold out.") as exc:
        reserve(tt)
    assert exc.value.extra["all_reserved"] is False


def test_sold_out_says_all_reserved_when_the_rest_is_only_held():
    tt = TicketTypeFactory(capacity=2, name="VIP")
    make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    reserve(tt)
    with pytest.raises(SoldOut, match="All 'VIP' tickets are reserved; check back soon.") as exc:
        reserve(tt)
    assert exc.value.extra["all_reserved"] is True


def test_an_event_cap_filled_by_holds_says_all_reserved_and_one_filled_by_sales_sold_out():
    event = EventFactory(capacity=2)
    a, b = TicketTypeFactory(event=event, capacity=5), TicketTypeFactory(event=event, capacity=5)
    make_booking(items=[(a, 1)], status=Booking.Status.CONFIRMED)
    held = reserve(a, 1)
    with pytest.raises(SoldOut, match="All tickets for this event are reserved; check back soon.") as exc:
        reserve(b, 1)
    assert exc.value.extra["all_reserved"] is True

    booking_start_payment(booking=held)
    booking_confirm(booking=held)
    with pytest.raises(SoldOut, match="This event is sold out.") as exc:
        reserve(b, 1)
    assert exc.value.extra["all_reserved"] is False


def test_the_event_capacity_caps_all_ticket_types_together():
    event = EventFactory(capacity=5)
    a = TicketTypeFactory(event=event, capacity=5)
    b = TicketTypeFactory(event=event, capacity=5)
    reserve(a, 3)

    with pytest.raises(SoldOut) as exc:
        reserve(b, 3)

    assert exc.value.detail == "Only 2 tickets left for this event."
    assert exc.value.extra["available"] == {str(b.pk): 2}
    reserve(b, 2)
    assert counters(event) == (0, 5)
    assert counters(a) == (0, 3) and counters(b) == (0, 2)


def test_an_event_without_capacity_keeps_its_counters_at_zero():
    tt = TicketTypeFactory()
    make_booking(items=[(tt, 2)], status=Booking.Status.CONFIRMED)
    assert counters(tt.event) == (0, 0)


def test_reserve_reclaims_expired_holds_when_short(time_machine):
    tt = TicketTypeFactory(capacity=3)
    stale = reserve(tt, 3)
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))

    fresh = reserve(tt, 2)

    stale.refresh_from_db()
    assert stale.status == Booking.Status.EXPIRED
    assert statuses(stale) == ["released"] * 3
    assert fresh.status == Booking.Status.RESERVED
    assert counters(tt) == (0, 2)


def test_reserve_leaves_expired_holds_to_the_sweeper_when_not_short(time_machine):
    tt = TicketTypeFactory(capacity=10)
    stale = reserve(tt, 3)
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))

    reserve(tt, 2)

    stale.refresh_from_db()
    assert stale.status == Booking.Status.RESERVED
    assert counters(tt) == (0, 5)


def test_reclaiming_skips_holds_that_also_hold_other_ticket_types(time_machine):
    event = EventFactory()
    a = TicketTypeFactory(event=event, capacity=1)
    b = TicketTypeFactory(event=event, capacity=5)
    mixed = booking_reserve(event=event, items=[LineItem(a, 1), LineItem(b, 1)], email="m@example.com")
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))

    # Releasing `mixed` would need b's lock, which this reservation does not take.
    with pytest.raises(SoldOut):
        reserve(a, 1)
    mixed.refresh_from_db()
    assert mixed.status == Booking.Status.RESERVED

    assert holds_expire() == 1
    reserve(a, 1)
    assert counters(a) == (0, 1) and counters(b) == (0, 0)


@pytest.mark.parametrize("path", ["cold"], indirect=True)  # counts its own round trips
@pytest.mark.parametrize("types_seen_here", [False, True])
def test_reserve_cost_does_not_grow_with_tickets_already_sold(types_seen_here):
    """The same statements with 0 and 200 tickets sold, on the locked path (the types not read in
    this process in the last second) and in one round trip (read by a reservation here)."""
    def queries_for_one_reservation(tt):
        holds._RECENT_TYPES.clear()
        if types_seen_here:
            reserve(tt, 1)
        with CaptureQueriesContext(connection) as ctx:
            reserve(tt, 1)
        # No ticket is read but the buyer's own of this event (the count for their limit, bounded by it).
        assert all(sql.count('FROM "bookings_ticket"') == sql.count(BUYERS_TICKETS) for sql in sent(ctx))
        return [sql.split(" ")[0] for sql in sent(ctx)]

    empty = TicketTypeFactory(capacity=1000)
    busy = TicketTypeFactory(capacity=1000)
    for _i in range(20):
        make_booking(items=[(busy, 10)], status=Booking.Status.CONFIRMED)

    assert queries_for_one_reservation(empty) == queries_for_one_reservation(busy)


@pytest.mark.parametrize("path", ["cold"], indirect=True)  # counts its own round trips
def test_reserve_inside_an_outer_transaction_leaves_the_commit_to_it():
    """DESIGN section 6: the hot row is locked by one round trip; everything the reservation writes
    (counters, booking, tickets) goes in the next. Inside a transaction of the caller's (here the
    test's), the commit is the caller's."""
    tt = TicketTypeFactory(capacity=10)
    with CaptureQueriesContext(connection) as ctx:
        reserve(tt, 2)
    sql = sent(ctx)
    locks = [i for i, q in enumerate(sql) if "FOR NO KEY UPDATE" in q]
    assert len(locks) == 1
    after_lock = sql[locks[0] + 1:]
    assert len(after_lock) == 2 and after_lock[1].startswith("RELEASE SAVEPOINT")  # the test's commit
    assert after_lock[0].startswith("WITH ") and after_lock[0].count("INSERT INTO") == 2
    assert not after_lock[0].endswith("COMMIT")


@pytest.mark.parametrize("path", ["cold"], indirect=True)  # counts its own round trips
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("capped", [False, True])
def test_reserve_is_two_round_trips_and_the_hot_row_is_locked_for_one(capped):
    """On its own transaction: BEGIN, the lock timeout, the locks and a fresh read of an uncapped
    event in one round trip; the counters, the booking, the tickets and COMMIT in the next."""
    tt = TicketTypeFactory(capacity=10, event__capacity=50 if capped else None)
    event = Event.objects.get(pk=tt.event_id)
    with CaptureQueriesContext(connection) as ctx:
        booking = booking_reserve(event=event, items=[LineItem(tt, 2)], email="a@example.com")
    assert len(sent(ctx)) == 2
    locks, writes = sent(ctx)
    assert locks.startswith("BEGIN; SET LOCAL lock_timeout = ")
    assert locks.count("FOR NO KEY UPDATE") == (2 if capped else 1)
    assert locks.count('FROM "events_event"') == 1  # locked when capped, read fresh when not
    assert writes.startswith("WITH ") and writes.count("INSERT INTO") == 2 and writes.endswith("; COMMIT")
    assert writes.count("UPDATE ") == (2 if capped else 1)
    assert counters(tt) == (0, 2)
    assert Booking.objects.get(pk=booking.pk).status == Booking.Status.RESERVED
    assert statuses(booking) == ["held", "held"]


def test_the_reserved_booking_comes_with_its_tickets_and_renders_without_a_query():
    event = EventFactory()
    late, early = TicketTypeFactory(event=event, position=2), TicketTypeFactory(event=event, position=1)
    booking = booking_reserve(event=event, items=[LineItem(late, 1), LineItem(early, 2)], email="a@example.com")

    with CaptureQueriesContext(connection) as ctx:
        tickets = [(t.ticket_type_id, t.status, t.code, t.price) for t in booking.tickets.all()]
        payments = list(booking.payments.all())
    assert ctx.captured_queries == []
    assert tickets == [(t.ticket_type_id, t.status, t.code, t.price) for t in Ticket.objects.filter(booking=booking)]
    assert [t[0] for t in tickets] == [early.pk, early.pk, late.pk]  # the model's ordering
    assert payments == [] and not booking._state.adding
    assert Booking.objects.get(pk=booking.pk).created_at == booking.created_at


@pytest.mark.parametrize("path", ["cold"], indirect=True)  # counts its own round trips
def test_reserve_writes_the_same_rows_statement_by_statement_where_ctes_cannot_write(monkeypatch):
    """SQLite (the embedded default) has no data-modifying CTEs: the same statements run one by one."""
    tt = TicketTypeFactory(capacity=5, event__capacity=50)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with CaptureQueriesContext(connection) as ctx:
        booking = reserve(tt, 2)
    monkeypatch.undo()

    assert not any(sql.startswith("WITH ") for sql in sent(ctx))
    assert counters(tt) == (0, 2)
    tt.event.refresh_from_db()
    assert (tt.event.sold, tt.event.held) == (0, 2)
    assert statuses(Booking.objects.get(pk=booking.pk)) == ["held", "held"]


# --- booking_reserve in one round trip (`_GuardedHold`) ---------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["cold"], indirect=True)  # the real copies
@pytest.mark.parametrize("n_types", [1, 2])
def test_types_reserved_here_in_the_last_second_are_reserved_in_one_round_trip(n_types):
    """BEGIN, the lock timeout, the type locks, the fresh event, the guarded writes and COMMIT:
    one simple query. The first reservation read the types; the next starts from its copies."""
    event = EventFactory()
    types = [TicketTypeFactory(event=event, capacity=10, price=Decimal("12.50")) for _ in range(n_types)]
    items = [LineItem(tt, 2) for tt in types]
    booking_reserve(event=event, items=items, email="a@example.com")  # the locked path: two round trips

    with CaptureQueriesContext(connection) as ctx:
        booking = booking_reserve(event=event, items=items, email="b@example.com")

    [query] = sent(ctx)
    assert query.startswith("BEGIN; SET LOCAL lock_timeout = ") and query.endswith("; COMMIT")
    assert query.count("FOR NO KEY UPDATE") == 1 and query.count("INSERT INTO") == 2
    assert booking.total == Decimal("25.00") * n_types and len(booking.tickets.all()) == 2 * n_types
    assert all(counters(tt) == (0, 4) for tt in types)
    assert Booking.objects.get(pk=booking.pk).total == booking.total
    assert statuses(booking) == ["held"] * 2 * n_types
    assert_inventory_consistent()
    assert_bookings_match_tickets()


STALE_COPIES = {
    # column -> (the change made behind this process's copy, the refusal a reservation of 2 gets,
    # or else the total it is charged)
    "price": ({"price": Decimal("20.00")}, None, "40.00"),
    "max_per_booking": ({"max_per_booking": 1}, LimitExceeded, None),
    "sales_start": ({"sales_start": timezone.now() + timedelta(days=1)}, SalesClosed, None),
    "sales_end": ({"sales_end": timezone.now() - timedelta(minutes=1)}, SalesClosed, None),
    "capacity": ({"capacity": 1}, SoldOut, None),
}


@pytest.mark.parametrize("path", ["cold"], indirect=True)
@pytest.mark.parametrize("column", list(STALE_COPIES))
def test_a_copy_of_a_ticket_type_out_of_date_gives_what_the_fresh_row_gives(column):
    """The guard compares every column the rules read with the copy's: a change made since (by
    another process, so this one's copy is not dropped) is never sold at the copy's values."""
    changes, refusal, total = STALE_COPIES[column]
    tt = TicketTypeFactory(capacity=10, price=Decimal("10.00"), max_per_booking=5,
                           sales_start=timezone.now() - timedelta(days=1), event__starts_at=timezone.now() + HOLD * 100)
    read_here(tt)
    TicketType.objects.filter(pk=tt.pk).update(**changes)  # no signal: the copy stays

    if refusal is not None:
        with pytest.raises(refusal):
            reserve(tt, 2)
        assert counters(tt)[1] == 0 and not Booking.objects.exists()
    else:
        booking = reserve(tt, 2)
        assert booking.total == Decimal(total)
        assert Booking.objects.get(pk=booking.pk).total == Decimal(total)
        assert {t.price for t in Ticket.objects.filter(booking=booking)} == {Decimal(total) / 2}
    assert_inventory_consistent()


@pytest.mark.parametrize("path", ["cold"], indirect=True)
@pytest.mark.parametrize("column", ["status", "starts_at", "capacity", "currency"])
def test_a_copy_of_the_event_out_of_date_gives_what_the_fresh_row_gives(column):
    event = EventFactory(currency="EUR", starts_at=timezone.now() + timedelta(days=3))
    tt = TicketTypeFactory(event=event, capacity=10)
    read_here(tt)
    changes = {"status": {"status": Event.Status.CANCELLED},
               "starts_at": {"starts_at": timezone.now() - timedelta(minutes=1)},
               "capacity": {"capacity": 3},
               "currency": {"currency": "USD"}}[column]
    Event.objects.filter(pk=event.pk).update(**changes)  # the caller's `event` is the copy

    if column == "status":
        with pytest.raises(EventNotPublished):
            reserve(tt, 2)
    elif column == "starts_at":
        with pytest.raises(SalesClosed):
            reserve(tt, 2)
    else:  # the locked path, from the fresh event: capped, or in the new currency
        booking = reserve(tt, 2)
        assert booking.currency == Booking.objects.get(pk=booking.pk).currency == (
            "USD" if column == "currency" else "EUR")
        assert counters(event) == ((0, 2) if column == "capacity" else (0, 0))
    assert_inventory_consistent()


@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_a_guard_that_fails_for_one_type_writes_nothing_for_the_others():
    event = EventFactory()
    a, b = TicketTypeFactory(event=event, capacity=5), TicketTypeFactory(event=event, capacity=1, name="VIP")
    read_here(a, b)

    with pytest.raises(SoldOut, match="Only 1 'VIP' ticket left."):
        booking_reserve(event=event, items=[LineItem(a, 2), LineItem(b, 2)], email="a@example.com")

    assert counters(a) == (0, 0) and counters(b) == (0, 0)
    assert not Booking.objects.exists() and not Ticket.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_sold_out_is_answered_from_the_same_round_trip_unless_a_lapsed_hold_could_be_reclaimed(time_machine):
    tt = TicketTypeFactory(capacity=2, name="General")
    first = reserve(tt, 2)  # the locked path; it leaves copies

    with CaptureQueriesContext(connection) as ctx, pytest.raises(SoldOut) as exc:
        reserve(tt, 1)
    assert len(sent(ctx)) == 1
    assert exc.value.detail == "All 'General' tickets are reserved; check back soon."
    assert exc.value.extra == {"available": {str(tt.pk): 0}, "all_reserved": True}

    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    read_here(tt)
    second = reserve(tt, 1)  # the lapsed hold sends it to the locked path, which reclaims it
    first.refresh_from_db()
    assert (first.status, second.status) == (Booking.Status.EXPIRED, Booking.Status.RESERVED)
    assert counters(tt) == (0, 1)
    assert_inventory_consistent()


@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_the_look_for_lapsed_holds_is_a_range_scan_however_many_live_holds_the_event_has():
    """Every refusal of a sold-out storm asks it: it must not read the event's live holds one by one."""
    tt = TicketTypeFactory(capacity=1000)
    for _i in range(5):
        reserve(tt, 2)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as prepared, after a few calls
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows here; thousands in a storm
        sql = numbered(holds._GuardedHold.lapsed_holds_sql())
        cursor.execute(f"PREPARE lapsed (uuid, text, timestamptz) AS {sql}")
        cursor.execute("EXPLAIN EXECUTE lapsed(%s, %s, %s)", [tt.event_id, Booking.Status.RESERVED, timezone.now()])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE lapsed")
    assert "booking_event_status_exp_idx" in plan
    assert "Filter" not in plan and "expires_at <=" in plan.split("Index Cond")[1]


class Reads:
    """Records which attributes of the wrapped row are read."""

    def __init__(self, obj, seen):
        self._obj, self._seen = obj, seen

    def __getattr__(self, name):
        self._seen.add(name)
        return getattr(self._obj, name)


@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_the_guard_compares_every_column_the_rules_and_the_prices_read():
    """A rule that starts reading another column must add it to the guard, or a copy a second old
    could sell at values no longer true."""
    event = EventFactory()
    tt = TicketTypeFactory(event=event, max_per_booking=5, sales_end=timezone.now() + timedelta(days=1))
    event_reads, type_reads = set(), set()
    quantities = {tt.pk: 2}

    rules.check_sellable(Reads(event, event_reads), {tt.pk: Reads(tt, type_reads)}, quantities, timezone.now())
    rules.set_prices(SimpleNamespace(), [SimpleNamespace(ticket_type_id=tt.pk)], Reads(event, event_reads),
                         {tt.pk: Reads(tt, type_reads)}, quantities)

    messages_only = {"name"}
    assert type_reads - messages_only <= set(holds._GuardedHold.type_columns)
    assert event_reads - {"pk"} <= set(holds._EventState.columns) | {"_state"}
    assert {"price", "max_per_booking", "sales_end"} <= type_reads and {"status", "currency"} <= event_reads


# --- booking_cancel ------------------------------------------------------------


def test_cancel_releases_the_hold_at_once():
    tt = TicketTypeFactory(capacity=3)
    booking = reserve(tt, 3)

    booking_cancel(booking=booking)

    assert booking.status == Booking.Status.CANCELLED
    assert booking.closed_at is not None
    assert statuses(booking) == ["released"] * 3
    assert counters(tt) == (0, 0)
    reserve(tt, 3)


def test_cancelling_a_hold_past_its_deadline_marks_it_expired(time_machine):
    tt = TicketTypeFactory()
    booking = reserve(tt, 1)
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    booking_cancel(booking=booking)
    assert booking.status == Booking.Status.EXPIRED
    assert counters(tt) == (0, 0)


@pytest.mark.parametrize("status", [Booking.Status.PROCESSING, Booking.Status.CONFIRMED,
                                    Booking.Status.CANCELLED, Booking.Status.REFUNDED])
def test_only_a_reserved_booking_can_be_cancelled(status):
    tt = TicketTypeFactory()
    booking = make_booking(items=[(tt, 1)], status=status)
    before = counters(tt)
    with pytest.raises(InvalidTransition):
        booking_cancel(booking=booking)
    assert counters(tt) == before


# --- booking_start_payment / booking_confirm / booking_fail_payment ------------------


def test_confirm_issues_the_tickets_and_turns_held_into_sold(time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    event = EventFactory(capacity=10, starts_at=timezone.now() + timedelta(days=3))
    tt = TicketTypeFactory(event=event, capacity=5)
    booking = reserve(tt, 2)

    booking_start_payment(booking=booking)
    assert booking.status == Booking.Status.PROCESSING
    booking_confirm(booking=booking)

    assert booking.status == Booking.Status.CONFIRMED
    assert booking.confirmed_at == timezone.now()
    assert statuses(booking) == ["issued", "issued"]
    assert set(booking.tickets.values_list("issued_at", flat=True)) == {timezone.now()}
    assert counters(tt) == (2, 0)
    assert counters(event) == (2, 0)


def test_start_payment_refuses_an_expired_hold(time_machine):
    booking = reserve(TicketTypeFactory())
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    with pytest.raises(HoldExpired):
        booking_start_payment(booking=booking)
    booking.refresh_from_db()
    assert booking.status == Booking.Status.RESERVED  # the sweeper releases it


def test_start_payment_refuses_a_swept_hold(time_machine):
    booking = reserve(TicketTypeFactory())
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    holds_expire()
    with pytest.raises(HoldExpired):
        booking_start_payment(booking=booking)


@pytest.mark.parametrize("status", [Booking.Status.PROCESSING, Booking.Status.CONFIRMED, Booking.Status.CANCELLED])
def test_start_payment_needs_a_reserved_booking(status):
    booking = make_booking(items=[(TicketTypeFactory(), 1)], status=status)
    with pytest.raises(InvalidTransition):
        booking_start_payment(booking=booking)


@pytest.mark.parametrize("status", [Booking.Status.RESERVED, Booking.Status.CONFIRMED,
                                    Booking.Status.CANCELLED, Booking.Status.REFUNDED])
def test_only_a_booking_being_paid_can_be_confirmed(status):
    tt = TicketTypeFactory()
    booking = make_booking(items=[(tt, 1)], status=status)
    before = counters(tt)
    with pytest.raises(InvalidTransition):
        booking_confirm(booking=booking)
    assert counters(tt) == before


def test_a_booking_of_a_cancelled_event_cannot_be_confirmed():
    tt = TicketTypeFactory()
    booking = make_booking(items=[(tt, 1)], status=Booking.Status.PROCESSING)
    event_cancel(event=tt.event)
    with pytest.raises(InvalidTransition):
        booking_confirm(booking=booking)


def test_a_failed_payment_cancels_the_booking_and_releases_the_hold():
    tt = TicketTypeFactory(capacity=2)
    booking = make_booking(items=[(tt, 2)], status=Booking.Status.PROCESSING)

    booking_fail_payment(booking=booking)

    assert booking.status == Booking.Status.CANCELLED
    assert statuses(booking) == ["released", "released"]
    assert counters(tt) == (0, 0)


@pytest.mark.parametrize("status", [Booking.Status.RESERVED, Booking.Status.CONFIRMED])
def test_only_a_booking_being_paid_can_fail_its_payment(status):
    booking = make_booking(items=[(TicketTypeFactory(), 1)], status=status)
    with pytest.raises(InvalidTransition):
        booking_fail_payment(booking=booking)


def test_a_processing_booking_keeps_its_hold_past_the_deadline(time_machine):
    tt = TicketTypeFactory(capacity=1)
    booking = make_booking(items=[(tt, 1)], status=Booking.Status.PROCESSING)
    time_machine.move_to(timezone.now() + HOLD + timedelta(minutes=5))

    assert holds_expire() == 0
    with pytest.raises(SoldOut):
        reserve(tt)
    booking_confirm(booking=booking)
    assert counters(tt) == (1, 0)


# --- tickets_release_sold -------------------------------------------------------


def test_releasing_all_sold_tickets_refunds_the_booking():
    event = EventFactory(capacity=10)
    tt = TicketTypeFactory(event=event, capacity=3)
    booking = make_booking(items=[(tt, 3)], status=Booking.Status.CONFIRMED)

    released = tickets_release_sold(booking=booking)

    assert len(released) == 3
    assert booking.status == Booking.Status.REFUNDED
    assert statuses(booking) == ["refunded"] * 3
    assert counters(tt) == (0, 0) and counters(event) == (0, 0)
    reserve(tt, 3)


def test_releasing_some_tickets_keeps_the_booking_confirmed():
    tt = TicketTypeFactory(capacity=3)
    booking = make_booking(items=[(tt, 3)], status=Booking.Status.CONFIRMED)
    first = booking.tickets.first()

    released = tickets_release_sold(booking=booking, tickets=[first.pk])

    assert [t.pk for t in released] == [first.pk]
    assert booking.status == Booking.Status.CONFIRMED
    assert statuses(booking) == ["issued", "issued", "refunded"]
    assert counters(tt) == (2, 0)
    with pytest.raises(InvalidTransition):
        tickets_release_sold(booking=booking, tickets=[first])
    tickets_release_sold(booking=booking)
    assert booking.status == Booking.Status.REFUNDED
    with pytest.raises(InvalidTransition):
        tickets_release_sold(booking=booking)


def test_tickets_of_another_booking_cannot_be_released():
    tt = TicketTypeFactory()
    mine = make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    theirs = make_booking(items=[(tt, 1)], status=Booking.Status.CONFIRMED)
    with pytest.raises(InvalidTransition):
        tickets_release_sold(booking=mine, tickets=list(theirs.tickets.all()))
    with pytest.raises(InvalidInput):
        tickets_release_sold(booking=mine, tickets=[])
    assert counters(tt) == (2, 0)


@pytest.mark.parametrize("status", [Booking.Status.RESERVED, Booking.Status.PROCESSING, Booking.Status.CANCELLED])
def test_only_a_confirmed_booking_can_release_sold_tickets(status):
    booking = make_booking(items=[(TicketTypeFactory(), 1)], status=status)
    with pytest.raises(InvalidTransition):
        tickets_release_sold(booking=booking)


# --- holds_expire -----------------------------------------------------------------


def test_holds_expire_releases_only_reserved_holds_past_their_deadline(time_machine):
    event = EventFactory(capacity=50)
    tt = TicketTypeFactory(event=event, capacity=20)
    old = [reserve(tt, 2) for _i in range(5)]
    paying = make_booking(items=[(tt, 1)], status=Booking.Status.PROCESSING)
    time_machine.move_to(timezone.now() + timedelta(minutes=10))
    young = reserve(tt, 1)
    time_machine.move_to(timezone.now() + timedelta(minutes=6))

    assert holds_expire(batch_size=2) == 5
    assert holds_expire() == 0

    for booking in old:
        booking.refresh_from_db()
        assert booking.status == Booking.Status.EXPIRED
        assert statuses(booking) == ["released", "released"]
    young.refresh_from_db()
    paying.refresh_from_db()
    assert (young.status, paying.status) == (Booking.Status.RESERVED, Booking.Status.PROCESSING)
    assert counters(tt) == (0, 2)
    assert counters(event) == (0, 2)


def test_an_expired_booking_cannot_be_cancelled_or_paid(time_machine):
    booking = reserve(TicketTypeFactory())
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    holds_expire()
    with pytest.raises(InvalidTransition):
        booking_cancel(booking=booking)
    with pytest.raises(InvalidTransition):
        booking_confirm(booking=booking)


# --- event_cancel -------------------------------------------------------------------


def test_cancelling_an_event_releases_holds_and_lists_bookings_to_refund():
    event = EventFactory(capacity=20)
    tt = TicketTypeFactory(event=event, capacity=10)
    hold = reserve(tt, 2)
    sold = make_booking(items=[(tt, 3)], status=Booking.Status.CONFIRMED)

    to_refund = event_cancel(event=event)

    assert to_refund == [sold.pk]
    assert event.status == Event.Status.CANCELLED and event.cancelled_at is not None
    hold.refresh_from_db()
    assert hold.status == Booking.Status.CANCELLED
    assert counters(tt) == (3, 0) and counters(event) == (3, 0)
    with pytest.raises(EventNotPublished):
        reserve(tt)
    with pytest.raises(InvalidTransition):
        event_cancel(event=event)


def test_ticket_rows_follow_the_booking_through_its_life():
    tt = TicketTypeFactory(capacity=4)
    booking = make_booking(items=[(tt, 2)], status=Booking.Status.CONFIRMED)
    assert set(Ticket.objects.filter(booking=booking).values_list("status", flat=True)) == {Ticket.Status.ISSUED}
