"""bench/reserve.sql: generated from the reservation's code (bench/reserve_sql.py), and run by pgbench."""

import shutil
import subprocess
from decimal import Decimal

import pytest
from django.db import connection

from bench import reserve_sql
from bookings.models import Booking, Ticket
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
