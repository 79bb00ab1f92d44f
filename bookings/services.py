"""Booking use cases: reserve, confirm, cancel, expire holds, release sold tickets.

Locking (DESIGN.md section 6). Every function here that moves capacity locks
rows in one global order: Event (only while it has a capacity) -> TicketTypes
ordered by pk -> Booking(s). Two transactions that take the same rows in the
same order can only queue, never deadlock; taking a booking before its ticket
types (as a naive "load the booking, then update the counters" would) deadlocks
against a concurrent reservation. Every lock is `FOR NO KEY UPDATE`: rows are
locked to change their columns, never their keys, so the lock does not block
(or deadlock with) the foreign-key checks of inserts that reference the row
— a reservation inserting a Booking for an event another transaction locks.
Lock waits are bounded (`locking_atomic`) and
end in `Busy`. While the rows are locked only the minimal SQL runs: no network
calls, no e-mail, no per-ticket queries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bookings.limits import BuyerCheck, BuyerLimits, Usage, client_network
from bookings.models import Booking, Ticket
from bookings.selectors import booking_with_relations
from core.db import (
    PreparedQuery,
    SQLRead,
    Statement,
    execute_together,
    fetch_and_execute,
    fetch_together,
    guarded,
    insert_statement,
    locking_atomic,
    mark_saved,
    round_trips_combine,
    update_statement,
    with_ctes,
)
from core.errors import (
    Busy,
    EventNotPublished,
    HoldExpired,
    InvalidInput,
    InvalidTransition,
    LimitExceeded,
    SalesClosed,
    SoldOut,
)
from core.recent import RecentCopies
from events.models import Event, TicketType

# Reclaiming expired holds inside a reservation is bounded so a buyer never
# pays for a big backlog; the sweeper (`holds_expire`) does the rest.
RECLAIM_LIMIT = 200


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


# --- Reserve ------------------------------------------------------------------


def booking_reserve(
    *,
    event: Event,
    items: Sequence[LineItem],
    email: str = "",
    buyer: AbstractBaseUser | None = None,
    client_ip: str | None = None,
) -> Booking:
    """Hold the requested tickets until the hold expires; never oversell, never past a buyer's limits.

    One transaction: lock the event (when capped) and the requested ticket
    types, check the rules on the locked rows, reclaim expired holds of those
    types if short, then take the capacity with `F()` updates and create the
    booking and its tickets. On PostgreSQL that is two round trips: the locks
    (with the BEGIN and the lock timeout, and a fresh read of the event), then
    the writes with the COMMIT, so the hot rows stay locked for one round trip
    and the few checks in between. When this process read the ticket types in
    the last second and the event has no cap, it is one round trip
    (`_GuardedHold`), which falls back to the locked path whenever anything the
    rules read has changed. Cost does not depend on how many tickets are
    already sold: only counters are read.

    The quantities are bounded (`BOOKING_MAX_ITEMS`, `BOOKING_MAX_TICKETS`) before anything is
    built. The buyer's hoarding limits (`bookings.limits`; `client_ip` is the client's address,
    as the door gives it) are checked in the same transaction, on counts read after a lock per
    buyer and address; when no limit applies nothing more is sent.
    Returns the booking with its tickets (and no payments) attached: rendering
    it needs no query.
    """
    quantities = _merge_items(items)
    email = _booking_email(email, buyer)
    now = timezone.now()
    # Built before the rows are locked (at most BOOKING_MAX_TICKETS tickets); only the prices come
    # from the locked rows.
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
    check = BuyerCheck.plan(event=event, buyer_id=booking.buyer_id, email=email, address=booking.client_ip,
                            tickets=len(tickets), now=now)
    hold = _GuardedHold.attempt(event=event, quantities=quantities, booking=booking, tickets=tickets, now=now,
                                check=check)
    if hold.written:
        return _reserved(booking, tickets)
    event = hold.event  # fresher, when the attempt read it
    check = check.replan(event)
    locked: dict[uuid.UUID, TicketType] = {}
    try:
        with locking_atomic():
            lock, usage = check.lock_read(), check.usage_read() if check.applies else None
            event, types, first, last = _lock_inventory_and_read(
                event, quantities.keys(), fresh=True, first=[lock] if lock else [], last=[usage] if usage else [])
            locked = types
            _check_sellable(event, types, quantities, now)
            _check_buyer(check, event, Usage.from_row(last[0][0]) if last else None)
            if _shortfall(event, types, quantities):
                if _reclaim_expired_holds(event, types, now):
                    event, types = _reread(event, types)
                if _shortfall(event, types, quantities):
                    raise _sold_out(event, types, quantities)
            _set_prices(booking, tickets, event, types, quantities)
            # The rest of the locked section is one round trip: counters, booking, tickets, COMMIT.
            execute_together(
                [*_counter_updates(event=event, per_type=quantities, held=+1),
                 insert_statement([booking]), insert_statement(tickets)],
                commit=True,
            )
            mark_saved([booking, *tickets])
    finally:
        # The rows read under the locks are the next reservation's copies (`_GuardedHold`), a
        # refusal's too; kept once the locks are released.
        _RECENT_TYPES.put(locked.values())
    return _reserved(booking, tickets)


def _set_prices(booking: Booking, tickets: list[Ticket], event: Event, types: Mapping[uuid.UUID, TicketType],
                quantities: Mapping[uuid.UUID, int]) -> None:
    booking.event, booking.currency = event, event.currency
    booking.total = sum((types[pk].price * n for pk, n in quantities.items()), Decimal("0.00"))
    for ticket in tickets:
        ticket.ticket_type = types[ticket.ticket_type_id]
        ticket.price = ticket.ticket_type.price


def _reserved(booking: Booking, tickets: list[Ticket]) -> Booking:
    tickets.sort(key=lambda t: (t.ticket_type.position, t.pk))
    return booking_with_relations(booking, tickets=tickets, payments=[])


def _check_buyer(check: BuyerCheck, event: Event, usage: Usage | None) -> None:
    """The buyer's limits under the event's terms as just read (`check` counted under the copy's).

    Limits switched on since the copy would need a lock and a count this transaction did not take
    first: `Busy`, and the retry starts from the fresh event (as for a cap set meanwhile).
    """
    fresh = check.replan(event)
    if not check.counts_cover(fresh):
        raise Busy()
    if usage is not None:
        fresh.check(usage)


def _merge_items(items: Sequence[LineItem]) -> dict[uuid.UUID, int]:
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


def _booking_email(email: str, buyer: AbstractBaseUser | None) -> str:
    email = (email or "").strip()
    if not email and buyer is not None and buyer.is_authenticated:
        email = getattr(buyer, "email", "") or ""
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput(_("Enter a valid e-mail address."),
                           errors={"email": [_("Enter a valid e-mail address.")]}) from None
    return email


def _lock_inventory(event: Event, type_ids: Iterable[uuid.UUID], *,
                    fresh: bool = False) -> tuple[Event, dict[uuid.UUID, TicketType]]:
    """Lock the event (when capped) then the ticket types by pk; return fresh rows. One round trip.
    (`_lock_inventory_and_read`, without further reads.)"""
    event, types, _first, _last = _lock_inventory_and_read(event, type_ids, fresh=fresh)
    return event, types


Read = tuple[PreparedQuery | SQLRead, dict]


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
    results = fetch_together(*first, *reads, *last)
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
        event = _EventState.apply(event, results[1])
    return event, types, first_rows, last_rows


def _uncapped_reads(event: Event, ids: list[uuid.UUID]) -> list[tuple[PreparedQuery, dict]]:
    """The type locks (ids sorted), then the fresh read of an uncapped event (`_EventState`)."""
    return [(_LOCK_TYPES, {"event": event.pk, "types": ids}), (_EventState.query, {"event": event.pk})]


# The reservation's queries, compiled once (`PreparedQuery`).
_LOCK_EVENT = PreparedQuery(lambda event: Event.objects.select_for_update(no_key=True).filter(pk=event).order_by())
_LOCK_TYPES = PreparedQuery(
    lambda event, types: TicketType.objects.select_for_update(no_key=True)
    .filter(event_id=event, pk__in=types).order_by("pk")
)


class _EventState:
    """The event columns a reservation on an uncapped event must see fresh, after its type locks.

    An uncapped event's row is not locked, so the caller's copy may be stale: a concurrent
    `event_cancel` (which locks every type) or a change of dates may have committed while this
    transaction waited for the type locks. The reservation reads these columns again in the
    round trip that takes the type locks, in a statement of its own (so with a snapshot taken
    once the locks are held) and checks them before it writes. A capacity set meanwhile would
    need the event row locked after the types, against the global order, so it is refused as
    `Busy` and the retry takes the capped path; so is a change of currency (possible only
    while the event has no booking at all).
    """

    columns = ("status", "starts_at", "capacity", "currency", *BuyerLimits.event_columns)
    query = PreparedQuery(lambda event: Event.objects.filter(pk=event).order_by().values_list(*_EventState.columns))

    @classmethod
    def apply(cls, event: Event, rows: list[tuple]) -> Event:
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
    """A reservation in one round trip: the rules checked on this process's copies of the rows,
    the writes guarded in SQL by "nothing the rules read has changed, and there is room".

    It applies to an uncapped event whose requested ticket types this process read in the last
    second (`_RECENT_TYPES`; every reservation refreshes them). The rules run in Python on the
    copies (`_check_sellable`, the prices) before anything is sent. Then one simple query:
    BEGIN and the lock timeout; the type locks, returning the types (`_LOCK_TYPES`); a fresh
    read of the event (`_EventState`); the counter UPDATE, only where every column the rules
    read (`type_columns`, `_EventState.columns`) still equals the copy's and every type has
    room (the guard, a read), and the booking and ticket INSERTs, only if the guard holds;
    COMMIT. Each statement takes its snapshot when it starts, so everything after the locks
    sees what was committed while they were waited for, as in the locked path. The hot row is
    held for the server's part of one simple query, with no round trip to the client in
    between. The statements are prepared on the server once per connection
    (`core.db.prepared`, through `fetch_and_execute`).

    When nothing was written, the fresh rows that came back decide, as the locked path would
    decide on them: a rule's refusal, or `SoldOut` when short and the event has no lapsed hold
    to reclaim. Anything else (a copy out of date, a cap or a currency set meanwhile, lapsed
    holds) goes on to the locked path, which starts afresh: every refusal is the one the
    locked path gives on the same rows.
    """

    written: bool
    event: Event  # the freshest copy this attempt has: the locked path starts from it

    # Every column `_check_sellable` and the prices read from a ticket type, beyond its keys
    # (bookings/tests/test_services.py checks the list against what they read).
    type_columns = ("price", "max_per_booking", "sales_start", "sales_end")

    @classmethod
    def attempt(cls, *, event: Event, quantities: Mapping[uuid.UUID, int], booking: Booking,
                tickets: list[Ticket], now: datetime, check: BuyerCheck) -> _GuardedHold:
        copies = {pk: _RECENT_TYPES.get(pk) for pk in quantities}
        if event.capacity is not None or not round_trips_combine() or any(
                tt is None or tt.event_id != event.pk for tt in copies.values()):
            return cls(False, event)
        try:
            _check_sellable(event, copies, quantities, now)
        except (EventNotPublished, SalesClosed, LimitExceeded):
            return cls(False, event)  # refused on the locked path, from fresh rows
        _set_prices(booking, tickets, event, copies, quantities)
        ids = sorted(quantities)
        lock = check.lock_read()  # the buyer's and the address's locks, first, in a statement of their own
        with locking_atomic():
            results, [(written, lapsed_holds, *usage)], _committed = fetch_and_execute(
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
            _check_sellable(latest, types, quantities, now)
            fresh = check.replan(latest)
            if fresh.applies and not (usage and check.counts_cover(fresh)):
                return cls(False, latest)  # the locked path locks and counts what the event's limits need
            if usage:
                fresh.check(Usage.from_row(tuple(usage)))
            if _shortfall(latest, types, quantities) and not lapsed_holds:
                raise _sold_out(latest, types, quantities)
        return cls(False, latest)

    @classmethod
    def _writes(cls, event: Event, copies: Mapping[uuid.UUID, TicketType], quantities: Mapping[uuid.UUID, int],
                booking: Booking, tickets: list[Ticket], now: datetime, check: BuyerCheck) -> Statement:
        """The guard (`w0`, a read), the writes of the locked path only if it holds, and the outcome.

        When a buyer's limit applies, the guard also holds only while the buyer's and the address's
        counts (`check.usage_statement()`, as `u`) are within the limits, and returns them.
        """
        ids = sorted(quantities)
        per_type = [value for pk in ids
                    for value in (pk, quantities[pk], *(getattr(copies[pk], c) for c in cls.type_columns))]
        event_state = [getattr(event, c) for c in _EventState.columns]
        [counters] = _counter_updates(event=event, per_type=quantities, held=+1)  # uncapped: the types only
        guard: Statement = (cls._guard_sql(len(ids)), [len(ids), *per_type, event.pk, event.pk, *event_state])
        if check.applies:
            (usage_sql, usage_params), (within, limits) = check.usage_statement(), check.within_limits()
            guard = (f"SELECT g.ok AND {within} AS ok, {cls._USAGE_COLUMNS} "  # noqa: S608 - names and %s only
                     f"FROM ({guard[0]}) AS g CROSS JOIN ({usage_sql}) AS u", [*limits, *guard[1], *usage_params])
        return with_ctes([
            guard,
            *(guarded(write, "(SELECT ok FROM w0)")
              for write in (counters, insert_statement([booking]), insert_statement(tickets))),
            (cls._outcome_sql(check.applies), [event.pk, Booking.Status.RESERVED, now]),
        ])

    _USAGE_COLUMNS = "u.holds, u.address_holds, u.address_first_end, u.tickets"  # `Usage.from_row`

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


def _reread(event: Event, types: Mapping[uuid.UUID, TicketType]) -> tuple[Event, dict[uuid.UUID, TicketType]]:
    """Fresh copies of rows this transaction already holds locks on."""
    if event.capacity is not None:
        event = Event.objects.get(pk=event.pk)
    return event, {tt.pk: tt for tt in TicketType.objects.filter(pk__in=list(types))}


def _check_sellable(event: Event, types: Mapping[uuid.UUID, TicketType],
                    quantities: Mapping[uuid.UUID, int], now: datetime) -> None:
    if event.status != Event.Status.PUBLISHED:
        raise EventNotPublished()
    for pk, quantity in quantities.items():
        tt = types[pk]
        if tt.sales_start is not None and now < tt.sales_start:
            raise SalesClosed(_("Sales for '%(name)s' have not started yet.") % {"name": tt.name})
        if now >= (tt.sales_end or event.starts_at):
            raise SalesClosed(_("Sales for '%(name)s' are closed.") % {"name": tt.name})
        if quantity > tt.max_per_booking:
            raise LimitExceeded(
                ngettext("At most %(n)d '%(name)s' ticket per booking.",
                         "At most %(n)d '%(name)s' tickets per booking.", tt.max_per_booking)
                % {"n": tt.max_per_booking, "name": tt.name},
                errors={"items": [_("Quantity above the limit per booking.")]},
            )


def _shortfall(event: Event, types: Mapping[uuid.UUID, TicketType], quantities: Mapping[uuid.UUID, int]) -> bool:
    if any(types[pk].capacity - types[pk].sold - types[pk].held < n for pk, n in quantities.items()):
        return True
    return event.capacity is not None and event.capacity - event.sold - event.held < sum(quantities.values())


def _sold_out(event: Event, types: Mapping[uuid.UUID, TicketType], quantities: Mapping[uuid.UUID, int]) -> SoldOut:
    event_left = None if event.capacity is None else max(0, event.capacity - event.sold - event.held)
    available = {}
    for pk in quantities:
        left = types[pk].remaining
        available[str(pk)] = left if event_left is None else min(left, event_left)
    for pk, n in quantities.items():
        if types[pk].remaining < n:
            left = types[pk].remaining
            detail = (
                _("'%(name)s' is sold out.") % {"name": types[pk].name}
                if left == 0
                else ngettext("Only %(n)d '%(name)s' ticket left.", "Only %(n)d '%(name)s' tickets left.", left)
                % {"n": left, "name": types[pk].name}
            )
            break
    else:
        detail = (
            _("This event is sold out.")
            if event_left == 0
            else ngettext("Only %(n)d ticket left for this event.", "Only %(n)d tickets left for this event.",
                          event_left) % {"n": event_left}
        )
    return SoldOut(detail, available=available)


def _reclaim_expired_holds(event: Event, types: Mapping[uuid.UUID, TicketType], now: datetime) -> int:
    """Expire unswept holds on the locked types; return how many bookings were released.

    Only bookings whose held tickets are all of the locked types qualify, so no
    further ticket type is locked out of order. Bookings another transaction
    holds (a payment in flight, a sweeper) are skipped, never waited for.
    """
    booking_ids = [pk for (pk,) in _RECLAIMABLE.fetch(event=event.pk, types=list(types), now=now)]
    if booking_ids:
        _release_holds(event=event, booking_ids=booking_ids, status=Booking.Status.EXPIRED, now=now)
    return len(booking_ids)


def _reclaimable(event: uuid.UUID, types: list[uuid.UUID], now: datetime):
    held_here = Ticket.objects.filter(booking_id=OuterRef("pk"), status=Ticket.Status.HELD)
    candidates = (
        Booking.objects.filter(event_id=event, status=Booking.Status.RESERVED, expires_at__lte=now)
        .filter(Exists(held_here.filter(ticket_type_id__in=types)))
        .exclude(Exists(held_here.exclude(ticket_type_id__in=types)))
        .values("pk")[:RECLAIM_LIMIT]
    )
    return (
        Booking.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(pk__in=candidates, status=Booking.Status.RESERVED, expires_at__lte=now)
        .values_list("pk")
    )


# Every refused reservation looks for lapsed holds while it holds the lock: compiled once.
_RECLAIMABLE = PreparedQuery(_reclaimable)


# --- Counters and holds (callers hold the locks) -------------------------------


def _move_counters(*, event: Event, per_type: Mapping[uuid.UUID, int], held: int = 0, sold: int = 0) -> None:
    """Add `held * n` and `sold * n` to each ticket type's counters (n per type) and
    to the event's while it is capped. One UPDATE per table."""
    with connection.cursor() as cursor:
        for sql, params in _counter_updates(event=event, per_type=per_type, held=held, sold=sold):
            cursor.execute(sql, params)


def _counter_updates(*, event: Event, per_type: Mapping[uuid.UUID, int], held: int = 0,
                     sold: int = 0) -> list[Statement]:
    """The UPDATEs `_move_counters` runs (none when nothing moves)."""
    per_type = {pk: n for pk, n in per_type.items() if n}
    if not per_type:
        return []
    signs = {column: sign for column, sign in (("held", held), ("sold", sold)) if sign}
    statements = [_TYPE_COUNTERS.statement(
        types=list(per_type), **{column: [sign * n for n in per_type.values()] for column, sign in signs.items()},
    )]
    if event.capacity is not None:
        total = sum(per_type.values())
        statements.append(_EVENT_COUNTERS.statement(
            event=event.pk, **{column: sign * total for column, sign in signs.items()},
        ))
    return statements


def _type_counters(types: list[uuid.UUID], **deltas: list[int]) -> Statement:
    """Add `deltas[column][i]` to `column` of ticket type `types[i]`."""
    def delta(values: list[int]):
        if len(types) == 1:
            return Value(values[0])
        return Case(*[When(pk=pk, then=Value(n)) for pk, n in zip(types, values, strict=True)],
                    output_field=IntegerField())

    return update_statement(TicketType.objects.filter(pk__in=types),
                            **{column: F(column) + delta(values) for column, values in deltas.items()})


_TYPE_COUNTERS = PreparedQuery(_type_counters)
_EVENT_COUNTERS = PreparedQuery(lambda event, **deltas: update_statement(
    Event.objects.filter(pk=event), **{column: F(column) + n for column, n in deltas.items()}))


def _held_per_type(booking_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = (
        Ticket.objects.filter(booking_id__in=booking_ids, status=Ticket.Status.HELD)
        .values("ticket_type_id").annotate(n=Count("pk")).order_by()
    )
    return {row["ticket_type_id"]: row["n"] for row in rows}


def _release_holds(*, event: Event, booking_ids: Sequence[uuid.UUID], status: str, now: datetime) -> None:
    """End the holds of locked `reserved`/`processing` bookings: tickets released, capacity freed."""
    per_type = _held_per_type(booking_ids)
    Ticket.objects.filter(booking_id__in=booking_ids, status=Ticket.Status.HELD).update(status=Ticket.Status.RELEASED)
    Booking.objects.filter(pk__in=booking_ids).update(status=status, closed_at=now, updated_at=now)
    _move_counters(event=event, per_type=per_type, held=-1)


def _lock_booking(booking: Booking) -> tuple[Event, Booking]:
    """Lock a booking's event (when capped) and ticket types, then the booking itself.

    The event returned is read after the locks (`fresh`): the caller's copy may be
    seconds old (the capture task reads it before calling the gateway), and an
    uncapped event's row is not locked here, so its status and capacity are read
    again once the type locks are held. A cap set meanwhile is refused as `Busy`
    (the event's lock would come after the types'); the retry locks it first.
    """
    type_ids = Ticket.objects.filter(booking_id=booking.pk).values_list("ticket_type_id", flat=True).distinct()
    event, _types = _lock_inventory(booking.event, list(type_ids), fresh=True)
    locked = Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
    return event, locked


def _refresh(booking: Booking) -> Booking:
    """The caller's instance, updated to what was just committed."""
    booking.refresh_from_db()
    return booking


# --- State transitions -----------------------------------------------------------


def booking_cancel(*, booking: Booking) -> Booking:
    """Give up a hold (`reserved` only): its tickets are released at once.

    A hold already past its deadline ends as `expired` rather than `cancelled`.
    """
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.RESERVED:
            raise InvalidTransition(_("Only a reservation that is not yet paid can be cancelled."))
        status = Booking.Status.EXPIRED if locked.expires_at <= now else Booking.Status.CANCELLED
        _release_holds(event=event, booking_ids=[locked.pk], status=status, now=now)
    return _refresh(booking)


def booking_start_payment(*, booking: Booking) -> Booking:
    """`reserved` -> `processing`: the card is authorized, capture follows; the hold is kept.

    Locks only the booking: no counter moves. A hold past its deadline raises
    `HoldExpired` (the sweeper releases it).
    """
    with locking_atomic():
        locked = Booking.objects.select_for_update(no_key=True).get(pk=booking.pk)
        if locked.status == Booking.Status.EXPIRED or (
            locked.status == Booking.Status.RESERVED and locked.expires_at <= timezone.now()
        ):
            raise HoldExpired()
        if locked.status != Booking.Status.RESERVED:
            raise InvalidTransition(_("This booking is not awaiting payment."))
        Booking.objects.filter(pk=locked.pk).update(status=Booking.Status.PROCESSING, updated_at=timezone.now())
    return _refresh(booking)


def booking_confirm(*, booking: Booking) -> Booking:
    """`processing` -> `confirmed`: held tickets become issued, held capacity becomes sold.

    Decides on rows read after its locks were granted (`_lock_booking`): an event
    cancelled while the payment was being captured refuses the confirmation
    (`InvalidTransition`), and the caller gives the money back.
    """
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.PROCESSING:
            raise InvalidTransition(_("Only a booking being paid can be confirmed."))
        if event.status == Event.Status.CANCELLED:
            raise InvalidTransition(_("The event has been cancelled."))
        per_type = _held_per_type([locked.pk])
        Ticket.objects.filter(booking_id=locked.pk, status=Ticket.Status.HELD).update(
            status=Ticket.Status.ISSUED, issued_at=now
        )
        Booking.objects.filter(pk=locked.pk).update(status=Booking.Status.CONFIRMED, confirmed_at=now, updated_at=now)
        _move_counters(event=event, per_type=per_type, held=-1, sold=+1)
    return _refresh(booking)


def booking_fail_payment(*, booking: Booking) -> Booking:
    """`processing` -> `cancelled`: the payment failed; the hold is released."""
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.PROCESSING:
            raise InvalidTransition(_("This booking is not being paid."))
        _release_holds(event=event, booking_ids=[locked.pk], status=Booking.Status.CANCELLED, now=now)
    return _refresh(booking)


def tickets_release_sold(*, booking: Booking, tickets: Sequence[Ticket | uuid.UUID] | None = None) -> list[Ticket]:
    """Refund issued tickets of a confirmed booking: sold capacity goes back on sale.

    `tickets` defaults to every issued ticket. When none stays issued the
    booking becomes `refunded`. Returns the released tickets.
    """
    now = timezone.now()
    with locking_atomic():
        event, locked = _lock_booking(booking)
        if locked.status != Booking.Status.CONFIRMED:
            raise InvalidTransition(_("Only tickets of a confirmed booking can be refunded."))
        issued = Ticket.objects.filter(booking_id=locked.pk, status=Ticket.Status.ISSUED)
        if tickets is not None:
            wanted = {t.pk if isinstance(t, Ticket) else uuid.UUID(str(t)) for t in tickets}
            if not wanted:
                message = _("Choose at least one ticket.")
                raise InvalidInput(message, errors={"tickets": [message]})
            issued = issued.filter(pk__in=wanted)
            if issued.count() != len(wanted):
                raise InvalidTransition(_("Only issued tickets of this booking can be refunded."))
        released = list(issued)
        if not released:
            raise InvalidTransition(_("This booking has no issued tickets."))
        per_type: dict[uuid.UUID, int] = {}
        for ticket in released:
            per_type[ticket.ticket_type_id] = per_type.get(ticket.ticket_type_id, 0) + 1
        Ticket.objects.filter(pk__in=[t.pk for t in released]).update(status=Ticket.Status.REFUNDED)
        _move_counters(event=event, per_type=per_type, sold=-1)
        if not Ticket.objects.filter(booking_id=locked.pk, status=Ticket.Status.ISSUED).exists():
            Booking.objects.filter(pk=locked.pk).update(status=Booking.Status.REFUNDED, updated_at=now)
    _refresh(booking)
    for ticket in released:
        ticket.status = Ticket.Status.REFUNDED
    return released


# --- Expiry ----------------------------------------------------------------------


def holds_expire(*, batch_size: int | None = None, max_batches: int = 50) -> int:
    """Release every hold past its deadline; return how many bookings expired.

    Works in small batches, one short transaction per event and batch, so
    buyers never wait long behind it. Bookings locked elsewhere are skipped
    (`skip_locked`), so several workers can sweep at once: each booking is
    expired exactly once, and a skipped one is taken by a later run.
    """
    batch_size = batch_size or settings.HOLDS_EXPIRE_BATCH
    expired = 0
    for _batch in range(max_batches):
        now = timezone.now()
        rows = list(
            Booking.objects.filter(status=Booking.Status.RESERVED, expires_at__lte=now)
            .order_by("expires_at").values_list("pk", "event_id")[:batch_size]
        )
        if not rows:
            break
        by_event: dict[uuid.UUID, list[uuid.UUID]] = {}
        for pk, event_id in rows:
            by_event.setdefault(event_id, []).append(pk)
        done = 0
        for event_id, booking_ids in by_event.items():
            try:
                done += _expire_bookings(event_id, booking_ids, now)
            except Busy:
                continue  # a hot row stayed locked: a later run takes these
        expired += done
        if done == 0:
            break
    return expired


def _expire_bookings(event_id: uuid.UUID, booking_ids: list[uuid.UUID], now: datetime) -> int:
    with locking_atomic():
        type_ids = list(
            Ticket.objects.filter(booking_id__in=booking_ids, status=Ticket.Status.HELD)
            .values_list("ticket_type_id", flat=True).distinct()
        )
        if not type_ids:
            return 0  # released since they were listed (another sweeper, a cancel): nothing to lock
        event, _types = _lock_inventory(Event.objects.get(pk=event_id), type_ids, fresh=True)
        locked_ids = list(
            Booking.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk__in=booking_ids, status=Booking.Status.RESERVED, expires_at__lte=now)
            .values_list("pk", flat=True)
        )
        if locked_ids:
            _release_holds(event=event, booking_ids=locked_ids, status=Booking.Status.EXPIRED, now=now)
    return len(locked_ids)


# --- Event cancellation ------------------------------------------------------------


def event_cancel(*, event: Event) -> list[uuid.UUID]:
    """Cancel an event: no more sales, every hold released at once.

    Locks the event and all its ticket types first, so no reservation can slip
    in. Returns the ids of confirmed bookings, which must be refunded (the
    payments app queues those refunds). A booking whose payment is in flight
    cannot be confirmed any more (`booking_confirm` refuses), so its capture
    fails and releases it.
    """
    now = timezone.now()
    with locking_atomic():
        locked = Event.objects.select_for_update(no_key=True).get(pk=event.pk)
        if locked.status == Event.Status.CANCELLED:
            raise InvalidTransition(_("The event is already cancelled."))
        list(TicketType.objects.select_for_update(no_key=True).filter(event_id=locked.pk).order_by("pk").values_list("pk"))
        Event.objects.filter(pk=locked.pk).update(status=Event.Status.CANCELLED, cancelled_at=now, updated_at=now)
        hold_ids = list(
            Booking.objects.select_for_update(no_key=True)
            .filter(event_id=locked.pk, status=Booking.Status.RESERVED).values_list("pk", flat=True)
        )
        if hold_ids:
            _release_holds(event=locked, booking_ids=hold_ids, status=Booking.Status.CANCELLED, now=now)
        confirmed = list(
            Booking.objects.filter(event_id=locked.pk, status=Booking.Status.CONFIRMED).values_list("pk", flat=True)
        )
    event.refresh_from_db()
    return confirmed


# --- Inventory repair -----------------------------------------------------------------


def inventory_repair(*, event_ids: Sequence[uuid.UUID]) -> None:
    """Set the counters of these events and their ticket types to what their ticket rows say.

    Takes the same locks as a reservation (event, then its types by pk), so
    nothing moves while it counts. The CHECK constraints still apply: rows
    that exceed a capacity cannot be "repaired" into an oversold counter.
    """
    from bookings.selectors import ticket_counts

    for event_id in event_ids:
        with locking_atomic():
            event = Event.objects.select_for_update(no_key=True).get(pk=event_id)
            types = list(TicketType.objects.select_for_update(no_key=True).filter(event_id=event_id).order_by("pk"))
            counts = ticket_counts(event_ids=[event_id])
            total_held = total_sold = 0
            for tt in types:
                held, sold = counts.get(tt.pk, (0, 0))
                total_held, total_sold = total_held + held, total_sold + sold
                if (tt.held, tt.sold) != (held, sold):
                    TicketType.objects.filter(pk=tt.pk).update(held=held, sold=sold)
            if event.capacity is None:
                total_held = total_sold = 0
            if (event.held, event.sold) != (total_held, total_sold):
                Event.objects.filter(pk=event_id).update(held=total_held, sold=total_sold)
