"""The hoarding limits under a bot's parallel requests, on PostgreSQL with real threads.

One buyer (or one address) sends many reservations at once, on both paths of `booking_reserve`
and across two ticket types of one event (so the ticket type row locks do not queue them): exactly
the limit succeed. Without the lock per buyer and address, each request would count the holds
committed before it started, and all of them would pass.
"""

from __future__ import annotations

import pytest

from bookings.models import Booking
from bookings.services import LineItem, booking_reserve, holds
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from bookings.tests.factories import new_email
from bookings.tests.test_concurrency import JOIN_TIMEOUT, run_together, unexpected
from core.errors import AddressHoldLimitReached, HoldLimitReached, TicketLimitReached
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

N = 12


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOCK_TIMEOUT_MS = 15_000  # a slow, shared machine must not turn the queue into Busy
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 3
    settings.BOOKING_MAX_HOLDS_PER_IP = 4
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 5


def two_types(copies: bool, monkeypatch):
    event = EventFactory()
    types = [TicketTypeFactory(event=event, capacity=100) for _ in range(2)]
    holds._RECENT_TYPES.clear()
    if copies:  # every request starts from this process's copies (`_GuardedHold`)
        monkeypatch.setattr(holds._RECENT_TYPES, "seconds", JOIN_TIMEOUT)
        holds._RECENT_TYPES.put([TicketType.objects.get(pk=tt.pk) for tt in types])
    return event, types


def outcome_counts(outcomes, refusal):
    assert unexpected(outcomes, allowed=refusal) == []
    won = [o for o in outcomes if o.error is None]
    return len(won), len(outcomes) - len(won)


@pytest.mark.parametrize("copies", [False, True], ids=["locked", "one_round_trip"])
def test_one_guest_racing_for_holds_gets_exactly_the_limit(copies, monkeypatch):
    event, types = two_types(copies, monkeypatch)

    def job(i):
        return lambda: booking_reserve(event=event, items=[LineItem(types[i % 2], 1)], email="bot@example.com")

    outcomes = run_together({f"bot{i}": job(i) for i in range(N)})

    assert outcome_counts(outcomes, HoldLimitReached) == (3, N - 3)
    assert Booking.objects.filter(email="bot@example.com").count() == 3
    assert_inventory_consistent()
    assert_bookings_match_tickets()


@pytest.mark.parametrize("copies", [False, True], ids=["locked", "one_round_trip"])
def test_one_account_racing_for_tickets_gets_exactly_the_limit(copies, monkeypatch, settings):
    settings.BOOKING_MAX_HOLDS_PER_BUYER = 0
    event, types = two_types(copies, monkeypatch)
    buyer = UserFactory()

    def job(i):
        return lambda: booking_reserve(event=event, items=[LineItem(types[i % 2], 1)], email=new_email(),
                                       buyer=buyer)

    outcomes = run_together({f"bot{i}": job(i) for i in range(N)})

    assert outcome_counts(outcomes, TicketLimitReached) == (5, N - 5)
    assert sum(tt.held for tt in TicketType.objects.filter(event=event)) == 5
    assert_inventory_consistent()


@pytest.mark.parametrize("copies", [False, True], ids=["locked", "one_round_trip"])
def test_throwaway_addresses_from_one_client_address_get_exactly_the_limit(copies, monkeypatch):
    event, types = two_types(copies, monkeypatch)

    def job(i):
        return lambda: booking_reserve(event=event, items=[LineItem(types[i % 2], 1)], email=new_email(),
                                       client_ip="203.0.113.50")

    outcomes = run_together({f"bot{i}": job(i) for i in range(N)})

    assert outcome_counts(outcomes, AddressHoldLimitReached) == (4, N - 4)
    assert Booking.objects.filter(client_ip="203.0.113.50").count() == 4
    assert_inventory_consistent()
