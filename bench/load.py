"""HTTP load: closed-loop asyncio clients, one API token and one keep-alive connection per client.

Every scenario is a set of client coroutines on one event loop (transports in
bench/clients.py); each request is timed from just before it is sent to its last
byte, so latencies include the queueing in gunicorn's listen backlog (and, when
the load generator's own CPU runs short, in its event loop: see the CPU figures
recorded next to each run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

try:
    import uvloop
except ImportError:  # the bench still runs on asyncio's own loop
    uvloop = None

from bench.clients import TRANSPORT_ERRORS, Transport, connections
from bench.stats import latency_summary

MAX_ERRORS_IN_ROW = 100  # a client that only gets errors gives up instead of spinning


def event_loop_name() -> str:
    return "uvloop" if uvloop is not None else "asyncio"


def run(coroutine: Awaitable):
    """Run the load on uvloop when it is installed (bench/requirements.txt): the load generator shares
    the machine with the server, and uvloop's event loop costs it less CPU per request than asyncio's."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop is not None else None) as runner:
        return runner.run(coroutine)


@dataclass(slots=True)
class Sample:
    start: float
    end: float
    status: int  # 0: no response (connection error, timeout)
    code: str  # the problem body's `code` of an error response, or the exception class
    quantity: int = 0

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def sold_out(self) -> bool:
        return self.status == 409 and self.code == "sold_out"


@dataclass(frozen=True)
class Target:
    """Where the load goes: the server, the on-sale and the buyers' tokens."""

    base_url: str
    event_id: str
    ticket_type_id: str
    tokens: list[str]
    client: str = "raw"  # bench/clients.py: "raw" or "httpx"


def _error_code(body: bytes) -> str:
    try:
        return str(json.loads(body).get("code", ""))
    except (ValueError, AttributeError):
        return "non-json"


async def _send(http: Transport, method: str, path: str, *, token: str | None = None,
                payload: dict | None = None, quantity: int = 0) -> Sample:
    headers = {"Authorization": f"Token {token}"} if token else {}
    body = json.dumps(payload).encode() if payload is not None else None
    start = time.perf_counter()
    try:
        status, content = await http.request(method, path, headers, body)
    except TRANSPORT_ERRORS as exc:
        return Sample(start, time.perf_counter(), 0, type(exc).__name__, quantity)
    end = time.perf_counter()
    return Sample(start, end, status, _error_code(content) if status >= 400 else "", quantity)


def _reserve(http: Transport, target: Target, token: str, quantity: int) -> Awaitable[Sample]:
    body = {"event": target.event_id, "items": [{"ticket_type": target.ticket_type_id, "quantity": quantity}],
            "email": "buyer@example.com"}
    return _send(http, "POST", "/api/v1/bookings/", token=token, payload=body, quantity=quantity)


async def _clients(target: Target, client: Callable[[Transport, int], Awaitable[list[Sample]]]) -> list[Sample]:
    """Run one coroutine per token, each with its own transport; all their samples."""
    count = len(target.tokens)
    async with connections(target.client, target.base_url, count) as transports:
        per_client = await asyncio.gather(*(client(transports[i], i) for i in range(count)))
    return [s for samples in per_client for s in samples]


def _errors(samples: list[Sample], expected: Callable[[Sample], bool]) -> dict[str, int]:
    return dict(Counter(f"{s.status} {s.code}".strip() for s in samples if not expected(s)))


# --- Hot on-sale ------------------------------------------------------------------------------------


async def _buyer(http: Transport, target: Target, token: str, rng: random.Random,
                 deadline: float) -> list[Sample]:
    """Reserve 1-2 tickets at a time until sold out; once 2 is refused, ask for 1 until that is refused."""
    samples: list[Sample] = []
    most, errors_in_row = 2, 0
    while time.perf_counter() < deadline and errors_in_row < MAX_ERRORS_IN_ROW:
        sample = await _reserve(http, target, token, rng.randint(1, most))
        samples.append(sample)
        if sample.status == 201:
            errors_in_row = 0
        elif sample.sold_out:
            if sample.quantity == 1:
                break
            most = 1
        else:
            errors_in_row += 1
            await asyncio.sleep(0.05 if sample.status in (0, 429, 503) else 0)
    return samples


async def _poll(http: Transport, url: str, stop: asyncio.Event) -> list[Sample]:
    samples = []
    while not stop.is_set():
        samples.append(await _send(http, "GET", url))
    return samples


