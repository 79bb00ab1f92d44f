"""The reservation's SQL: the one-round-trip fast path and the locked path beside it.

The interface `booking_reserve` uses:
- `try_one_round_trip(...)`: the reservation in one round trip on this process's recent copies,
  guarded in SQL; says whether it wrote, and the freshest event for the fallback.
- `locked_inventory(...)`: the locked path's locks and reads (a context manager, the transaction).
- `write_hold(...)`: the locked path's writes and COMMIT, in one round trip.
- `reread(...)`: fresh copies of rows already locked.
`lock_inventory` takes the same locks for the other use cases (`lifecycle`).

Where the backend cannot send several statements in one round trip (SQLite,
`can_combine_round_trips()` false), the fast path steps aside and `core.db` sends the locked path's
statements one by one. Why each round trip and statement is where it is: docs/hot-path.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db import connection
from django.utils.translation import gettext as _

from bookings.limits import BuyerCheck, BuyerLimits, Usage
from bookings.models import Booking, Ticket
from bookings.services import rules
from bookings.services.inventory import counter_updates
from core.db import (
    CompiledQuery,
    SQLRead,
    Statement,
    can_combine_round_trips,
    guarded_insert,
    guarded_update,
    insert_statement,
    locking_atomic,
    mark_saved,
    read_then_write,
    read_together,
    with_ctes,
    write_together,
)
from core.errors import Busy, EventNotPublished, InvalidInput, LimitExceeded, SalesClosed
from core.recent import RecentCopies
from events.models import Event, TicketType


def try_one_round_trip(*, event: Event, quantities: Mapping[uuid.UUID, int], booking: Booking,
                       tickets: list[Ticket], now: datetime, check: BuyerCheck) -> _GuardedHold:
    """The reservation in one round trip when it applies (`_GuardedHold`).

    `.written`: the booking and its tickets are saved and committed. Otherwise nothing was
    written and `.event` is the freshest copy of the event, for the locked path; a refusal
    the fresh rows prove (a rule, `SoldOut` with no lapsed hold to reclaim) is raised here.
    """
    return _GuardedHold.attempt(event=event, quantities=quantities, booking=booking, tickets=tickets, now=now,
                                check=check)


def one_round_trip_statements(*, event: Event, copies: Mapping[uuid.UUID, TicketType],
                               quantities: Mapping[uuid.UUID, int], booking: Booking, tickets: list[Ticket],
                               now: datetime, check: BuyerCheck) -> list[Statement]:
    """The statements `try_one_round_trip` sends between BEGIN (with the lock timeout) and COMMIT,
    in order, with their values, before `server_prepared` (bench/reserve_sql.py writes them out)."""
    lock = check.lock_read()
    reads = [*([lock] if lock else []), *_uncapped_reads(event, sorted(quantities))]
    return [*((c.sql, c.bind(values)) for query, values in reads for c in [query._compiled(values)]),
            _GuardedHold._writes(event, copies, quantities, booking, tickets, now, check)]


@dataclass(frozen=True)
class Locked:
    """The rows the locked path read under its locks."""

    event: Event
    types: dict[uuid.UUID, TicketType]
    usage: Usage | None  # the buyer's counts, when a limit applies


@contextmanager
def locked_inventory(event: Event, type_ids: Iterable[uuid.UUID], check: BuyerCheck) -> Iterator[Locked]:
    """One transaction (`locking_atomic`) holding the buyer's locks (when a limit applies), the
    event's (when capped) and the ticket types', with the rows read after them, in one round trip.

    The types read become this process's recent copies when the transaction ends, committed or not.
    """
    locked: dict[uuid.UUID, TicketType] = {}
    try:
        with locking_atomic():
            lock, usage = check.lock_read(), check.usage_read() if check.applies else None
            event, types, _first, last = _lock_inventory_and_read(
                event, type_ids, fresh=True, first=[lock] if lock else [], last=[usage] if usage else [])
            locked = types
            yield Locked(event, types, Usage.from_row(last[0][0]) if last else None)
    finally:
        _RECENT_TYPES.put(locked.values())


def write_hold(event: Event, quantities: Mapping[uuid.UUID, int], booking: Booking, tickets: list[Ticket]) -> None:
    """Take the held capacity and insert the booking and its tickets, then COMMIT: one round trip."""
    write_together(
        [*counter_updates(event=event, per_type=quantities, held=+1),
         insert_statement([booking]), insert_statement(tickets)],
        commit=True,
    )
    mark_saved([booking, *tickets])


def reread(event: Event, types: Mapping[uuid.UUID, TicketType]) -> tuple[Event, dict[uuid.UUID, TicketType]]:
    """Fresh copies of rows this transaction already holds locks on."""
    if event.capacity is not None:
        event = Event.objects.get(pk=event.pk)
    return event, {tt.pk: tt for tt in TicketType.objects.filter(pk__in=list(types))}


def lock_inventory(event: Event, type_ids: Iterable[uuid.UUID], *,
                   fresh: bool = False) -> tuple[Event, dict[uuid.UUID, TicketType]]:
    """Lock the event (when capped) then the ticket types by pk; return fresh rows. One round trip.
    (`_lock_inventory_and_read`, without further reads.)"""
    event, types, _first, _last = _lock_inventory_and_read(event, type_ids, fresh=fresh)
    return event, types


Read = tuple[CompiledQuery | SQLRead, dict]


def _lock_inventory_and_read(event: Event, type_ids: Iterable[uuid.UUID], *, fresh: bool = False,
                             first: Sequence[Read] = (), last: Sequence[Read] = (),
                             ) -> tuple[Event, dict[uuid.UUID, TicketType], list[list], list[list]]:
    """Lock the event (when capped) then the ticket types by pk; return fresh rows. One round trip,
    which also runs the reads `first` (before the locks) and `last` (after them) and returns their rows.

    `event.capacity` as the caller loaded it decides whether the event row is
    locked. If the cap was set meanwhile (an organizer change), the event row
    would have to be locked after the types, against the global order, so the
    request is refused as `Busy` and its retry takes the right path.

    With `fresh`, an uncapped event (whose row is not locked) is read again after the type
    locks, in the same round trip (`_EventState`), so the caller sees a change committed
    while it waited for them.
    """
    ids = sorted(set(type_ids))
    if event.capacity is not None:
        reads = [(_LOCK_EVENT, {"event": event.pk}), (_LOCK_TYPES, {"event": event.pk, "types": ids})]
    else:
        reads = _uncapped_reads(event, ids)
        if not fresh:
            reads = reads[:1]  # the type locks only
    results = read_together(*first, *reads, *last)
    first_rows, results, last_rows = results[:len(first)], results[len(first):len(results) - len(last)], \
        results[len(results) - len(last):]
    if event.capacity is not None:
        locked_event, locked_types = results
        if not locked_event:
            raise Event.DoesNotExist(f"Event {event.pk} was deleted.")
        [event] = locked_event
    else:
        locked_types = results[0]
    types = {tt.pk: tt for tt in locked_types}
    if len(types) != len(ids):
        raise InvalidInput(_("Unknown ticket type for this event."),
                           errors={"items": [_("Unknown ticket type for this event.")]})
    if event.capacity is None and fresh:
        event = _EventState.refuse_if_changed(event, results[1])
    return event, types, first_rows, last_rows


def _uncapped_reads(event: Event, ids: list[uuid.UUID]) -> list[tuple[CompiledQuery, dict]]:
    """The type locks (ids sorted), then the fresh read of an uncapped event (`_EventState`)."""
    return [(_LOCK_TYPES, {"event": event.pk, "types": ids}), (_EventState.query, {"event": event.pk})]


# The reservation's queries, compiled once (`CompiledQuery`).
_LOCK_EVENT = CompiledQuery(lambda event: Event.objects.select_for_update(no_key=True).filter(pk=event).order_by())
_LOCK_TYPES = CompiledQuery(
    lambda event, types: TicketType.objects.select_for_update(no_key=True)
    .filter(event_id=event, pk__in=types).order_by("pk")
)


class _EventState:
    """The event columns an uncapped reservation reads again after its type locks (the event row
    is not locked, so the caller's copy may be stale), in a statement of its own, in the same
    round trip."""

    columns = ("status", "starts_at", "capacity", "currency", *BuyerLimits.event_columns)
    query = CompiledQuery(lambda event: Event.objects.filter(pk=event).order_by().values_list(*_EventState.columns))

    @classmethod
    def refuse_if_changed(cls, event: Event, rows: list[tuple]) -> Event:
        """The event as just read (`latest`); `Busy` if a cap or another currency was set since
        `event` was read: the event row would have to be locked after the types, so the retry
        starts over from the fresh row."""
        latest = cls.latest(event, rows)
        if not cls.same_terms(event, latest):
            raise Busy()
        return latest

    @staticmethod
    def same_terms(event: Event, latest: Event) -> bool:
        """Still uncapped and in the same currency: what an uncapped reservation started from holds."""
        return latest.capacity is None and latest.currency == event.currency

    @classmethod
    def latest(cls, event: Event, rows: list[tuple]) -> Event:
        """A copy of `event` with the columns just read (`query`)."""
        if not rows:
            raise Event.DoesNotExist(f"Event {event.pk} was deleted.")
        latest = copy(event)
        for column, value in zip(cls.columns, rows[0], strict=True):
            setattr(latest, column, value)
        return latest


# This process's copies of the ticket types it reserved in the last second (`_GuardedHold`).
_RECENT_TYPES = RecentCopies(seconds=1.0)


def forget_recent_ticket_type(pk) -> None:
    """Drop this process's copy (a ticket type saved here); other processes' copies age out."""
    _RECENT_TYPES.forget(pk)


@dataclass(frozen=True)
class _GuardedHold:
    """A reservation in one round trip: the rules checked in Python on this process's copies of
    the rows (`_RECENT_TYPES`), the writes guarded in SQL by "every column the rules read still
    equals the copy's, and there is room". Applies to an uncapped event whose requested types this
    process read in the last second, where `can_combine_round_trips()`.

    Guarantees: nothing is written unless the guard holds for every type, on rows read after the
    type locks were granted; when nothing was written, a refusal the fresh rows prove is raised,
    and anything else goes to the locked path, which gives the refusal it gives on the same rows.
    """

    written: bool
    event: Event  # the freshest copy this attempt has: the locked path starts from it

    # Every column `rules.check_sellable` and the prices read from a ticket type, beyond its keys
    # (bookings/tests/test_services.py checks the list against what they read).
    type_columns = ("price", "max_per_booking", "sales_start", "sales_end")

    @classmethod
    def attempt(cls, *, event: Event, quantities: Mapping[uuid.UUID, int], booking: Booking,
                tickets: list[Ticket], now: datetime, check: BuyerCheck) -> _GuardedHold:
        copies = {pk: _RECENT_TYPES.get(pk) for pk in quantities}
        if event.capacity is not None or not can_combine_round_trips() or any(
                tt is None or tt.event_id != event.pk for tt in copies.values()):
            return cls(False, event)
        try:
            rules.check_sellable(event, copies, quantities, now)
        except (EventNotPublished, SalesClosed, LimitExceeded):
            return cls(False, event)  # refused on the locked path, from fresh rows
        rules.set_prices(booking, tickets, event, copies, quantities)
        ids = sorted(quantities)
        lock = check.lock_read()  # the buyer's and the address's locks, first, in a statement of their own
        with locking_atomic():
            results, [(written, lapsed_holds, *usage)], _committed = read_then_write(
                [*([lock] if lock else []), *_uncapped_reads(event, ids)],
                cls._writes(event, copies, quantities, booking, tickets, now, check),
                commit=True,
            )
        locked, event_rows = results[-2:]
        types = {tt.pk: tt for tt in locked}
        _RECENT_TYPES.put(locked)
        if written:
            for ticket in tickets:
                ticket.ticket_type = types[ticket.ticket_type_id]  # same prices: the guard compared them
            mark_saved([booking, *tickets])
            return cls(True, event)
        if not event_rows:
            return cls(False, event)  # deleted: the locked path says so
        latest = _EventState.latest(event, event_rows)
        if _EventState.same_terms(event, latest) and len(types) == len(ids):
            rules.check_sellable(latest, types, quantities, now)
            fresh = check.replan(latest)
            if fresh.applies and not (usage and check.counts_cover(fresh)):
                return cls(False, latest)  # the locked path locks and counts what the event's limits need
            if usage:
                fresh.check(Usage.from_row(tuple(usage)))
            if rules.is_short(latest, types, quantities) and not lapsed_holds:
                raise rules.sold_out(latest, types, quantities)
        return cls(False, latest)

    @classmethod
    def _writes(cls, event: Event, copies: Mapping[uuid.UUID, TicketType], quantities: Mapping[uuid.UUID, int],
                booking: Booking, tickets: list[Ticket], now: datetime, check: BuyerCheck) -> Statement:
        """The guard (`w0`, a read), the writes of the locked path only if it holds, and the outcome.

        When a buyer's limit applies, the guard also holds only while the buyer's and the address's
        counts (`check.usage_statement()`, as `u`) are within the limits, and returns them.
        """
        ids = sorted(quantities)
        guard = cls.guard(event, copies, quantities)
        if check.applies:
            (usage_sql, usage_params), (within, limits) = check.usage_statement(), check.within_limits()
            guard = (f"SELECT g.ok AND {within} AS ok, {cls._USAGE_COLUMNS} "  # noqa: S608 - names and %s only
                     f"FROM ({guard[0]}) AS g CROSS JOIN ({usage_sql}) AS u", [*limits, *guard[1], *usage_params])
        wrote = "(SELECT ok FROM w0)"
        return with_ctes([
            guard,
            # The locked path's writes (`write_hold`; uncapped: the types' counters only), guarded.
            guarded_update(TicketType, pks=ids, add={"held": [quantities[pk] for pk in ids]}, condition=wrote),
            guarded_insert([booking], condition=wrote),
            guarded_insert(tickets, condition=wrote),
            (cls._outcome_sql(check.applies), [event.pk, Booking.Status.RESERVED, now]),
        ])

    _USAGE_COLUMNS = "u.holds, u.address_holds, u.address_first_end, u.tickets"  # `Usage.from_row`

    @classmethod
    def guard(cls, event: Event, copies: Mapping[uuid.UUID, TicketType],
              quantities: Mapping[uuid.UUID, int]) -> Statement:
        """The guard's read (`ok`): the SQL restatement of the room rule (`events.rules.type_remaining`),
        on rows still equal to the copies (bookings/tests/test_rule_agreement.py checks it)."""
        ids = sorted(quantities)
        per_type = [value for pk in ids
                    for value in (pk, quantities[pk], *(getattr(copies[pk], c) for c in cls.type_columns))]
        event_state = [getattr(event, c) for c in _EventState.columns]
        return cls._guard_sql(len(ids)), [len(ids), *per_type, event.pk, event.pk, *event_state]

    @staticmethod
    @cache
    def _guard_sql(n_types: int) -> str:
        """`ok`: every requested type has room, and every column the rules read still equals the copy's."""
        q = connection.ops.quote_name
        tt, ev = TicketType._meta, Event._meta

        def column(meta, name: str) -> str:
            return f"{q(meta.db_table)}.{q(meta.get_field(name).column)}"

        def cast(meta, name: str) -> str:
            return f"%s::{meta.get_field(name).cast_db_type(connection)}"

        columns = _GuardedHold.type_columns
        row = "(" + ", ".join(["%s::uuid", "%s::integer", *(cast(tt, c) for c in columns)]) + ")"
        # Names come from the models; every value is a bound parameter.
        return (
            f"SELECT count(*) = %s AS ok FROM {q(tt.db_table)} "  # noqa: S608
            f"JOIN (VALUES {', '.join([row] * n_types)}) AS v ({', '.join(q(c) for c in ('id', 'n', *columns))}) "
            f"ON {column(tt, 'id')} = v.{q('id')} WHERE {column(tt, 'event')} = %s::uuid "
            f"AND {column(tt, 'capacity')} - {column(tt, 'sold')} - {column(tt, 'held')} >= v.{q('n')} "
            f"AND ({', '.join(column(tt, c) for c in columns)}) "
            f"IS NOT DISTINCT FROM ({', '.join(f'v.{q(c)}' for c in columns)}) "
            f"AND EXISTS (SELECT 1 FROM {q(ev.db_table)} WHERE {column(ev, 'id')} = %s::uuid "
            f"AND ({', '.join(column(ev, c) for c in _EventState.columns)}) "
            f"IS NOT DISTINCT FROM ({', '.join(cast(ev, c) for c in _EventState.columns)}))"
        )

    @staticmethod
    @cache
    def _outcome_sql(usage: bool = False) -> str:
        """Whether it wrote; when not, whether the event has a lapsed hold to reclaim; with `usage`,
        the buyer's and the address's counts."""
        counts = ", holds, address_holds, address_first_end, tickets" if usage else ""
        return (f"SELECT ok, CASE WHEN NOT ok THEN EXISTS ({_GuardedHold.lapsed_holds_sql()}) END{counts} "  # noqa: S608
                "FROM w0")

    @staticmethod
    @cache
    def lapsed_holds_sql() -> str:
        """The event's reserved bookings past their deadline (values: event, status, now): a range
        of `booking_event_status_exp_idx`, however many live holds a sold-out event has."""
        q = connection.ops.quote_name
        b = Booking._meta
        return (
            f"SELECT 1 FROM {q(b.db_table)} WHERE {q(b.get_field('event').column)} = %s::uuid "  # noqa: S608
            f"AND {q('status')} = %s AND {q('expires_at')} <= %s::timestamptz"
        )
