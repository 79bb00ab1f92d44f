"""A storm on the last seats, over real HTTP: Django's threaded live server, one thread and one
database connection per request, against PostgreSQL.

300 reservations of 1 ticket from 24 client threads for 20 buyers, on a ticket
type with 50 seats: exactly 50 holds are taken, every other request is a 409
`sold_out`, and the counters equal the ticket rows (`check_inventory` is clean).

Throttling and the hoarding limits are off (as in the bench's load test). The lock
timeout is raised so a slow, shared machine cannot turn a queue on the hot row
into `Busy` (503): every 503 would then be a real fault (a deadlock). Requests
carry `X-Forwarded-Proto: https`, as from a TLS proxy the settings trust
(DJANGO_SECURE_PROXY_SSL_HEADER=true): the live server is shared by the session
and may have been started before the tests switched off the HTTPS redirect.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core.management import call_command

from bookings.models import Booking, Ticket
from bookings.selectors import inventory_mismatches
from bookings.tests.conftest import assert_bookings_match_tickets, assert_inventory_consistent
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REQUESTS, CLIENT_THREADS, BUYERS, SEATS = 300, 24, 20, 50
TIMEOUT = 60  # seconds per request; a hang fails the test instead of blocking it


def post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - an http:// URL of the test's own server
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 "Authorization": f"Token {token}", "X-Forwarded-Proto": "https"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - the test's own server
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_300_reservations_for_50_seats_sell_exactly_50(live_server, settings, client_for):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": [],
                               "DEFAULT_THROTTLE_RATES": {}}
    settings.LOCK_TIMEOUT_MS = 30_000
    # A load test of the hot row, as the bench: 20 buyers from one address, no hoarding limits.
    settings.BOOKING_MAX_HOLDS_PER_BUYER = settings.BOOKING_MAX_HOLDS_PER_IP = 0
    settings.BOOKING_MAX_TICKETS_PER_BUYER = 0
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    tt = TicketTypeFactory(event=EventFactory(capacity=None), name="Last seats", capacity=SEATS,
                           price=Decimal("49.00"))
    tokens = [client_for(UserFactory())._credentials["HTTP_AUTHORIZATION"].removeprefix("Token ")
              for _ in range(BUYERS)]
    url = f"{live_server.url}/api/v1/bookings/"
    body = {"event": str(tt.event_id), "items": [{"ticket_type": str(tt.pk), "quantity": 1}]}

    with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
        answers = list(pool.map(lambda i: post_json(url, body, tokens[i % BUYERS]), range(REQUESTS)))

    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: SEATS, 409: REQUESTS - SEATS}, (statuses, [a for a in answers if a[0] >= 500][:3])
    assert {answer["code"] for status, answer in answers if status == 409} == {"sold_out"}
    created = [answer for status, answer in answers if status == 201]
    assert all(a["status"] == "reserved" and len(a["tickets"]) == 1 for a in created)
    assert len({a["id"] for a in created}) == SEATS

    tt = TicketType.objects.get(pk=tt.pk)
    rows = Ticket.objects.filter(ticket_type=tt)
    assert (tt.held, tt.sold) == (SEATS, 0)
    assert rows.count() == rows.filter(status=Ticket.Status.HELD).count() == SEATS
    assert Booking.objects.filter(event_id=tt.event_id, status=Booking.Status.RESERVED).count() == SEATS
    assert inventory_mismatches() == []
    assert_inventory_consistent()
    assert_bookings_match_tickets()
    call_command("check_inventory")  # raises CommandError on any mismatch
