"""Service-level measurements, in the bench process (import after `django.setup()`): no HTTP, no DRF.

Each thread has its own database connection (Django's are per thread) and
closes it when done.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.stats import latency_summary
from bookings.services import LineItem, booking_reserve, holds_expire
from core.db import statement_sql
from core.errors import DomainError, SoldOut
from events.models import Event, TicketType

EMAIL = "service@example.com"


def _reserve_one(event: Event, ticket_type: TicketType) -> tuple[float, str]:
    """One one-ticket reservation: (seconds, "" or the domain error's code)."""
    started = time.perf_counter()
    try:
        booking_reserve(event=event, items=[LineItem(ticket_type, 1)], email=EMAIL)
        outcome = ""
    except DomainError as exc:
        outcome = exc.code
    return time.perf_counter() - started, outcome


def _until_sold_out(event: Event, ticket_type: TicketType, barrier: threading.Barrier,
                    out: list[tuple[float, float, str]]) -> None:
    try:
        barrier.wait()
        while True:
            started = time.perf_counter()
            seconds, outcome = _reserve_one(event, ticket_type)
            out.append((started, seconds, outcome))
            if outcome == SoldOut.code:
                return
    finally:
        connection.close()


def reserve_threads(event: Event, ticket_type: TicketType, *, threads: int) -> dict:
    """`threads` threads call `booking_reserve` (1 ticket) in a loop until `SoldOut`."""
    barrier = threading.Barrier(threads)
    outs: list[list[tuple[float, float, str]]] = [[] for _t in range(threads)]
    # Daemon threads: an interrupted run exits instead of waiting for them.
    workers = [threading.Thread(target=_until_sold_out, args=(event, ticket_type, barrier, outs[i]), daemon=True)
               for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    calls = [call for out in outs for call in out]
    ok = [(start, seconds) for start, seconds, outcome in calls if not outcome]
    wall = max(start + seconds for start, seconds in ok) - min(start for start, _s, _o in calls) if ok else 0.0
    return {
        "threads": threads,
        "reservations": len(ok),
        "wall_s": round(wall, 3),
        "reservations_per_s": round(len(ok) / wall, 1) if wall else 0.0,
        "latency": latency_summary([seconds for _start, seconds in ok]),
        "errors": dict(Counter(outcome for _s, _t, outcome in calls if outcome and outcome != SoldOut.code)),
    }


def reserve_sequential(event: Event, ticket_type: TicketType, *, count: int) -> list[float]:
    """Seconds of `count` one-ticket reservations in a row (failures raise: the type must have room)."""
    latencies = []
    for _n in range(count):
        seconds, outcome = _reserve_one(event, ticket_type)
        if outcome:
            raise RuntimeError(f"reservation refused during a sequential run: {outcome}")
        latencies.append(seconds)
    return latencies


def expire_all() -> dict:
    """Call `holds_expire` (its own batches) until nothing is left; holds released per second."""
    started, released, calls = time.perf_counter(), 0, 0
    while True:
        calls += 1
        done = holds_expire()
        released += done
        if not done:
            break
    seconds = time.perf_counter() - started
    return {"released": released, "calls": calls, "seconds": round(seconds, 3),
            "holds_per_s": round(released / seconds, 1) if seconds else 0.0}


def post_queries(event: Event, ticket_type: TicketType, token: str) -> dict:
    """The round trips of one POST /api/v1/bookings/ to PostgreSQL (Django test client, same settings), cold
    (token, event and ticket types not yet in this process) and warm: each captured statement as psycopg sent
    it, prepared statements written out (`statement_sql`). Django also logs "BEGIN" and "COMMIT" when it opens
    and closes its transaction; with core.postgresql those send nothing (the BEGIN travels with the first
    statement, the COMMIT with the last), so they are left out."""
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    body = {"event": str(event.pk), "items": [{"ticket_type": str(ticket_type.pk), "quantity": 1}],
            "email": "queries@example.com"}
    counts, statuses = [], []
    for _n in range(2):
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/api/v1/bookings/", body, content_type="application/json")
        sent = [statement_sql(q["sql"]) for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
        counts.append(len(sent))
        statuses.append(response.status_code)
    return {"statuses": statuses, "cold_token_cache": counts[0], "warm": counts[1],
            "statements": [[_shorten(statement) for statement in sql.split("; ")] for sql in sent]}


def _shorten(sql: str, width: int = 240) -> str:
    """One statement with its column lists elided, so what it touches and how it filters stays readable;
    a long one keeps its start and its end."""
    sql = re.sub(r"^SELECT .+? FROM ", "SELECT ... FROM ", sql)
    sql = re.sub(r"^(INSERT INTO \S+) \(.*", r"\1 (...) VALUES (...)", sql)
    return sql if len(sql) <= width else f"{sql[: width - 100]} ... {sql[-95:]}"
