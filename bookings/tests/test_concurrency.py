"""Real concurrency on PostgreSQL: many threads, each with its own connection, hit the same rows at once.

Each worker opens its connection first, then waits on a barrier, so the race is
on the locked section and not on connecting. Django connections are per
thread; every worker closes its own at the end so the test database can be
flushed. The lock timeout is raised for the races (a slow, shared CI machine
must not turn a queue into `Busy`); the last test brings it down on purpose.
"""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.services import LineItem, booking_cancel, booking_reserve, event_cancel, holds, holds_expire, inventory
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from bookings.tests.factories import make_booking, new_email
from core.db import transactions
from core.errors import Busy, InvalidTransition, SoldOut
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

JOIN_TIMEOUT = 30  # seconds for all workers together; a deadlock or a hang fails here
HOLD = timedelta(minutes=15)


class Outcome:
    def __init__(self, name):
        self.name = name
        self.result = None
        self.error = None


def run_together(jobs, *, join_timeout=JOIN_TIMEOUT):
    """Run `jobs` ({name: callable}) in one thread each, released together; return their outcomes.

    Fails if a worker is still running after `join_timeout` (a deadlock or a
    hang): lock waits are bounded, so nothing legitimate takes that long.
    """
    outcomes = [Outcome(name) for name in jobs]
    barrier = threading.Barrier(len(outcomes))

    def work(outcome, job):
        try:
            connection.ensure_connection()
            barrier.wait(timeout=join_timeout)
            outcome.result = job()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported by the caller
            outcome.error = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(outcome, job), name=f"worker-{outcome.name}", daemon=True)
        for outcome, job in zip(outcomes, jobs.values(), strict=True)
    ]
    deadline = time.monotonic() + join_timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"workers still running after {join_timeout}s (deadlock or hang): {stuck}"
    return outcomes


def reserve(tt, n=1, *, event=None):
    """A reservation by a buyer of its own (the races are between buyers, not one buyer's limits)."""
    return booking_reserve(event=event or tt.event, items=[LineItem(tt, n)], email=new_email())


def unexpected(outcomes, allowed=()):
    return [(o.name, repr(o.error)) for o in outcomes if o.error is not None and not isinstance(o.error, allowed)]


@pytest.fixture
def generous_lock_timeout(settings):
    settings.LOCK_TIMEOUT_MS = 15_000


@pytest.fixture
def lock_errors(monkeypatch):
    """SQLSTATEs of every lock timeout or deadlock seen by `locking_atomic`, also those a caller swallows.

    `holds_expire` turns `Busy` into "a later run takes these", so a deadlock
    inside the sweeper would otherwise go unnoticed.
    """
    seen = []
    original = transactions._is_busy_error

    def spy(exc):
        busy = original(exc)
        if busy:
            seen.append(getattr(exc.__cause__, "sqlstate", None))
        return busy

    monkeypatch.setattr(transactions, "_is_busy_error", spy)
    return seen


# --- (a) the last seats of one ticket type ---------------------------------------------------


@pytest.mark.usefixtures("generous_lock_timeout")
@pytest.mark.parametrize("copies", [False, True], ids=["locked", "one_round_trip"])
def test_fifty_buyers_racing_for_the_last_ten_seats_get_exactly_ten(lock_errors, copies, monkeypatch):
    tt = TicketTypeFactory(capacity=12)
    make_booking(items=[(tt, 2)], status=Booking.Status.CONFIRMED)
    holds._RECENT_TYPES.clear()
    if copies:  # every buyer starts from this process's copy of the type (`_GuardedHold`)
        monkeypatch.setattr(holds._RECENT_TYPES, "seconds", JOIN_TIMEOUT)  # fifty connections take a while
        holds._RECENT_TYPES.put([TicketType.objects.get(pk=tt.pk)])

    outcomes = run_together({f"buyer{i}": lambda: reserve(tt) for i in range(50)})

    assert unexpected(outcomes, allowed=SoldOut) == []
    won = [o.result for o in outcomes if o.error is None]
    lost = [o.error for o in outcomes if o.error is not None]
    assert (len(won), len(lost)) == (10, 40)
    assert all(e.extra["available"] == {str(tt.pk): 0} for e in lost)
    assert all(b.status == Booking.Status.RESERVED for b in won)
    assert lock_errors == []
    tt.refresh_from_db()
    assert (tt.sold, tt.held) == (2, 10)
    assert Ticket.objects.filter(ticket_type=tt, status=Ticket.Status.HELD).count() == 10
    assert_inventory_consistent()
    assert_bookings_match_tickets()


