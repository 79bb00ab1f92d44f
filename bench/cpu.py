"""CPU cost of one request, in-process: the quick loop for working on the hot path.

    .venv/bin/python bench/cpu.py                    # reserve vs ceiling, CPU ms per request
    .venv/bin/python bench/cpu.py --profile reserve  # plus the top functions (cProfile)

No HTTP server and no concurrency: the bench settings' WSGI application is called
directly with a prepared request, in blocks alternating between the kinds, and the
process's CPU time (`time.process_time`) per request is the median over the blocks.
That is the server's share of a request (Django, DRF, the project's code, psycopg
and redis on the client side), without the database server's CPU or any waiting.
It also counts the Python function calls per request, a figure that does not move
with the machine's speed: this machine's speed changes by up to 2x from one minute
to the next (other tenants), so compare CPU ms within one run and calls across runs.
The full `bench/run.py` measures the whole machine under load; this shows where a
worker's CPU goes, in about 20 seconds.

Uses its own database `bench_cpu` (dropped and created again) and Redis db 12.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench"))]

from bench import infra  # noqa: E402

DB_NAME = "bench_cpu"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/12"


def _setup_environment() -> None:
    env = infra.bench_env()
    env.update(DATABASE_URL=DATABASE_URL, REDIS_URL=REDIS_URL)
    os.environ.update(env)
    import psycopg
    import redis

    with psycopg.connect(infra.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    redis.Redis.from_url(REDIS_URL).flushdb()


def _environ(method: str, path: str, query: str, token: str, body: bytes = b"") -> dict:
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8765", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8765", "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "HTTP_ACCEPT": "application/json",
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }


def _python_calls(request, count: int) -> int:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        request()
    profiler.disable()
    return round(pstats.Stats(profiler).total_calls / count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per kind (2000)")
    parser.add_argument("--profile", choices=["reserve", "ceiling"], help="print the top functions of one kind")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)

    _setup_environment()
    import django

    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)

    from bench import seed

    app = get_wsgi_application()
    [token] = seed.buyers(1)
    event, ticket_type = seed.on_sale(capacity=10_000_000, label="cpu")
    reserve_body = json.dumps({"event": str(event.pk),
                               "items": [{"ticket_type": str(ticket_type.pk), "quantity": 1}]}).encode()
    kinds = {
        "reserve": lambda: _environ("POST", "/api/v1/bookings/", "", token, reserve_body),
        "ceiling": lambda: _environ("GET", "/bench/ceiling/", f"tt={ticket_type.pk}", token),
    }
    expected = {"reserve": "201", "ceiling": "200"}

    def call(kind: str) -> None:
        statuses = []
        body = b"".join(app(kinds[kind](), lambda status, headers, exc_info=None: statuses.append(status)))
        if not statuses[0].startswith(expected[kind]):
            raise SystemExit(f"{kind}: {statuses[0]} {body[:300]!r}")

    for kind in kinds:  # warm up: connections, caches, compiled statements
        for _ in range(50):
            call(kind)
    # Interleaved blocks, median per kind: steadier than one long run on a shared machine.
    blocks = 10
    figures: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
    for _block in range(blocks):
        for kind in kinds:
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.requests // blocks):
                call(kind)
            per = args.requests // blocks
            figures[kind].append(((time.process_time() - cpu) * 1000 / per, (time.perf_counter() - wall) * 1000 / per))
    calls = {kind: _python_calls(lambda kind=kind: call(kind), 200) for kind in kinds}
    print(f"{'request':<10} {'CPU ms':>8} {'wall ms':>8} {'calls':>8}   "
          f"(median of {blocks} interleaved blocks; calls: Python function calls per request)")
    for kind, rows in figures.items():
        print(f"{kind:<10} {statistics.median(r[0] for r in rows):>8.3f} {statistics.median(r[1] for r in rows):>8.3f}"
              f" {calls[kind]:>8,}")
    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(args.requests):
            call(args.profile)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
        pstats.Stats(profiler).sort_stats("cumtime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
