"""Bounded work per request and the hoarding limits of `booking_reserve` (issue 15, items 5 and 6).

Every test runs on both paths of `booking_reserve` (the `path` fixture of test_services: the
locked path, and the one round trip from this process's copies), which must give the same
answers. The races are in test_concurrency.py.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import limits
from bookings.limits import BuyerLimits, client_network
from bookings.models import Booking, Ticket
from bookings.services import LineItem, booking_cancel, booking_reserve, holds, holds_expire, tickets_release_sold
from bookings.tests.conftest import assert_inventory_consistent
from bookings.tests.factories import make_booking, new_email
from bookings.tests.test_services import FreshCopies, path, read_here, sent  # noqa: F401 - `path` is autouse
from core.db.server_prepared import numbered
from core.errors import (
    AddressHoldLimitReached,
    Busy,
    HoldLimitReached,
    InvalidInput,
    LimitExceeded,
    SoldOut,
    TicketLimitReached,
)
from events.models import Event
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory

pytestmark = pytest.mark.django_db

HOLD = timedelta(minutes=15)


@pytest.fixture(autouse=True)
def default_limits(settings):
    """The documented defaults, whatever the environment sets."""
    settings.BOOKING_MAX_TICKETS, settings.BOOKING_MAX_ITEMS = 100, 20
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 3
    settings.BOOKING_MAX_HOLDS_PER_IP = 20
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 20


@pytest.fixture
def no_limits(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = settings.BOOKING_MAX_HOLDS_PER_IP = 0
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 0


class TicketsBuilt:
    """Counts `Ticket` objects built; more than `limit` is a failure at once (not an hour later)."""

    def __init__(self, limit: int = 1000):
        self.count, self.limit = 0, limit

    def __enter__(self):
        original = Ticket.__init__
        counter = self

        def counting(ticket, *args, **kwargs):
            counter.count += 1
            assert counter.count <= counter.limit, f"more than {counter.limit} Ticket objects built"
            original(ticket, *args, **kwargs)

        self._patch = mock.patch.object(Ticket, "__init__", counting)
        self._patch.start()
        return self

    def __exit__(self, *exc):
        self._patch.stop()


def reserve(tt, n=1, **kwargs):
    if "buyer" not in kwargs:
        kwargs.setdefault("email", new_email())
    return booking_reserve(event=kwargs.pop("event", tt.event), items=[LineItem(tt, n)], **kwargs)


def counters(tt):
    tt.refresh_from_db()
    return tt.sold, tt.held


# --- Item 5: bounded work per request --------------------------------------------------------------


def test_a_quantity_of_a_billion_is_refused_before_a_single_ticket_is_built():
    tt = TicketTypeFactory(capacity=10)
    with TicketsBuilt() as built, pytest.raises(LimitExceeded) as exc:
        reserve(tt, 10**9)
    assert built.count == 0
    assert exc.value.detail == "At most 100 tickets in one booking." and "items" in exc.value.errors
    assert counters(tt) == (0, 0) and not Booking.objects.exists()


def test_the_total_over_repeated_items_is_bounded_too(settings):
    settings.BOOKING_MAX_TICKETS = 5
    tt = TicketTypeFactory(capacity=100, max_per_booking=100)
    with TicketsBuilt() as built, pytest.raises(LimitExceeded, match="At most 5 tickets in one booking."):
        booking_reserve(event=tt.event, items=[LineItem(tt, 3), LineItem(tt, 3)], email="a@example.com")
    assert built.count == 0
    reserve(tt, 5)  # the ceiling itself is allowed


def test_the_number_of_items_is_bounded(settings):
    settings.BOOKING_MAX_ITEMS = 3
    tt = TicketTypeFactory()
    with TicketsBuilt() as built, pytest.raises(LimitExceeded, match="At most 3 ticket types in one booking."):
        booking_reserve(event=tt.event, items=[LineItem(tt, 1)] * 4, email="a@example.com")
    assert built.count == 0 and not Booking.objects.exists()


def test_the_ceiling_bounds_a_ticket_type_that_allows_more_per_booking(settings):
    settings.BOOKING_MAX_TICKETS = 10
    tt = TicketTypeFactory(capacity=100, max_per_booking=50)
    with pytest.raises(LimitExceeded):
        reserve(tt, 11)
    assert counters(tt) == (0, 0)


# --- Item 6: hoarding limits -----------------------------------------------------------------------


def test_a_guest_may_hold_three_reservations_of_an_event_at_once_whatever_the_case_of_the_address():
    tt = TicketTypeFactory(capacity=100)
    holds = [reserve(tt, email=email) for email in ("Bot@Example.com", "bot@example.com", "BOT@EXAMPLE.COM")]

    with pytest.raises(HoldLimitReached) as exc:
        reserve(tt, email="bot@example.COM")

    assert exc.value.code == "hold_limit_reached" and exc.value.status == 409
    assert "3 reservations for this event awaiting payment" in exc.value.detail
    assert exc.value.extra == {"limit": 3}
    assert counters(tt) == (0, 3) and Booking.objects.count() == 3
    reserve(tt, email="someone.else@example.com")  # another buyer
    reserve(TicketTypeFactory(), email="bot@example.com")  # another event
    booking_cancel(booking=holds[0])
    reserve(tt, email="bot@example.com")  # a hold given up no longer counts
    assert_inventory_consistent()


def test_an_account_is_one_buyer_whatever_address_it_gives():
    tt = TicketTypeFactory(capacity=100)
    buyer = UserFactory()
    for i in range(3):
        reserve(tt, buyer=buyer, email=f"alias{i}@example.com")
    with pytest.raises(HoldLimitReached):
        reserve(tt, buyer=buyer, email="alias9@example.com")
    reserve(tt, email=buyer.email)  # a guest with the account's address is another buyer


def test_a_hold_past_its_deadline_no_longer_counts(time_machine):
    tt = TicketTypeFactory(capacity=100)
    for _i in range(3):
        reserve(tt, email="bot@example.com")
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    booking = reserve(tt, email="bot@example.com")  # the three lapsed ones are not swept yet
    assert booking.status == Booking.Status.RESERVED


def test_holds_being_paid_do_not_count_as_holds_but_their_tickets_do(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 1
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 4
    tt = TicketTypeFactory(capacity=100)
    make_booking(items=[(tt, 2)], email="fan@example.com", status=Booking.Status.PROCESSING)
    hold = reserve(tt, 2, email="fan@example.com")
    with pytest.raises(HoldLimitReached):
        reserve(tt, 1, email="fan@example.com")
    booking_cancel(booking=hold)
    with pytest.raises(TicketLimitReached):
        reserve(tt, 3, email="fan@example.com")
    reserve(tt, 2, email="fan@example.com")


def test_tickets_per_buyer_count_every_live_booking_of_the_event(settings, time_machine):
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 5
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 0
    event = EventFactory()
    a, b = TicketTypeFactory(event=event, capacity=100), TicketTypeFactory(event=event, capacity=100)
    confirmed = make_booking(items=[(a, 2)], email="fan@example.com", status=Booking.Status.CONFIRMED)
    make_booking(items=[(b, 1)], email="fan@example.com", status=Booking.Status.PROCESSING)
    reserve(a, 1, email="fan@example.com", event=event)

    with pytest.raises(TicketLimitReached) as exc:
        reserve(b, 2, email="FAN@example.com", event=event)
    assert exc.value.code == "ticket_limit_reached" and exc.value.status == 409
    assert exc.value.detail == "One buyer may have at most 5 tickets for this event. You can reserve 1 more."
    assert exc.value.extra == {"limit": 5, "remaining": 1}

    tickets_release_sold(booking=confirmed, tickets=[confirmed.tickets.first()])  # refunded: not counted
    reserve(b, 2, email="fan@example.com", event=event)
    with pytest.raises(TicketLimitReached, match="You have reached it."):
        reserve(b, 1, email="fan@example.com", event=event)
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))  # the holds lapse, the rest stays
    reserve(b, 3, email="fan@example.com", event=event)
    with pytest.raises(TicketLimitReached):
        reserve(b, 1, email="fan@example.com", event=event)
    assert_inventory_consistent()


def test_holds_per_address_count_every_buyer_from_it_and_say_when_to_try_again(settings, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    settings.BOOKING_MAX_HOLDS_PER_IP = 2
    tt = TicketTypeFactory(capacity=100, event__starts_at=timezone.now() + timedelta(days=10))
    reserve(tt, client_ip="203.0.113.7")
    time_machine.move_to("2030-01-01 12:05Z", tick=False)
    reserve(tt, client_ip="203.0.113.7")

    with pytest.raises(AddressHoldLimitReached) as exc:
        reserve(tt, client_ip="203.0.113.7")
    assert exc.value.code == "ip_hold_limit_reached" and exc.value.status == 429
    assert exc.value.retry_after == 10 * 60 + 1  # the first hold ends at 12:15
    assert exc.value.extra == {"limit": 2}

    reserve(tt, client_ip="198.51.100.1")  # another address
    reserve(tt)  # no address known: no limit by address
    assert Booking.objects.filter(client_ip="203.0.113.7").count() == 2
    assert counters(tt) == (0, 4)


def test_ipv6_addresses_count_by_their_64_network(settings):
    settings.BOOKING_MAX_HOLDS_PER_IP = 2
    tt = TicketTypeFactory(capacity=100)
    reserve(tt, client_ip="2001:db8:1:2::1")
    reserve(tt, client_ip="2001:db8:1:2:ffff::9")
    with pytest.raises(AddressHoldLimitReached):
        reserve(tt, client_ip="2001:DB8:1:2:abcd::1")
    reserve(tt, client_ip="2001:db8:1:3::1")
    assert set(Booking.objects.values_list("client_ip", flat=True)) == {"2001:db8:1:2::", "2001:db8:1:3::"}


def test_client_network():
    assert client_network(None) is None and client_network("") is None
    assert client_network(" 192.0.2.1 ") == "192.0.2.1"
    assert client_network("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_network("2001:db8::1") == "2001:db8::"
    with pytest.raises(ValueError):
        client_network("not-an-address")


def test_the_event_overrides_each_limit_and_0_turns_it_off(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 1
    strict = EventFactory(max_holds_per_buyer=None, max_tickets_per_buyer=2)
    generous = EventFactory(max_holds_per_buyer=0, max_tickets_per_buyer=0)
    a = TicketTypeFactory(event=strict, capacity=100)
    b = TicketTypeFactory(event=generous, capacity=1000, max_per_booking=50)

    reserve(a, 2, email="fan@example.com")
    with pytest.raises(HoldLimitReached):  # the setting: 1
        reserve(a, 1, email="fan@example.com")
    for _i in range(5):  # no limit at all
        reserve(b, 50, email="fan@example.com")
    assert BuyerLimits.of(generous) == BuyerLimits(None, 20, None)
    assert BuyerLimits.of(strict) == BuyerLimits(1, 20, 2)


def test_a_refusal_changes_nothing(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 1
    tt = TicketTypeFactory(capacity=5)
    reserve(tt, 2, email="fan@example.com")
    with TicketsBuilt(), pytest.raises(HoldLimitReached):
        reserve(tt, 2, email="fan@example.com")
    assert counters(tt) == (0, 2)
    assert Booking.objects.count() == 1 and Ticket.objects.count() == 2
    assert_inventory_consistent()


def test_a_sold_out_type_says_sold_out_only_to_a_buyer_within_the_limits(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 1
    tt = TicketTypeFactory(capacity=2)
    reserve(tt, 2, email="fan@example.com")
    with pytest.raises(HoldLimitReached):
        reserve(tt, 1, email="fan@example.com")
    with pytest.raises(SoldOut):
        reserve(tt, 1, email="other@example.com")


@pytest.mark.parametrize("path", ["cold"], indirect=True)
@pytest.mark.parametrize("column, value, refusal", [
    ("max_holds_per_buyer", 1, HoldLimitReached),
    ("max_tickets_per_buyer", 2, TicketLimitReached),
    ("max_holds_per_buyer", 0, None),
])
def test_a_copy_of_the_event_with_other_limits_gives_what_the_fresh_row_gives(column, value, refusal, settings):
    """The organizer changed a limit a moment ago: the event the door hands over is older."""
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 2
    tt = TicketTypeFactory(capacity=10)
    event = Event.objects.get(pk=tt.event_id)  # the copy
    reserve(tt, 2, email="fan@example.com", event=event)
    read_here(tt)
    Event.objects.filter(pk=event.pk).update(**{column: value})

    if refusal is not None:
        with pytest.raises(refusal):
            reserve(tt, 1, email="fan@example.com", event=event)
        assert counters(tt) == (0, 2)
    else:
        for _i in range(3):  # past the setting's 2: the event turned the limit off
            reserve(tt, 1, email="fan@example.com", event=event)


@pytest.mark.parametrize("path", ["cold"], indirect=True)
@pytest.mark.parametrize("capped", [False, True])
def test_a_limit_switched_on_since_the_copy_is_never_skipped(settings, capped):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = settings.BOOKING_MAX_TICKETS_PER_BUYER = 0
    tt = TicketTypeFactory(capacity=10, event__capacity=20 if capped else None)
    event = Event.objects.get(pk=tt.event_id)
    for _i in range(2):
        reserve(tt, 1, email="fan@example.com", event=event)
    read_here(tt)
    Event.objects.filter(pk=event.pk).update(max_holds_per_buyer=2)

    # Uncapped: the one round trip counted nothing (no limit on the copy) and hands the fresh
    # event to the locked path, which counts. Capped (the locked path at once): the fresh row
    # needs a lock the transaction did not take first, so it is busy, and the retry refuses.
    with pytest.raises(Busy if capped else HoldLimitReached):
        reserve(tt, 1, email="fan@example.com", event=event)
    with pytest.raises(HoldLimitReached):
        reserve(tt, 1, email="fan@example.com", event=Event.objects.get(pk=event.pk))
    assert counters(tt) == (0, 2)


def test_the_limits_hold_for_a_capped_event_too(settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 1
    tt = TicketTypeFactory(capacity=10, event__capacity=20)
    reserve(tt, email="fan@example.com")
    with pytest.raises(HoldLimitReached):
        reserve(tt, email="fan@example.com")
    tt.event.refresh_from_db()
    assert (tt.event.sold, tt.event.held) == (0, 1)


def test_bad_input_is_refused_before_the_limits_are_counted():
    tt = TicketTypeFactory()
    with CaptureQueriesContext(connection) as ctx, pytest.raises(InvalidInput):
        reserve(tt, 1, email="not-an-address")
    assert ctx.captured_queries == []


# --- What goes to the server -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_with_no_limit_the_one_round_trip_sends_what_it_sent_before(no_limits):
    tt = TicketTypeFactory(capacity=10)
    reserve(tt, client_ip="192.0.2.1")
    with CaptureQueriesContext(connection) as ctx:
        reserve(tt, client_ip="192.0.2.1")
    [query] = sent(ctx)
    assert "pg_advisory" not in query and "bookings_ticket\" AS t" not in query
    statements = query.split("; ")
    assert statements[0] == "BEGIN" and statements[1].startswith("SET LOCAL lock_timeout")
    assert "FOR NO KEY UPDATE" in statements[2] and statements[-1] == "COMMIT" and len(statements) == 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_with_limits_it_is_still_one_round_trip_with_the_buyers_locks_first():
    tt = TicketTypeFactory(capacity=10)
    reserve(tt, client_ip="192.0.2.1")
    with CaptureQueriesContext(connection) as ctx:
        booking = reserve(tt, client_ip="192.0.2.1")
    [query] = sent(ctx)
    statements = query.split("; ")
    assert statements[:2] == ["BEGIN", statements[1]] and statements[1].startswith("SET LOCAL lock_timeout")
    assert statements[2].startswith("SELECT pg_advisory_xact_lock(") and statements[2].count("pg_advisory") == 2
    assert "FOR NO KEY UPDATE" in statements[3] and statements[-1] == "COMMIT" and len(statements) == 7
    assert booking.status == Booking.Status.RESERVED and Booking.objects.get(pk=booking.pk).client_ip == "192.0.2.1"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_the_locked_path_reads_the_counts_in_the_round_trip_of_its_locks(settings):
    tt = TicketTypeFactory(capacity=10, event__capacity=20)  # capped: always the locked path
    buyer = UserFactory()
    with CaptureQueriesContext(connection) as ctx:
        reserve(tt, buyer=buyer)
    locks, writes = sent(ctx)
    statements = locks.split("; ")
    assert statements[2].startswith("SELECT pg_advisory_xact_lock(") and statements[2].count("pg_advisory") == 1
    assert "FOR NO KEY UPDATE" in statements[3] and "FOR NO KEY UPDATE" in statements[4]
    assert statements[5].startswith("SELECT (SELECT COUNT(*)")
    assert writes.endswith("; COMMIT")


def plan(sql: str, types: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")  # as prepared, after a few calls
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows here; many in production
        cursor.execute(f"PREPARE usage ({types}) AS {numbered(sql)}")
        cursor.execute(f"EXPLAIN EXECUTE usage({', '.join(['%s'] * len(params))})", params)
        text = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE usage")
    return text


@pytest.mark.parametrize("path", ["cold"], indirect=True)
def test_the_counts_use_the_indexes_made_for_them_with_a_generic_plan():
    tt = TicketTypeFactory(capacity=1000)
    for i in range(200):  # live holds of the event from many addresses, so the planner has a choice
        reserve(tt, client_ip=f"10.0.{i // 100}.{i % 100}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE bookings_booking")
    now = timezone.now()
    check = limits.BuyerCheck.plan(event=tt.event, buyer_id=None, email="a@example.com", address="192.0.2.1",
                                   tickets=1, now=now)
    sql, _params = check.usage_statement()
    guest = plan(sql, "text, uuid, timestamptz, text, uuid, timestamptz, text, uuid, timestamptz, "
                      "text, uuid, timestamptz",
                 ["a@example.com", tt.event_id, now, "192.0.2.1", tt.event_id, now, "192.0.2.1", tt.event_id, now,
                  "a@example.com", tt.event_id, now])
    assert guest.count("booking_guest_email_event_idx") == 2 and guest.count("booking_ip_holds_idx") == 2
    account = limits.BuyerCheck.plan(event=tt.event, buyer_id=1, email="", address=None, tickets=1, now=now)
    sql, _params = account.usage_statement()
    text = plan(sql, "bigint, uuid, timestamptz, bigint, uuid, timestamptz",
                [1, tt.event_id, now, 1, tt.event_id, now])
    assert text.count("booking_buyer_created_idx") == 2


def test_the_limits_a_reservation_reads_from_the_event_are_compared_by_the_one_round_trip():
    assert set(BuyerLimits.event_columns) <= set(holds._EventState.columns)


def test_holds_expire_still_sweeps_what_the_limits_ignore(time_machine):
    tt = TicketTypeFactory(capacity=10)
    reserve(tt, email="fan@example.com")
    time_machine.move_to(timezone.now() + HOLD + timedelta(seconds=1))
    assert holds_expire() == 1