# --- (b) an event cap shared by two ticket types ------------------------------------------------


@pytest.mark.usefixtures("generous_lock_timeout")
def test_buyers_of_two_ticket_types_never_exceed_the_event_cap(lock_errors):
    event = EventFactory(capacity=10)
    a = TicketTypeFactory(event=event, capacity=10)
    b = TicketTypeFactory(event=event, capacity=10)
    requests = {}
    for i in range(36):
        items = [[(a, 1)], [(b, 1)], [(a, 1), (b, 1)], [(b, 2)]][i % 4]
        requests[f"buyer{i}"] = items
    jobs = {
        name: (lambda items=items: booking_reserve(
            event=event, items=[LineItem(tt, n) for tt, n in items], email=new_email()))
        for name, items in requests.items()
    }
    # A watcher samples the ticket rows while the buyers run: the cap must hold at every moment,
    # not only at the end.
    done = threading.Event()
    samples = []

    def watch():
        while not done.is_set():
            samples.append(Ticket.objects.filter(
                ticket_type__event=event, status__in=[Ticket.Status.HELD, Ticket.Status.ISSUED]).count())
        return len(samples)

    watcher = threading.Thread(target=lambda: (watch(), connection.close()), daemon=True)
    watcher.start()
    try:
        outcomes = run_together(jobs)
    finally:
        done.set()
        watcher.join(JOIN_TIMEOUT)

    assert unexpected(outcomes, allowed=SoldOut) == []
    assert lock_errors == []
    assert samples and max(samples) <= 10
    seats_won = sum(sum(n for _tt, n in requests[o.name]) for o in outcomes if o.error is None)
    event.refresh_from_db()
    a.refresh_from_db()
    b.refresh_from_db()
    assert event.sold == 0 and event.held == seats_won <= 10
    assert a.held + b.held == event.held
    # Nothing is released during the race, so what is left only shrinks: a refused request
    # proves that, at the end, fewer seats are left than it asked for.
    left = event.capacity - event.held
    for o in outcomes:
        if o.error is not None:
            assert left < sum(n for _tt, n in requests[o.name]), (o.name, left)
    assert_inventory_consistent()
    assert_bookings_match_tickets()


# --- (c) reservations, the sweeper and cancellations on the same rows ------------------------


