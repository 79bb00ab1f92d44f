"""Hoarding limits of a reservation (issue 15, item 6), enforced by `bookings.services.booking_reserve`.

Per event: active holds per buyer, active holds per client address, tickets per buyer over all
their bookings. A buyer is the account, or for a guest the e-mail address (case-insensitive); an
active hold is a `reserved` booking whose deadline has not passed; a buyer's tickets are those
held or issued (bookings reserved, processing or confirmed). Each limit is the event's own
(`Event.max_holds_per_buyer`, `max_holds_per_ip`, `max_tickets_per_buyer`) or, when that is empty,
the setting (`BOOKING_MAX_HOLDS_PER_BUYER`, ...); 0 turns it off.

The rules are here, in Python (`BuyerCheck.check`). What they count is read by one SQL query in
the reservation's own transaction, on PostgreSQL after a transaction-level advisory lock per
buyer and event and per address and event (`BuyerCheck.lock_read`), sent as a statement of its
own before the row locks: parallel reservations of one buyer queue on it, and every later
statement of the transaction (READ COMMITTED: a snapshot per statement) sees what the previous
one committed, so a bot's parallel requests cannot all count the same holds. No other
transaction takes these locks, and every reservation takes them first (buyer, then address, each
in its own key space), so they add no deadlock; their wait is bounded by the lock timeout like
any other (`Busy`). On SQLite the IMMEDIATE transaction serializes every writer anyway.

On the one round trip path (`_GuardedHold`) the counts go into the guard of the writes, with the
limits as values: nothing is written unless they hold, and the counts come back for the refusal.
When no limit applies (all off, or only the address limit and no address known) nothing is sent:
the reservation's SQL is what it was without them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from bookings.models import LIVE_STATUSES, Booking, Ticket
from core.db import SQLRead, Statement
from core.errors import AddressHoldLimitReached, HoldLimitReached, TicketLimitReached
from events.models import Event

# Advisory lock key spaces (the first key of `pg_advisory_xact_lock(int, int)`): one per kind, so a
# buyer's key never equals an address's, and the order "buyer, then address" is a real order.
_BUYER_LOCKS, _ADDRESS_LOCKS = 0x74627579, 0x74697061  # "tbuy", "tipa"


def client_network(ip: str | None) -> str | None:
    """The address the per-address limit counts: an IPv4 address as it is (also one written as
    IPv6, `::ffff:a.b.c.d`), an IPv6 address as its /64 network, which one customer usually has
    whole; None for none."""
    if not ip:
        return None
    address = ipaddress.ip_address(ip.strip())  # ValueError: not an address (a door's bug)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address)
    return str(address)


@dataclass(frozen=True)
class BuyerLimits:
    """The limits that apply to an event's reservations; None: no limit."""

    holds_per_buyer: int | None
    holds_per_ip: int | None
    tickets_per_buyer: int | None

    # The event columns they are read from (the one round trip compares them with its copy's).
    event_columns = ("max_holds_per_buyer", "max_holds_per_ip", "max_tickets_per_buyer")

    @classmethod
    def of(cls, event: Event) -> BuyerLimits:
        def pick(override: int | None, default: int) -> int | None:
            value = default if override is None else override
            return value if value and value > 0 else None

        return cls(
            holds_per_buyer=pick(event.max_holds_per_buyer, settings.BOOKING_MAX_HOLDS_PER_BUYER),
            holds_per_ip=pick(event.max_holds_per_ip, settings.BOOKING_MAX_HOLDS_PER_IP),
            tickets_per_buyer=pick(event.max_tickets_per_buyer, settings.BOOKING_MAX_TICKETS_PER_BUYER),
        )


@dataclass(frozen=True)
class Usage:
    """What a buyer and an address have of an event now (None: not counted)."""

    holds: int | None = None
    address_holds: int | None = None
    address_first_end: datetime | None = None  # when the address's first active hold ends
    tickets: int | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Usage:
        holds, address_holds, first_end, tickets = row
        if isinstance(first_end, str):  # SQLite
            first_end = parse_datetime(first_end)
            if first_end is not None and first_end.tzinfo is None:
                first_end = first_end.replace(tzinfo=UTC)
        return cls(holds, address_holds, first_end, tickets)


@dataclass(frozen=True)
class _Shape:
    """Which counts one query makes: the SQL text depends on nothing else."""

    account: bool
    holds: bool
    address: bool
    tickets: bool


