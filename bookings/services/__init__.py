"""Booking use cases: reserve (`reserve`), confirm / cancel / expire (`lifecycle`), and the
counters they move (`inventory`); the business rules are in `rules`, the reservation's SQL in
`holds`.

Locking (DESIGN.md section 6). Every function here that moves capacity locks rows in one global
order: Event (only while it has a capacity) -> TicketTypes ordered by pk -> Booking(s), so two
transactions taking the same rows can only queue, never deadlock. Every lock is
`FOR NO KEY UPDATE` (columns change, keys never), so it does not block the foreign-key checks of
inserts that reference the row. Lock waits are bounded (`locking_atomic`) and end in `Busy`.
While rows are locked only the minimal SQL runs: no network calls, no e-mail, no per-ticket
queries.
"""

from bookings.services.holds import forget_recent_ticket_type
from bookings.services.inventory import RECLAIM_LIMIT, inventory_repair
from bookings.services.lifecycle import (
    booking_cancel,
    booking_confirm,
    booking_fail_payment,
    booking_start_payment,
    event_cancel,
    holds_expire,
    tickets_release_sold,
)
from bookings.services.reserve import booking_reserve
from bookings.services.rules import LineItem

__all__ = [
    "RECLAIM_LIMIT",
    "LineItem",
    "booking_cancel",
    "booking_confirm",
    "booking_fail_payment",
    "booking_reserve",
    "booking_start_payment",
    "event_cancel",
    "forget_recent_ticket_type",
    "holds_expire",
    "inventory_repair",
    "tickets_release_sold",
]