@pytest.mark.usefixtures("generous_lock_timeout")
def test_reserve_sweep_and_cancel_racing_on_the_same_holds_neither_deadlock_nor_release_twice(
    time_machine, monkeypatch, lock_errors
):
    # No event cap: transactions on the two types run in parallel, so only the lock order
    # (types by pk, then bookings) keeps the mixed A+B work from deadlocking.
    event = EventFactory()
    a = TicketTypeFactory(event=event, capacity=13)
    b = TicketTypeFactory(event=event, capacity=12)
    time_machine.move_to(timezone.now())  # applies to every thread of the process
    stale = [make_booking(items=items) for items in [[(a, 1)]] * 4 + [[(b, 1)]] * 3 + [[(a, 1), (b, 1)]] * 2]
    time_machine.shift(HOLD + timedelta(minutes=1))
    live = [make_booking(items=items) for items in [[(a, 1)]] * 2 + [[(b, 1)]] * 2 + [[(a, 1), (b, 1)]]]
    # Held: a 6 stale + 3 live = 9 of 13, b 5 + 3 = 8 of 12. The 18 reservers want 12 a and 12 b, so the
    # first ones need no reclaim (the sweeps and cancellations get their turn), later ones do, and the
    # last ones may find nothing left.

    released = []  # (booking id, status) of every release that committed
    release_holds = inventory.release_holds

    def recording_release_holds(*, event, booking_ids, status, now, **kwargs):
        release_holds(event=event, booking_ids=booking_ids, status=status, now=now, **kwargs)
        ids = list(booking_ids)
        transaction.on_commit(lambda: released.extend((pk, status) for pk in ids))

    monkeypatch.setattr(inventory, "release_holds", recording_release_holds)

    def cancel_each(bookings):
        def run():
            results = []
            for booking in bookings:
                try:
                    results.append(booking_cancel(booking=booking).status)
                except InvalidTransition as exc:
                    results.append(exc)
            return results
        return run

    reserver_items = [[(a, 1)], [(b, 1)], [(a, 1), (b, 1)]]
    reservers = {
        f"reserve{i}": (lambda items=reserver_items[i % 3]: booking_reserve(
            event=event, items=[LineItem(tt, n) for tt, n in items], email=new_email()))
        for i in range(18)
    }
    others = {f"sweep{i}": (lambda: holds_expire(batch_size=2)) for i in range(3)}
    others |= {"cancel-live-0": cancel_each(live[:3]), "cancel-live-1": cancel_each(live[3:][::-1])}
    others |= {"cancel-stale-0": cancel_each(stale[::3]), "cancel-stale-1": cancel_each(stale[::-3])}
    # Interleaved, so the sweeps and cancellations are not always queued behind every reservation.
    names = [*reservers]
    for i, name in enumerate(others):
        names.insert(2 * i, name)
    jobs = {name: {**reservers, **others}[name] for name in names}

    outcomes = {o.name: o for o in run_together(jobs)}
    swept_late = holds_expire()  # whatever the racing sweeps skipped

    assert unexpected(outcomes.values(), allowed=SoldOut) == []
    assert all(isinstance(o.error, SoldOut) for o in outcomes.values() if o.error is not None)
    assert not any(name.startswith(("sweep", "cancel")) for name, o in outcomes.items() if o.error is not None)
    # No lock wait timed out and the server broke no deadlock, not even one the sweeper swallowed.
    assert lock_errors == []

    assert [r for r in outcomes["cancel-live-0"].result + outcomes["cancel-live-1"].result] == ["cancelled"] * 5
    for name in ("cancel-stale-0", "cancel-stale-1"):
        # Cancelling a hold past its deadline expires it, unless a sweep or a reservation was first.
        assert all(r == "expired" or isinstance(r, InvalidTransition) for r in outcomes[name].result), name
    swept = sum(outcomes[f"sweep{i}"].result for i in range(3)) + swept_late
    assert swept <= len(stale)

    stale_ids, live_ids = {bk.pk for bk in stale}, {bk.pk for bk in live}
    times = Counter(pk for pk, _status in released)
    assert {pk: n for pk, n in times.items() if n != 1} == {}, "a hold was released more than once"
    assert set(times) == stale_ids | live_ids, "only the stale and the cancelled holds are released"
    assert {status for pk, status in released if pk in stale_ids} == {"expired"}
    assert {status for pk, status in released if pk in live_ids} == {"cancelled"}
    statuses = dict(Booking.objects.values_list("pk", "status"))
    assert {statuses[pk] for pk in stale_ids} == {"expired"}
    assert {statuses[pk] for pk in live_ids} == {"cancelled"}
    new = {o.result.pk for o in outcomes.values() if o.name.startswith("reserve") and o.error is None}
    assert new and {statuses[pk] for pk in new} == {"reserved"}
    assert set(statuses) == stale_ids | live_ids | new
    assert_inventory_consistent()
    assert_bookings_match_tickets()


# --- (d) a row locked for too long ----------------------------------------------------------------