async def _hot(target: Target, *, poll: bool, timeout: float) -> tuple[list[list[Sample]], list[Sample]]:
    deadline = time.perf_counter() + timeout
    stop = asyncio.Event()
    count = len(target.tokens)
    async with connections(target.client, target.base_url, count + 1) as transports:
        url = f"/api/v1/events/{target.event_id}/availability/"
        poller = asyncio.create_task(_poll(transports[count], url, stop)) if poll else None
        per_client = await asyncio.gather(*(
            _buyer(transports[i], target, token, random.Random(i), deadline) for i, token in enumerate(target.tokens)
        ))
        stop.set()
        polls = await poller if poller else []
    return per_client, polls


def hot_onsale(target: Target, *, poll: bool = False, timeout: float = 600) -> dict:
    """N buyers race for one ticket type until it is sold out; optionally one more client polls availability."""
    per_client, polls = run(_hot(target, poll=poll, timeout=timeout))
    samples = [s for client_samples in per_client for s in client_samples]
    ok = [s for s in samples if s.status == 201]
    wall = (max(s.end for s in ok) - min(s.start for s in samples)) if ok else 0.0
    result = {
        "clients": len(target.tokens),
        "requests": len(samples),
        "reservations": len(ok),
        "tickets": sum(s.quantity for s in ok),
        "wall_s": round(wall, 3),
        "reservations_per_s": round(len(ok) / wall, 1) if wall else 0.0,
        "tickets_per_s": round(sum(s.quantity for s in ok) / wall, 1) if wall else 0.0,
        "latency_201": latency_summary([s.latency for s in ok]),
        "sold_out_409": sum(1 for s in samples if s.sold_out),
        "errors": _errors(samples, lambda s: s.status == 201 or s.sold_out),
        # Every client stopped the normal way: one ticket refused as sold out.
        "completed": all(c and c[-1].sold_out and c[-1].quantity == 1 for c in per_client),
    }
    if poll:
        result["availability"] = {"requests": len(polls), "latency": latency_summary([s.latency for s in polls]),
                                  "errors": _errors(polls, lambda s: s.status == 200)}
    return result


# --- Framework ceiling ---------------------------------------------------------------------------------


def ceiling(target: Target, *, duration: float) -> dict:
    """N clients request `/bench/ceiling/` (token auth + one query) for `duration` seconds."""

    async def client(http: Transport, i: int) -> list[Sample]:
        samples, deadline = [], time.perf_counter() + duration
        while time.perf_counter() < deadline:
            samples.append(await _send(http, "GET", f"/bench/ceiling/?tt={target.ticket_type_id}",
                                       token=target.tokens[i]))
        return samples

    samples = run(_clients(target, client))
    ok = [s for s in samples if s.status == 200]
    wall = max(s.end for s in samples) - min(s.start for s in samples)
    return {
        "clients": len(target.tokens),
        "requests": len(samples),
        "requests_per_s": round(len(ok) / wall, 1) if wall else 0.0,
        "latency": latency_summary([s.latency for s in ok]),
        "errors": _errors(samples, lambda s: s.status == 200),
    }


# --- Sold-out storm -------------------------------------------------------------------------------------


def sold_out_storm(target: Target, *, requests: int) -> dict:
    """`requests` reservations of one ticket against a sold-out type, shared by N clients: all must be 409."""
    left = [requests]

    async def client(http: Transport, i: int) -> list[Sample]:
        samples = []
        while left[0] > 0:
            left[0] -= 1
            samples.append(await _reserve(http, target, target.tokens[i], 1))
        return samples

    samples = run(_clients(target, client))
    wall = max(s.end for s in samples) - min(s.start for s in samples)
    statuses = Counter(f"{s.status} {s.code}".strip() for s in samples)
    return {
        "clients": len(target.tokens),
        "requests": len(samples),
        "rejections_per_s": round(len(samples) / wall, 1) if wall else 0.0,
        "latency": latency_summary([s.latency for s in samples]),
        "statuses": dict(statuses),
        "all_409_sold_out": statuses.get("409 sold_out", 0) == len(samples),
        "server_errors": sum(1 for s in samples if s.status >= 500 or s.status == 0),
    }


# --- Sequential reservations ------------------------------------------------------------------------------


def sequential(target: Target, *, count: int) -> list[Sample]:
    """`count` one-ticket reservations, one after the other, by one client."""

    async def client(http: Transport, _i: int) -> list[Sample]:
        return [await _reserve(http, target, target.tokens[0], 1) for _n in range(count)]

    return run(_clients(dataclasses.replace(target, tokens=target.tokens[:1]), client))


def warm_up(target: Target, *, seconds: float = 2.0) -> None:
    """Bring every worker up (imports, database connection, token cache) before anything is measured."""
    ceiling(target, duration=seconds)