@dataclass(frozen=True)
class BuyerCheck:
    """One reservation's hoarding limits: what to lock and count, and the refusal."""

    event_id: uuid.UUID
    limits: BuyerLimits
    buyer_id: int | None  # an account, or else:
    email: str  # a guest's address, lower case
    address: str | None  # `client_network`
    tickets: int  # this reservation's
    now: datetime

    @classmethod
    def plan(cls, *, event: Event, buyer_id: int | None, email: str, address: str | None, tickets: int,
             now: datetime) -> BuyerCheck:
        return cls(event.pk, BuyerLimits.of(event), buyer_id, "" if buyer_id is not None else email.lower(),
                   address, tickets, now)

    def replan(self, event: Event) -> BuyerCheck:
        """The same reservation under the event's limits as just read."""
        return BuyerCheck(self.event_id, BuyerLimits.of(event), self.buyer_id, self.email, self.address,
                          self.tickets, self.now)

    @cached_property
    def _shape(self) -> _Shape:
        return _Shape(
            account=self.buyer_id is not None,
            holds=self.limits.holds_per_buyer is not None,
            address=self.limits.holds_per_ip is not None and self.address is not None,
            tickets=self.limits.tickets_per_buyer is not None,
        )

    @property
    def applies(self) -> bool:
        """Whether anything is counted (and locked) at all."""
        shape = self._shape
        return shape.holds or shape.address or shape.tickets

    def counts_cover(self, other: BuyerCheck) -> bool:
        """Whether this check counts (and locks) everything `other` needs."""
        mine, theirs = self._shape, other._shape
        return all(getattr(mine, kind) or not getattr(theirs, kind) for kind in ("holds", "address", "tickets"))

    # --- SQL -----------------------------------------------------------------------------------

    def lock_read(self) -> tuple[SQLRead, dict[str, Any]] | None:
        """The advisory locks (PostgreSQL), a statement of its own before every other lock."""
        if connection.vendor != "postgresql" or not self.applies:
            return None
        shape = self._shape
        keys = []
        if shape.holds or shape.tickets:
            who = f"u{self.buyer_id}" if self.buyer_id is not None else f"e{self.email}"
            keys += [_BUYER_LOCKS, _lock_key(f"{self.event_id}:{who}")]
        if shape.address:
            keys += [_ADDRESS_LOCKS, _lock_key(f"{self.event_id}:{self.address}")]
        return _LOCK_READS[len(keys) // 2], {"params": keys}

    def usage_statement(self) -> Statement:
        """SELECT of the counts (`Usage`): one row, four columns."""
        shape = self._shape
        booking = Booking._meta
        event = booking.get_field("event").get_db_prep_value(self.event_id, connection)
        now = booking.get_field("expires_at").get_db_prep_value(self.now, connection)
        who = [self.buyer_id] if shape.account else [self.email]
        params: list[Any] = []
        if shape.holds:
            params += [*who, event, now]
        if shape.address:
            address = booking.get_field("client_ip").get_db_prep_value(self.address, connection)
            params += [address, event, now] * 2
        if shape.tickets:
            params += [*who, event, now]
        return _usage_sql(shape, connection.vendor), params

    def usage_read(self) -> tuple[SQLRead, dict[str, Any]]:
        sql, params = self.usage_statement()
        return SQLRead(sql), {"params": params}

    def within_limits(self) -> Statement:
        """A condition on the columns of `usage_statement` (as `u`): every limit holds."""
        shape, limits = self._shape, self.limits
        conditions, params = [], []
        if shape.holds:
            conditions.append("u.holds < %s")
            params.append(limits.holds_per_buyer)
        if shape.address:
            conditions.append("u.address_holds < %s")
            params.append(limits.holds_per_ip)
        if shape.tickets:
            conditions.append("u.tickets + %s <= %s")
            params += [self.tickets, limits.tickets_per_buyer]
        return " AND ".join(conditions) or "TRUE", params

    # --- The rule ------------------------------------------------------------------------------

    def check(self, usage: Usage) -> None:
        """Refuse a reservation that would take the buyer or the address past a limit (in this
        order: the buyer's holds, the buyer's tickets, the address's holds)."""
        limits = self.limits
        if limits.holds_per_buyer is not None and usage.holds is not None and usage.holds >= limits.holds_per_buyer:
            raise HoldLimitReached(
                ngettext("You already have %(n)d reservation for this event awaiting payment; "
                         "pay for it or cancel it first.",
                         "You already have %(n)d reservations for this event awaiting payment; "
                         "pay for or cancel one of them first.", usage.holds) % {"n": usage.holds},
                limit=limits.holds_per_buyer,
            )
        if limits.tickets_per_buyer is not None and usage.tickets is not None \
                and usage.tickets + self.tickets > limits.tickets_per_buyer:
            left = max(0, limits.tickets_per_buyer - usage.tickets)
            most = ngettext("One buyer may have at most %(limit)d ticket for this event.",
                            "One buyer may have at most %(limit)d tickets for this event.",
                            limits.tickets_per_buyer) % {"limit": limits.tickets_per_buyer}
            more = ngettext("You can reserve %(n)d more.", "You can reserve %(n)d more.", left) % {"n": left} \
                if left else _("You have reached it.")
            raise TicketLimitReached(f"{most} {more}", limit=limits.tickets_per_buyer, remaining=left)
        if limits.holds_per_ip is not None and usage.address_holds is not None \
                and usage.address_holds >= limits.holds_per_ip:
            first_end = usage.address_first_end
            wait = int((first_end - self.now).total_seconds()) + 1 if first_end is not None else None
            raise AddressHoldLimitReached(retry_after=wait, limit=limits.holds_per_ip)


def _lock_key(text: str) -> int:
    """A 32-bit signed key for `pg_advisory_xact_lock(int, int)`; a collision only makes two
    buyers queue behind each other."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big", signed=True)


_LOCK_READS = {
    n: SQLRead("SELECT " + ", ".join(["pg_advisory_xact_lock(CAST(%s AS integer), CAST(%s AS integer))"] * n))
    for n in (1, 2)
}


@cache
def _usage_sql(shape: _Shape, vendor: str) -> str:
    """Counts over the indexes of `Booking` made for them: an account's bookings through
    `booking_buyer_created_idx`, a guest's through `booking_guest_email_event_idx`, an address's
    live holds through `booking_ip_holds_idx`. Statuses are written into the SQL (not bound), so
    the planner can match the partial indexes' conditions with a generic plan. Names come from the
    models; every value is a bound parameter."""
    q = connection.ops.quote_name
    b, t = Booking._meta, Ticket._meta

    def column(meta, alias: str, name: str) -> str:
        return f"{alias}.{q(meta.get_field(name).column)}"

    def literals(values) -> str:
        assert all(value.isalpha() for value in values), values  # model constants, never input
        return "(" + ", ".join(f"'{value}'" for value in values) + ")"

    buyer, email, status = column(b, "b", "buyer"), column(b, "b", "email"), column(b, "b", "status")
    expires_at, ip = column(b, "b", "expires_at"), column(b, "b", "client_ip")
    live, reserved = literals(LIVE_STATUSES), literals([Booking.Status.RESERVED])
    bookings = f"{q(b.db_table)} AS b"
    of_event = f"{column(b, 'b', 'event')} = %s"
    who = f"{buyer} = %s" if shape.account else f"{buyer} IS NULL AND LOWER({email}) = LOWER(%s) AND {status} IN {live}"
    active = f"{status} IN {reserved} AND {expires_at} > %s"
    of_address = (f"FROM {bookings} WHERE {ip} = CAST(%s AS {b.get_field('client_ip').cast_db_type(connection)}) "
                  f"AND {of_event} AND {active}")
    held_or_issued = literals([Ticket.Status.HELD, Ticket.Status.ISSUED])
    tickets = (f"FROM {q(t.db_table)} AS t JOIN {bookings} ON {column(b, 'b', 'id')} = {column(t, 't', 'booking')} "
               f"WHERE {who} AND {of_event} AND {status} IN {live} AND {column(t, 't', 'status')} IN {held_or_issued} "
               f"AND ({status} NOT IN {reserved} OR {expires_at} > %s)")
    columns = {
        "holds": f"(SELECT COUNT(*) FROM {bookings} WHERE {who} AND {of_event} AND {active})"  # noqa: S608
        if shape.holds else None,
        "address_holds": f"(SELECT COUNT(*) {of_address})" if shape.address else None,
        "address_first_end": f"(SELECT MIN({expires_at}) {of_address})" if shape.address else None,
        "tickets": f"(SELECT COUNT(*) {tickets})" if shape.tickets else None,
    }
    return "SELECT " + ", ".join(f"{sql or 'NULL'} AS {name}" for name, sql in columns.items())