def test_reserve_gives_up_with_busy_when_the_row_stays_locked_past_the_lock_timeout(settings):
    settings.LOCK_TIMEOUT_MS = 200
    tt = TicketTypeFactory(capacity=5)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                TicketType.objects.select_for_update().get(pk=tt.pk)
                locked.set()
                release.wait(JOIN_TIMEOUT)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row, daemon=True)
    holder.start()
    try:
        assert locked.wait(JOIN_TIMEOUT)
        started = time.monotonic()
        with pytest.raises(Busy) as excinfo:
            reserve(tt)
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(JOIN_TIMEOUT)
    assert not holder.is_alive()

    assert isinstance(excinfo.value.__cause__, OperationalError)
    assert excinfo.value.__cause__.__cause__.sqlstate == "55P03"  # lock_not_available
    assert 0.15 <= waited < 2.0, waited
    assert not Booking.objects.exists()
    tt.refresh_from_db()
    assert (tt.sold, tt.held) == (0, 0)

    booking = reserve(tt)  # the lock is gone: the retry goes through

    assert booking.status == Booking.Status.RESERVED
    tt.refresh_from_db()
    assert (tt.sold, tt.held) == (0, 1)
    assert_inventory_consistent()


# --- (e) an organizer cancelling an event while a buyer reserves ---------------------------------


class Worker(threading.Thread):
    """Runs one job on its own connection; `pid` is its PostgreSQL backend, known once `ready` is set."""

    def __init__(self, name, job):
        super().__init__(name=name, daemon=True)
        self.job, self.ready, self.outcome, self.pid = job, threading.Event(), Outcome(name), None

    def run(self):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.ready.set()
            self.outcome.result = self.job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.outcome.error = exc
        finally:
            self.ready.set()
            connection.close()

    def start_and_wait_until_blocked(self):
        """Start, then return once this worker waits for a lock (True) or has finished (False)."""
        self.start()
        assert self.ready.wait(JOIN_TIMEOUT)
        deadline = time.monotonic() + JOIN_TIMEOUT
        with connection.cursor() as cursor:
            while self.is_alive():
                cursor.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [self.pid])
                if cursor.fetchone()[0]:
                    return True
                assert time.monotonic() < deadline, f"{self.name} neither blocked nor finished"
        return False


@pytest.mark.usefixtures("generous_lock_timeout")
def test_cancelling_an_uncapped_event_while_a_reservation_is_inside_its_lock_does_not_deadlock(lock_errors):
    event = EventFactory()  # no cap: reservations do not lock the event row
    first, second = sorted([TicketTypeFactory(event=event), TicketTypeFactory(event=event)], key=lambda t: t.pk)
    # A stand-in for any transaction on the first ticket type keeps event_cancel waiting right
    # after it locked the event, so the reservation of the second type runs inside that window.
    on_first, release_first = threading.Event(), threading.Event()

    def hold_first_type():
        with transaction.atomic():
            TicketType.objects.select_for_update().get(pk=first.pk)
            on_first.set()
            release_first.wait(JOIN_TIMEOUT)

    holder = Worker("holder", hold_first_type)
    canceller = Worker("cancel", lambda: event_cancel(event=event))
    buyer = Worker("reserve", lambda: reserve(second, event=event))
    try:
        holder.start()
        assert on_first.wait(JOIN_TIMEOUT)
        assert canceller.start_and_wait_until_blocked()  # holds the event, waits for the first type
        buyer.start_and_wait_until_blocked()  # holds the second type; today it then waits for the event
    finally:
        release_first.set()
        for worker in (holder, canceller, buyer):
            if worker.ident:
                worker.join(JOIN_TIMEOUT)
    assert not any(w.is_alive() for w in (holder, canceller, buyer))

    assert lock_errors == []  # today: ['40P01'], deadlock_detected
    assert (buyer.outcome.error, canceller.outcome.error) == (None, None)
    booking = buyer.outcome.result
    booking.refresh_from_db()
    event.refresh_from_db()
    assert (event.status, booking.status) == (Event.Status.CANCELLED, Booking.Status.CANCELLED)
    assert_inventory_consistent()
    assert_bookings_match_tickets()


