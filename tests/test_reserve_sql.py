"""bench/reserve.sql: generated from the reservation's code (bench/reserve_sql.py), and run by pgbench."""

import shutil
import subprocess
from decimal import Decimal

import pytest
from django.db import connection

from bench import reserve_sql
from bookings.models import Booking, Ticket
from bookings.services import LineItem, booking_reserve
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory


@pytest.mark.django_db
def test_the_committed_script_is_what_the_reservation_code_generates():
    assert reserve_sql.SCRIPT.read_text() == reserve_sql.script(), (
        "bench/reserve.sql is out of date: DJANGO_SETTINGS_MODULE=bench.settings python -m bench.reserve_sql")


def pgbench(tt: TicketType, transactions: int) -> subprocess.CompletedProcess:
    binary = shutil.which("pgbench")
    if binary is None:
        pytest.skip("pgbench is not installed (Debian: postgresql-client)")
    db = connection.settings_dict
    cmd = reserve_sql.pgbench_command(binary, event_id=str(tt.event_id), ticket_type_id=str(tt.pk),
                                      database=db["NAME"], clients=2, limit=["-t", str(transactions)])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # pgbench's connections see committed rows only
def test_pgbench_runs_the_script_and_reserves_as_the_service_does():
    """Two clients, five reservations each: ten bookings of one held ticket at the row's price, and
    the counters equal the ticket rows; of two clients wanting the last seat twice each, one gets it."""
    tt = TicketTypeFactory(event=EventFactory(), capacity=50, price=Decimal("12.50"))

    result = pgbench(tt, 5)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Booking.objects.filter(event_id=tt.event_id, status=Booking.Status.RESERVED).count() == 10
    assert set(Ticket.objects.filter(ticket_type=tt).values_list("status", "price")) == {("held", Decimal("12.50"))}
    tt.refresh_from_db()
    assert (tt.held, tt.sold) == (10, 0)
    assert_inventory_consistent()
    assert_bookings_match_tickets()

    sold_out = TicketTypeFactory(event=EventFactory(), capacity=1)
    result = pgbench(sold_out, 2)  # two clients want two each of the only seat: one gets it
    assert result.returncode == 0, result.stdout + result.stderr
    assert Ticket.objects.filter(ticket_type=sold_out).count() == 1
    assert_inventory_consistent()


@pytest.mark.django_db(transaction=True)  # the one round trip commits in its own query: the outermost block
def test_the_script_statements_are_the_ones_a_reservation_sends(settings):
    """`holds.one_round_trip_statements`, which the script is generated from, is what the service's
    one round trip sends for a reservation of the same shape (one ticket, no limits)."""
    settings.DATABASE_PREPARED_STATEMENTS = False  # the statements as text
    settings.BOOKING_MAX_HOLDS_PER_BUYER = settings.BOOKING_MAX_HOLDS_PER_IP = 0
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 0
    tt = TicketTypeFactory(event=EventFactory(), capacity=10)
    booking_reserve(event=tt.event, items=[LineItem(tt, 1)], email="a@example.com")  # the copies, now recent
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        booking_reserve(event=tt.event, items=[LineItem(tt, 1)], email="b@example.com")

    statements, _expressions = reserve_sql.statements()
    [query] = sent
    assert query.endswith("; ".join(sql for sql, _params in statements) + "; COMMIT")
