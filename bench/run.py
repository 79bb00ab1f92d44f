"""Benchmark of the hot on-sale on PostgreSQL + Redis: one command, writes BENCHMARKS.md.

Run from the project root (PostgreSQL on 127.0.0.1:5432 with trust auth for
`postgres`, Redis on 127.0.0.1:6379, `pgbench` on the PATH)::

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/run.py                       # the full run (about 10 min)
    .venv/bin/python bench/run.py --quick --capacity 1000 --clients 1,8,32   # about 3 min

Options: `--capacity C` tickets per hot type (5000), `--clients 1,8,32,128`,
`--quick` (3 s phases, 100,000 pre-sold tickets, smaller storms), `--out
BENCHMARKS.md`, `--port 8765` (another free port if taken), gunicorn's
`--workers 3 --worker-class sync --threads 1` (threads > 1 means gthread),
`--service-threads 1,8,32`, and the sizes of each phase (see `--help`).

Choices, measured on this 2-core machine: 3 sync gunicorn workers (3-4 sync
workers beat 6 sync and gthread 2x4, 4x2, 3x8 on both the ceiling and the
reserve run; sync workers answer `Connection: close`, which the client
handles); the load generator's HTTP client is a lean hand-written HTTP/1.1
one, because httpx.AsyncClient spends 2-6 ms of CPU per request here, a third
of the machine at 250 requests/s (bench/clients.py; `--client httpx` to
compare).

It owns its services: the database `bench_ticketing` is dropped and created
again and migrated, Redis db 13 is flushed. The server is gunicorn serving
`ticketing.wsgi` with `bench.settings` (the project's settings plus the route
`/bench/ceiling/`), throttling and the hoarding limits off, DEBUG off, persistent database connections;
it is always stopped at the end, with its workers (own process group).

What each part measures:

1. Hot on-sale over HTTP, for each N in `--clients`: a fresh event with one
   ticket type of C tickets; N asyncio clients (one API token and one
   keep-alive connection each) POST `/api/v1/bookings/` for 1-2 tickets until they
   are refused as sold out (after a refusal for 2 they ask for 1 until that is
   refused too). Reports successful reservations/s and tickets/s (201s over the
   time from the first request to the last 201), p50/p95/p99 of the 201s,
   `409 sold_out` answers, every other answer as an error, and CPU use of the
   load generator, gunicorn and PostgreSQL (all on the same machine). Then
   verifies no oversell: sold + held == C == ticket rows, and
   `manage.py check_inventory` exits 0.
2. Limits, same server, same N: the framework ceiling (`/bench/ceiling/`:
   token auth, one query, small JSON) for a fixed time, and pgbench running
   `bench/reserve.sql` (the transaction of a reservation, in the server's two
   round trips) on a separate ticket type. Ratios reserve/ceiling and
   reserve/pgbench show how much of each limit the reserve path keeps.
3. Service level: `bookings.services.booking_reserve` in N threads (own
   connection each), no HTTP, until `SoldOut`.
4. Scaling: (a) sequential reservation p50 on an empty type and on one with a
   million tickets already sold (bulk-loaded with SQL, counters consistent),
   over HTTP and at the service level; (b) availability p50/p99 polled by one
   extra client during the 32-client hot run; (c) a sold-out storm of POSTs by
   32 clients, every answer must be 409 `sold_out`; (d) `holds_expire`
   releasing thousands of lapsed holds, holds/s.
5. The SQL one POST /api/v1/bookings/ issues (Django test client).

Results: a table on stdout, `--out` (BENCHMARKS.md) with machine, versions,
settings, every figure and the project's targets, and the raw figures in
`bench/last-run.json` (for another `--out`, next to it: `<out>.json`, so trial
runs do not overwrite the figures behind BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on the path, where its modules would shadow
# top-level ones of the same name; the project root (bench + the apps) goes there instead.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() not in (ROOT, ROOT / "bench"))]

from bench import infra, load, report  # noqa: E402
from bench.clients import KINDS  # noqa: E402

DEFAULT_OUT = Path("BENCHMARKS.md")
RAW_RESULTS = ROOT / "bench" / "last-run.json"


def _csv_ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--capacity", type=int, default=5000, help="tickets of each hot ticket type (5000)")
    parser.add_argument("--clients", type=_csv_ints, default=[1, 8, 32, 128], help="HTTP clients, e.g. 1,8,32,128")
    parser.add_argument("--quick", action="store_true", help="short phases and smaller bulk data")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report file (BENCHMARKS.md)")
    parser.add_argument("--port", type=int, default=8765, help="gunicorn's port; another free one if taken")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (3)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync)")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker; > 1 means gthread (1)")
    parser.add_argument("--client", choices=KINDS, default="raw",
                        help="load generator's HTTP client: raw (lean, default) or httpx (see bench/clients.py)")
    parser.add_argument("--service-threads", type=_csv_ints, default=[1, 8, 32], help="service-level threads")
    parser.add_argument("--seconds", type=int, help="ceiling and pgbench phase length (10, quick 3)")
    parser.add_argument("--sold", type=int, help="tickets already sold for the scaling test (1,000,000, quick 100,000)")
    parser.add_argument("--sequential", type=int, default=1000, help="reservations per scaling column (1000)")
    parser.add_argument("--storm", type=int, help="POSTs of the sold-out storm (10,000, quick 2,000)")
    parser.add_argument("--holds", type=int, help="expired holds for holds_expire (20,000, quick 5,000)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.seconds = args.seconds or (3 if quick else 10)
    args.sold = args.sold or (100_000 if quick else 1_000_000)
    args.storm = args.storm or (2_000 if quick else 10_000)
    args.holds = args.holds or (5_000 if quick else 20_000)
    if not args.clients or min(args.clients) < 1:
        parser.error("--clients needs at least one positive number")
    return args


def prepare() -> None:
    print("Checking PostgreSQL and Redis; recreating bench_ticketing, flushing Redis db 13, migrating ...",
          file=sys.stderr, flush=True)
    infra.require_services()
    infra.recreate_database()
    infra.flush_redis()
    os.environ.update(infra.bench_env())
    infra.migrate()
    import django

    django.setup()


def base_results(args: argparse.Namespace, argv: list[str]) -> dict:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python bench/run.py", *argv]),
        "quick": args.quick,
        "machine": infra.machine(),
        "versions": infra.versions(),
        "settings": {
            "server": None, "port": None, "capacity": args.capacity, "clients": ",".join(map(str, args.clients)),
            "service_threads": ",".join(map(str, args.service_threads)), "phase_seconds": args.seconds,
            "load_generator": f"{load.event_loop_name()} event loop in the bench process, " + (
                "hand-written HTTP/1.1 client, one keep-alive connection per client" if args.client == "raw"
                else "httpx.AsyncClient, one keep-alive pool sized to the clients"),
            "throttling": "off (API_THROTTLE_RATES=off)",
            "hoarding_limits": "off (BOOKING_MAX_HOLDS_PER_BUYER, _PER_IP, BOOKING_MAX_TICKETS_PER_BUYER = 0)",
            "conn_max_age": infra.CONN_MAX_AGE,
            "booking_hold_minutes": infra.HOLD_MINUTES, "debug": "off",
            "database": infra.DATABASE_URL, "redis": infra.REDIS_URL,
        },
        "inventory_checks": [], "hot": [], "ceiling": [], "pgbench": [], "service": [],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    # A plain `kill` must still run the cleanups (gunicorn is stopped in a `finally`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    with infra.exclusive_run():
        prepare()
        results = base_results(args, argv)
        from bench.phases import run_phases  # imports the project's models: after django.setup()

        run_phases(args, results)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["speed_probe_ms_at_end"] = infra.speed_probe_ms()
    results["targets"] = report.targets(results)
    raw = RAW_RESULTS if args.out == DEFAULT_OUT else args.out.with_suffix(".json")
    results["raw_results"] = str(raw.relative_to(ROOT) if raw.is_relative_to(ROOT) else raw)
    raw.write_text(json.dumps(results, indent=2, default=str) + "\n")
    previous = args.out.read_text() if args.out.exists() else ""
    args.out.write_text(report.markdown(results, history=report.kept_history(previous)))
    print("\n\n".join(table.text() for table in report.tables(results)))
    print(f"\nWrote {args.out} and {results['raw_results']}; gunicorn log: {results['server_log']['path']}")
    # Slow is a finding; an oversell or a failed inventory check is a failure.
    return 0 if report.oversell_free(results) else 1


if __name__ == "__main__":
    sys.exit(main())