@pytest.mark.usefixtures("generous_lock_timeout")
@pytest.mark.parametrize("copies", [False, True], ids=["locked", "one_round_trip"])
@pytest.mark.parametrize("change", ["cancelled", "capped", "started"])
def test_a_reservation_that_waited_for_its_ticket_type_sees_what_changed_the_event_meanwhile(change, copies):
    """An uncapped event's row is not locked by a reservation: the event is read again after the
    type lock, and a change made meanwhile (the event cancelled, a venue cap set, the event moved
    into the past) is seen before anything is written. The locked path, holding the type, cannot
    lock a newly capped event in order (`busy`, retry); the one round trip has written nothing,
    ended its transaction, and goes on to the capped path."""
    event = EventFactory(starts_at=timezone.now() + timedelta(days=7))  # no cap
    tt = TicketTypeFactory(event=event, capacity=10)
    if copies:
        holds._RECENT_TYPES.put([TicketType.objects.get(pk=tt.pk)])
    changes = {"cancelled": {"status": Event.Status.CANCELLED}, "capped": {"capacity": 100},
               "started": {"starts_at": timezone.now() - timedelta(minutes=1)}}[change]
    locked, commit = threading.Event(), threading.Event()

    def change_the_event():  # what event_cancel / event_update do: lock the types, change the event
        with transaction.atomic():
            TicketType.objects.select_for_update(no_key=True).get(pk=tt.pk)
            Event.objects.filter(pk=event.pk).update(**changes)
            locked.set()
            commit.wait(JOIN_TIMEOUT)

    changer = Worker("change", change_the_event)
    buyer = Worker("reserve", lambda: reserve(tt, 2, event=event))  # with the event as read before
    try:
        changer.start()
        assert locked.wait(JOIN_TIMEOUT)
        assert buyer.start_and_wait_until_blocked()
    finally:
        commit.set()
        for worker in (changer, buyer):
            if worker.ident:
                worker.join(JOIN_TIMEOUT)
    assert not any(w.is_alive() for w in (changer, buyer))

    if change == "capped" and copies:
        assert buyer.outcome.error is None
        event.refresh_from_db()
        assert (event.capacity, event.held) == (100, 2)
        assert_inventory_consistent()
        return
    expected = {"cancelled": "event_not_published", "capped": "busy", "started": "sales_closed"}[change]
    assert getattr(buyer.outcome.error, "code", buyer.outcome.error) == expected
    tt.refresh_from_db()
    assert (tt.held, tt.sold) == (0, 0)
    assert not Booking.objects.exists() and not Ticket.objects.exists()


@pytest.mark.usefixtures("generous_lock_timeout")
def test_setting_an_event_cap_while_a_reservation_is_in_flight_keeps_the_event_counters_right():
    from events.services import event_update

    event = EventFactory()
    tt = TicketTypeFactory(event=event, capacity=10)
    # A stand-in for any short transaction on the event row lines the two up behind it: the
    # update first (it asks first), then the reservation, which by then holds its ticket type
    # and waits only for the foreign key check of its booking.
    on_event, release_event = threading.Event(), threading.Event()

    def hold_event():
        with transaction.atomic():
            Event.objects.select_for_update().get(pk=event.pk)
            on_event.set()
            release_event.wait(JOIN_TIMEOUT)

    holder = Worker("holder", hold_event)
    updater = Worker("update", lambda: event_update(event=Event.objects.get(pk=event.pk), capacity=5))
    buyer = Worker("reserve", lambda: reserve(tt, 2, event=event))
    try:
        holder.start()
        assert on_event.wait(JOIN_TIMEOUT)
        assert updater.start_and_wait_until_blocked()
        assert buyer.start_and_wait_until_blocked()
    finally:
        release_event.set()
        for worker in (holder, updater, buyer):
            if worker.ident:
                worker.join(JOIN_TIMEOUT)
    assert not any(w.is_alive() for w in (holder, updater, buyer))

    assert (updater.outcome.error, buyer.outcome.error) == (None, None)
    event.refresh_from_db()
    assert event.capacity == 5
    assert_inventory_consistent()  # today: event held/sold counters 0/0, rows 2/0
