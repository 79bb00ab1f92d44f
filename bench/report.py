"""Turning the results dict into the console tables, the targets verdict and BENCHMARKS.md."""

from __future__ import annotations

from dataclasses import dataclass

TARGET_RESERVATIONS_PER_S = 500
TARGET_P99_MS = 250
TARGET_P99_CLIENTS = 32
TARGET_CEILING_SHARE = 0.5
FLAT_RATIO = 1.25  # p50 at 1M sold within 25 % of p50 at 0 sold counts as flat (runs are noisy)


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[object]]

    def _cells(self) -> list[list[str]]:
        return [[_fmt(cell) for cell in row] for row in self.rows]

    def text(self) -> str:
        cells = self._cells()
        widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(self.headers)]

        def line(values: list[str]) -> str:
            pairs = enumerate(zip(values, widths, strict=True))
            return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in pairs)

        return "\n".join([self.title, line(self.headers), line(["-" * w for w in widths]), *map(line, cells)])

    def markdown(self) -> str:
        rows = ["| " + " | ".join(r) + " |" for r in self._cells()]
        head = ["| " + " | ".join(self.headers) + " |", "|" + "|".join(" --- " for _h in self.headers) + "|"]
        return "\n".join([*head, *rows])


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    return str(value)


def _round_trips(n: int) -> str:
    return "1 round trip" if n == 1 else f"{n} round trips"


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def _by_clients(rows: list[dict], clients: int) -> dict | None:
    return next((r for r in rows if r.get("clients") == clients), None)


def _server_ms(run: dict, rate: float | None) -> float | None:
    """gunicorn CPU milliseconds per answered request (per 201 for the hot runs)."""
    return round(run["cpu"]["server_cores"] * 1000 / rate, 1) if rate else None


# --- Tables --------------------------------------------------------------------------------------


def hot_table(results: dict) -> Table:
    rows = []
    for hot in results["hot"]:
        lat, cpu = hot["latency_201"], hot["cpu"]
        errors = _fmt(hot["errors"]) + ("" if hot["completed"] else " (clients stopped early)")
        rows.append([hot["clients"], hot["reservations_per_s"], hot["tickets_per_s"], lat["p50"], lat["p95"],
                     lat["p99"], hot["reservations"], hot["sold_out_409"], errors,
                     hot["oversell"]["ok"] and hot["check_inventory"]["ok"], cpu["loadgen_cores"],
                     cpu["server_cores"], _server_ms(hot, hot["reservations_per_s"]), cpu["db_cores"],
                     cpu["machine_busy_pct"]])
    return Table("Hot on-sale over HTTP (one ticket type, 1-2 tickets per POST, until sold out)",
                 ["clients", "reserv/s", "tickets/s", "p50 ms", "p95 ms", "p99 ms", "201s", "409 sold_out",
                  "other errors", "no oversell", "loadgen cores", "gunicorn cores", "gunicorn CPU ms/201",
                  "pg cores", "machine busy %"], rows)


def limits_table(results: dict) -> Table:
    rows = []
    for hot in results["hot"]:
        n = hot["clients"]
        ceil = _by_clients(results["ceiling"], n) or {}
        pgb = next((p for p in results["pgbench"] if p["asked"] == n), {})
        ceiling_rate, ceiling_latency = ceil.get("requests_per_s"), ceil.get("latency") or {}
        rows.append([n, hot["reservations_per_s"], ceiling_rate, ceiling_latency.get("p50"), ceiling_latency.get("p99"),
                     _server_ms(ceil, ceiling_rate) if ceil else None, _ratio(hot["reservations_per_s"], ceiling_rate),
                     pgb.get("clients"), pgb.get("tps"), _ratio(hot["reservations_per_s"], pgb.get("tps"))])
    return Table("Limits measured in the same run",
                 ["clients", "reserv/s", "ceiling req/s", "ceiling p50 ms", "ceiling p99 ms",
                  "gunicorn CPU ms/req", "reserve/ceiling", "pgbench clients", "pgbench tps", "reserve/pgbench"],
                 rows)


def service_table(results: dict) -> Table:
    rows = [[s["threads"], s["reservations_per_s"], s["latency"]["p50"], s["latency"]["p99"], s["reservations"],
             s["errors"], s["oversell"]["ok"]] for s in results["service"]]
    return Table("Service level (booking_reserve in threads, no HTTP, 1 ticket per call)",
                 ["threads", "reserv/s", "p50 ms", "p99 ms", "reservations", "errors", "no oversell"], rows)


