"""Booking transitions decide on the event as it is once their locks are granted (issue 15, item 2).

A caller hands in a booking whose event it read earlier (the capture task reads
it before a gateway call that can take seconds). An uncapped event's row is not
locked by these transitions, so they must read it again after their ticket type
locks: its status (a cancelled event confirms nothing) and its capacity (a cap
set meanwhile means the event's counters move too, and that needs the event's
lock first: the transition is refused as `Busy` and its retry does it right).
"""

import threading
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from bookings.models import Booking
from bookings.services import (
    booking_cancel,
    booking_confirm,
    booking_fail_payment,
    holds_expire,
    lifecycle,
    tickets_release_sold,
)
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from bookings.tests.factories import make_booking
from core.errors import Busy, HasSales, InvalidTransition
from events.models import Event, TicketType
from events.services import event_delete, event_update, ticket_type_update
from events.tests.factories import TicketTypeFactory

pytestmark = pytest.mark.django_db(transaction=True)

TRANSITIONS = {
    "confirm": (Booking.Status.PROCESSING, booking_confirm, Booking.Status.CONFIRMED),
    "fail_payment": (Booking.Status.PROCESSING, booking_fail_payment, Booking.Status.CANCELLED),
    "cancel": (Booking.Status.RESERVED, booking_cancel, Booking.Status.CANCELLED),
    "release_sold": (Booking.Status.CONFIRMED, tickets_release_sold, Booking.Status.REFUNDED),
}


@pytest.fixture
def tt():
    return TicketTypeFactory(capacity=10, event__capacity=None)


def stale(booking: Booking) -> Booking:
    booking.event  # noqa: B018 - the caller's copy of the event, read now
    return booking


def test_a_booking_is_not_confirmed_for_an_event_cancelled_after_it_was_read(tt):
    booking = stale(make_booking(items=[(tt, 2)], status=Booking.Status.PROCESSING))
    Event.objects.filter(pk=tt.event_id).update(status=Event.Status.CANCELLED)

    with pytest.raises(InvalidTransition, match="cancelled"):
        booking_confirm(booking=booking)

    booking.refresh_from_db()
    tt.refresh_from_db()
    assert booking.status == Booking.Status.PROCESSING
    assert (tt.sold, tt.held) == (0, 2)
    assert_inventory_consistent()


@pytest.mark.parametrize("name", TRANSITIONS)
def test_a_cap_set_after_the_booking_was_read_never_leaves_the_event_counters_wrong(tt, name):
    status, transition, after = TRANSITIONS[name]
    booking = stale(make_booking(items=[(tt, 2)], status=status))
    event_update(event=Event.objects.get(pk=tt.event_id), capacity=100)  # counts the booking's 2 tickets

    with pytest.raises(Busy):
        transition(booking=booking)  # the event must be locked first now: refused, nothing moved
    assert_inventory_consistent()

    transition(booking=Booking.objects.get(pk=booking.pk))  # the retry reads the booking again
    assert Booking.objects.get(pk=booking.pk).status == after
    assert_inventory_consistent()
    assert_bookings_match_tickets()


# --- Organizer writes that wait for a lock decide on what committed meanwhile -----------------

JOIN_TIMEOUT = 30


class Worker(threading.Thread):
    """One job on its own connection; `start_and_wait_until_blocked` returns once it waits for a lock."""

    def __init__(self, job):
        super().__init__(daemon=True)
        self.job, self.ready, self.pid, self.result, self.error = job, threading.Event(), None, None, None

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.ready.set()
            self.result = self.job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.ready.set()
            connection.close()

    def start_and_wait_until_blocked(self):
        self.start()
        assert self.ready.wait(JOIN_TIMEOUT)
        deadline = time.monotonic() + JOIN_TIMEOUT
        with connection.cursor() as cursor:
            while self.is_alive():
                cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [self.pid])
                if cursor.fetchone()[0]:
                    return
                assert time.monotonic() < deadline, "the worker neither blocked nor finished"
        raise AssertionError(f"the worker finished without waiting: {self.error or self.result!r}")


def holding(work):
    """A worker that runs `work` in a transaction and keeps it open until told to commit."""
    inside, commit = threading.Event(), threading.Event()

    def job():
        with transaction.atomic():
            work()
            inside.set()
            assert commit.wait(JOIN_TIMEOUT)

    worker = Worker(job)
    worker.start()
    assert inside.wait(JOIN_TIMEOUT)
    return worker, commit


@pytest.mark.slow
def test_a_ticket_type_change_waiting_for_a_cancellation_sees_the_event_cancelled(tt, settings):
    settings.LOCK_TIMEOUT_MS = 15_000

    def cancel():  # event_cancel's locks: the event, then its ticket types
        Event.objects.select_for_update(no_key=True).get(pk=tt.event_id)
        TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
        Event.objects.filter(pk=tt.event_id).update(status=Event.Status.CANCELLED)

    canceller, commit = holding(cancel)
    change = Worker(lambda: ticket_type_update(ticket_type=tt, capacity=20))
    try:
        change.start_and_wait_until_blocked()
    finally:
        commit.set()
    canceller.join(JOIN_TIMEOUT)
    change.join(JOIN_TIMEOUT)

    assert canceller.error is None
    assert isinstance(change.error, InvalidTransition), change.error or change.result
    tt.refresh_from_db()
    assert tt.capacity == 10


@pytest.mark.slow
def test_deleting_an_event_waits_for_a_reservation_in_flight_and_then_refuses(tt, settings):
    settings.LOCK_TIMEOUT_MS = 15_000

    def reserve():  # a reservation on an uncapped event: its ticket type locked, its booking written
        TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
        Booking.objects.create(event_id=tt.event_id, email="a@example.com", status=Booking.Status.RESERVED,
                               expires_at=timezone.now() + timedelta(minutes=15), total=0, currency="EUR")

    buyer, commit = holding(reserve)
    delete = Worker(lambda: event_delete(event=Event.objects.get(pk=tt.event_id)))
    try:
        delete.start_and_wait_until_blocked()
    finally:
        commit.set()
    buyer.join(JOIN_TIMEOUT)
    delete.join(JOIN_TIMEOUT)

    assert buyer.error is None
    assert isinstance(delete.error, HasSales), delete.error
    assert Event.objects.filter(pk=tt.event_id).exists()


def test_a_sweep_whose_holds_were_released_after_it_listed_them_does_nothing(tt, time_machine):
    """`holds_expire` lists lapsed holds, then locks their ticket types: another sweeper (or the
    buyer's cancel) may have released them in between, and there is nothing left to lock."""
    booking = make_booking(items=[(tt, 2)])
    other = make_booking(items=[(TicketTypeFactory(capacity=5), 1)])  # another event's, still to expire
    time_machine.move_to(booking.expires_at + timedelta(minutes=1))
    real = lifecycle._expire_bookings

    def released_meanwhile(event_id, booking_ids, now):
        if booking.pk in booking_ids:
            booking_cancel(booking=Booking.objects.get(pk=booking.pk))  # the other sweeper's work
        return real(event_id, booking_ids, now)

    with mock.patch.object(lifecycle, "_expire_bookings", released_meanwhile):
        assert holds_expire() == 1  # the other event's hold; no error for the one gone

    assert Booking.objects.get(pk=other.pk).status == Booking.Status.EXPIRED
    assert_inventory_consistent()
