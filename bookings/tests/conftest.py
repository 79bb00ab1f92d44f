"""Shared checks for booking tests: the inventory invariants of DESIGN.md section 5.

These count ticket rows with the ORM on their own, independently of
`bookings.selectors.inventory_mismatches`, so they also check the checker.
"""

from collections import Counter, defaultdict

from bookings.models import Booking, Ticket
from events.models import Event, TicketType

# Ticket statuses each booking status allows (DESIGN.md section 5).
TICKETS_BY_BOOKING_STATUS = {
    Booking.Status.RESERVED: {Ticket.Status.HELD},
    Booking.Status.PROCESSING: {Ticket.Status.HELD},
    Booking.Status.CONFIRMED: {Ticket.Status.ISSUED, Ticket.Status.REFUNDED},
    Booking.Status.REFUNDED: {Ticket.Status.REFUNDED},
    Booking.Status.EXPIRED: {Ticket.Status.RELEASED},
    Booking.Status.CANCELLED: {Ticket.Status.RELEASED},
}


def assert_inventory_consistent(*, event_ids=None) -> None:
    """Counters equal ticket rows and never exceed a capacity, for every ticket type and event.

    TicketType: `held` = its tickets `held`, `sold` = its tickets `issued`,
    `sold + held <= capacity`. Event with a capacity: `sold`/`held` = the sums
    over its tickets, `sold + held <= capacity`. Event without one: both 0.
    """
    tickets = Ticket.objects.all()
    types = TicketType.objects.all()
    events = Event.objects.all()
    if event_ids is not None:
        tickets = tickets.filter(ticket_type__event_id__in=event_ids)
        types = types.filter(event_id__in=event_ids)
        events = events.filter(pk__in=event_ids)
    rows = Counter(tickets.values_list("ticket_type__event_id", "ticket_type_id", "status"))
    problems = []
    per_event = defaultdict(lambda: [0, 0])
    for tt in types:
        held, issued = rows[(tt.event_id, tt.pk, Ticket.Status.HELD)], rows[(tt.event_id, tt.pk, Ticket.Status.ISSUED)]
        per_event[tt.event_id][0] += held
        per_event[tt.event_id][1] += issued
        if (tt.held, tt.sold) != (held, issued):
            problems.append(f"type {tt.name}: held/sold counters {tt.held}/{tt.sold}, rows {held}/{issued}")
        if tt.sold + tt.held > tt.capacity or held + issued > tt.capacity:
            problems.append(f"type {tt.name}: oversold, capacity {tt.capacity}, rows {held}+{issued}")
    for event in events:
        held, issued = per_event[event.pk]
        if event.capacity is None:
            if (event.held, event.sold) != (0, 0):
                problems.append(f"event {event.name} (no cap): counters {event.held}/{event.sold}, must be 0/0")
            continue
        if (event.held, event.sold) != (held, issued):
            problems.append(f"event {event.name}: held/sold counters {event.held}/{event.sold}, rows {held}/{issued}")
        if event.sold + event.held > event.capacity or held + issued > event.capacity:
            problems.append(f"event {event.name}: oversold, capacity {event.capacity}, rows {held}+{issued}")
    assert not problems, "inventory inconsistent:\n  " + "\n  ".join(problems)


def assert_bookings_match_tickets(*, event_ids=None) -> None:
    """Every booking's tickets are in a state its status allows; a confirmed one keeps an issued ticket."""
    bookings = Booking.objects.all()
    if event_ids is not None:
        bookings = bookings.filter(event_id__in=event_ids)
    statuses = defaultdict(Counter)
    for booking_id, booking_status, ticket_status in bookings.values_list("pk", "status", "tickets__status"):
        statuses[(booking_id, booking_status)][ticket_status] += 1
    problems = []
    for (booking_id, booking_status), found in statuses.items():
        if None in found:
            problems.append(f"booking {booking_id} ({booking_status}) has no tickets")
        elif not set(found) <= TICKETS_BY_BOOKING_STATUS[booking_status]:
            problems.append(f"booking {booking_id} ({booking_status}) has tickets {dict(found)}")
        elif booking_status == Booking.Status.CONFIRMED and not found[Ticket.Status.ISSUED]:
            problems.append(f"booking {booking_id} is confirmed without an issued ticket")
    assert not problems, "bookings disagree with their tickets:\n  " + "\n  ".join(problems)