def scaling_table(results: dict) -> Table:
    scaling = results["scaling"]
    rows = []
    for door in ("http", "service"):
        p50 = {k: v["p50"] for k, v in scaling[door].items()}
        rows.append([door, p50.get("empty_before_load"), p50.get("empty"), p50.get("full"),
                     _ratio(p50.get("full"), p50.get("empty"))])
    return Table(f"Reserve p50 (ms), sequential, 0 vs {scaling['sold']:,} tickets already sold",
                 ["door", "0 sold, before bulk load", "0 sold", f"{scaling['sold']:,} sold", "ratio"], rows)


def storm_table(results: dict) -> Table:
    storm, expire = results["sold_out_storm"], results["holds_expire"]
    avail = next((h["availability"] | {"clients": h["clients"]} for h in results["hot"] if "availability" in h), None)
    rows = [
        ["sold-out storm", f"{storm['requests']:,} POSTs, {storm['clients']} clients", storm["rejections_per_s"],
         storm["latency"]["p50"], storm["latency"]["p99"], storm["statuses"]],
        ["holds_expire", f"{expire['released']:,} holds, {expire['calls']} calls", expire["holds_per_s"], None, None,
         {"check_inventory": "ok" if expire["check_inventory"]["ok"] else "FAILED"}],
    ]
    if avail:
        rows.insert(0, ["availability during storm", f"1 poller beside {avail['clients']} buyers",
                        None, avail["latency"]["p50"], avail["latency"]["p99"], avail["errors"]])
    return Table("Other scenarios", ["scenario", "load", "per s", "p50 ms", "p99 ms", "statuses / checks"], rows)


def tables(results: dict) -> list[Table]:
    return [hot_table(results), limits_table(results), service_table(results), scaling_table(results),
            storm_table(results), targets_table(results)]


# --- Targets ------------------------------------------------------------------------------------


def _clean_checks(results: dict) -> list[bool]:
    checks = [h["oversell"]["ok"] for h in results["hot"]] + [s["oversell"]["ok"] for s in results["service"]]
    return checks + [c["ok"] for c in results["inventory_checks"]]  # hot runs' check_inventory included


def oversell_free(results: dict) -> bool:
    return all(_clean_checks(results))


def targets(results: dict) -> list[dict]:
    hot = results["hot"]
    best = max(hot, key=lambda h: h["reservations_per_s"])
    best_ceiling = max((c["requests_per_s"] for c in results["ceiling"]), default=None)
    at32 = _by_clients(hot, TARGET_P99_CLIENTS)
    p99 = at32["latency_201"]["p99"] if at32 else None
    checks = _clean_checks(results)
    scaling = results["scaling"]
    flat = {door: _ratio(scaling[door]["full"]["p50"], scaling[door]["empty"]["p50"]) for door in ("http", "service")}
    share = _ratio(best["reservations_per_s"], best_ceiling)
    return [
        {"target": f">= {TARGET_RESERVATIONS_PER_S} successful reservations/s on one hot type over HTTP",
         "measured": f"{best['reservations_per_s']:.0f}/s (best, at {best['clients']} clients)",
         "met": best["reservations_per_s"] >= TARGET_RESERVATIONS_PER_S},
        {"target": f"p99 < {TARGET_P99_MS} ms at {TARGET_P99_CLIENTS} clients",
         "measured": f"{p99:.0f} ms" if p99 is not None else f"not measured ({TARGET_P99_CLIENTS} not in --clients)",
         "met": p99 is not None and p99 < TARGET_P99_MS},
        {"target": f"reserve throughput >= {TARGET_CEILING_SHARE:.0%} of the framework ceiling (same run)",
         "measured": f"{share:.0%} (best reserve/s over best ceiling req/s)" if share else "-",
         "met": share is not None and share >= TARGET_CEILING_SHARE},
        {"target": "zero oversell every run",
         "measured": f"{sum(checks)}/{len(checks)} checks clean (counters, ticket rows, check_inventory)",
         "met": all(checks)},
        {"target": f"reserve p50 flat from 0 to {scaling['sold']:,} sold (ratio <= {FLAT_RATIO})",
         "measured": f"ratio {flat['http']} over HTTP, {flat['service']} at service level",
         "met": all(r is not None and r <= FLAT_RATIO for r in flat.values())},
    ]


def targets_table(results: dict) -> Table:
    return Table("Targets", ["target", "measured", "met"],
                 [[t["target"], t["measured"], t["met"]] for t in results["targets"]])


# --- BENCHMARKS.md --------------------------------------------------------------------------------


def _facts(title: str, facts: dict) -> str:
    return f"### {title}\n\n" + "\n".join(f"- {k.replace('_', ' ')}: {_fmt(v)}" for k, v in facts.items())


HISTORY_HEADING = "## Before/after optimisation"
HISTORY_PLACEHOLDER = (
    "_Figures of this bench before and after each change to the hot path, from runs on the same machine with "
    "the same options. Written by hand; a new run keeps this section._"
)


def kept_history(previous_report: str) -> str:
    """The hand-written before/after section of an earlier report (from its heading to the end)."""
    if HISTORY_HEADING not in previous_report:
        return HISTORY_PLACEHOLDER
    return previous_report.split(HISTORY_HEADING, 1)[1].strip()


def markdown(results: dict, history: str = HISTORY_PLACEHOLDER) -> str:
    s = results["settings"]
    queries = results["post_queries"]
    parts = [
        "# Benchmarks: the hot on-sale",
        f"Generated by `{results['command']}` on {results['date']} (took {results['duration_s'] / 60:.1f} min). "
        f"Raw figures: `{results['raw_results']}`. Everything (load generator, gunicorn, PostgreSQL, Redis) runs on "
        "the same machine, and other jobs may have used it at the same time: compare figures within one run, "
        "and expect +-30 % between runs. The load generator is a lean HTTP/1.1 client on an asyncio event loop "
        "(uvloop when installed: see Settings; httpx costs 2-6 ms of CPU per request on this machine: "
        "bench/clients.py).",
        "## Setup",
        _facts("Machine", results["machine"]),
        _facts("Versions", results["versions"]),
        _facts("Settings", s),
        "## Targets",
        targets_table(results).markdown(),
        "## Hot on-sale over HTTP",
        f"A fresh event per row with one ticket type of {s['capacity']:,} tickets; N clients (one API token each) "
        "POST `/api/v1/bookings/` for 1 or 2 tickets until they are refused as sold out. reserv/s = 201 answers "
        "over the time from the first request to the last 201; latencies are those of the 201s. Afterwards "
        "sold + held and the ticket rows must both equal the capacity, and `manage.py check_inventory` must pass. "
        "CPU columns are cores busy on average (1.00 = one of the machine's cores): the load generator (this "
        "process), the gunicorn tree, the PostgreSQL backends of the bench database; machine busy % covers "
        "everything on the machine. gunicorn CPU ms/201 is the server's CPU time per successful reservation.",
        hot_table(results).markdown(),
        "## Limits in the same run",
        "Ceiling: the same gunicorn serving `/bench/ceiling/` (token auth, one primary-key query, small JSON) to "
        f"the same N clients for {s['phase_seconds']} s. pgbench: `bench/reserve.sql` (the transaction of a "
        "reservation, prepared once per connection and sent as one simple query, as the server sends it) on a "
        "separate ticket type, same N connections "
        "(capped by PostgreSQL's max_connections), for the same time.",
        limits_table(results).markdown(),
        "## Service level",
        "`bookings.services.booking_reserve` called directly by N threads, one database connection each, "
        "one ticket per call, until `SoldOut`.",
        service_table(results).markdown(),
        "## Scaling",
        f"Sequential one-ticket reservations ({results['scaling']['count']:,} per column, one client, columns "
        f"interleaved in blocks of {results['scaling']['block']}) on an empty ticket type and on a type with "
        f"{results['scaling']['sold']:,} issued tickets (bulk-loaded with SQL in "
        f"{results['scaling']['load_s']:.1f} s); the first column ran before the bulk load.",
        scaling_table(results).markdown(),
        "Availability: one extra client polls `GET /api/v1/events/{id}/availability/` during the hot run with "
        f"{TARGET_P99_CLIENTS} clients. Sold-out storm: POSTs against the sold-out type of that run; every answer "
        "must be 409 `sold_out`. holds_expire: expired one-ticket holds inserted with SQL (counters kept), then "
        "`bookings.services.holds_expire()` called until it returns 0.",
        storm_table(results).markdown(),
        "## SQL of one reservation",
        f"POST /api/v1/bookings/ makes {_round_trips(queries['warm'])} to PostgreSQL once the caller's token, the "
        f"event and its ticket types are in the process ({queries['cold_token_cache']} the first time: the token "
        "lookup, the event read, and the reservation's locked path in two round trips, which leaves this process "
        "a copy of the ticket types), measured with the Django test client and `CaptureQueriesContext`. Each item "
        "is one round trip as psycopg sent it: one simple query, here of several statements, each shown as the "
        "statement it runs (they are prepared once per connection and sent as `EXECUTE name(values)`, "
        "`core.db.server_prepared`). The health check of a kept connection (`CONN_HEALTH_CHECKS`) polls its socket "
        "and sends no query unless the server has ended the connection (`core.postgresql`); the token comes "
        "from Redis (one round trip):",
        "\n".join(f"{i}. One simple query:\n" + "\n".join(f"   - `{statement}`" for statement in statements)
                  for i, statements in enumerate(queries["statements"], 1)),
        HISTORY_HEADING,
        history,
    ]
    return "\n\n".join(parts) + "\n"
