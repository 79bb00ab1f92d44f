"""The phases of one bench run, in order (import after `django.setup()`; bench/run.py explains each)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import infra, load, pgbench, report, seed, service
from bench.stats import latency_summary
from events.models import Event, TicketType

STORM_CLIENTS = 32
SCALING_BLOCK = 100  # sequential columns alternate in blocks, so drift on the machine hits both alike

OnSale = tuple[Event, TicketType]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Bench:
    """One run: the server, the buyers' tokens and the results collected so far."""

    def __init__(self, args: argparse.Namespace, server: infra.Server, tokens: list[str], results: dict) -> None:
        self.args, self.server, self.tokens, self.results = args, server, tokens, results

    def target(self, on_sale: OnSale, clients: int) -> load.Target:
        event, ticket_type = on_sale
        return load.Target(self.server.base_url, str(event.pk), str(ticket_type.pk), self.tokens[:clients],
                           client=self.args.client)

    def measured(self, run, *args, **kwargs) -> dict:
        """`run(...)`'s result with the CPU used meanwhile."""
        with infra.CpuMeter(self.server.process.pid) as cpu:
            result = run(*args, **kwargs)
        return {**result, "cpu": cpu.result}

    def inventory_check(self, phase: str) -> dict:
        check = infra.check_inventory() | {"phase": phase}
        self.results["inventory_checks"].append(check)
        if not check["ok"]:
            say(f"check_inventory FAILED after {phase}: {check['output']}")
        return check

    def warm_up(self) -> None:
        """Every worker imports the code, connects to PostgreSQL and caches tokens before anything counts."""
        target = self.target(seed.on_sale(capacity=200, label="warm-up"), min(8, len(self.tokens)))
        load.warm_up(target)
        load.hot_onsale(target)

    def hot(self, clients: int, *, poll: bool) -> load.Target:
        on_sale = seed.on_sale(capacity=self.args.capacity, label=f"hot N={clients}")
        target = self.target(on_sale, clients)
        result = self.measured(load.hot_onsale, target, poll=poll, timeout=max(120.0, self.args.capacity / 10))
        result["oversell"] = seed.oversell_check(on_sale[1]) | {"tickets_answered_201": result["tickets"]}
        result["check_inventory"] = self.inventory_check(f"hot N={clients}")
        self.results["hot"].append(result)
        lat = result["latency_201"]
        say(f"hot N={clients}: {result['reservations_per_s']} reservations/s, p50 {lat['p50']} ms, "
            f"p99 {lat['p99']} ms, errors {result['errors'] or 'none'}, no oversell: {result['oversell']['ok']}")
        return target

    def limits(self, target: load.Target, pgbench_on_sale: OnSale) -> None:
        clients = len(target.tokens)
        result = self.measured(load.ceiling, target, duration=self.args.seconds)
        self.results["ceiling"].append(result)
        event, ticket_type = pgbench_on_sale
        tps = pgbench.reserve_tps(clients=clients, duration=self.args.seconds, event_id=str(event.pk),
                                  ticket_type_id=str(ticket_type.pk))
        self.results["pgbench"].append({"asked": clients, **tps})
        say(f"limits N={clients}: ceiling {result['requests_per_s']} req/s, pgbench {tps.get('tps')} tps")

    def storm(self, target: load.Target) -> None:
        """POSTs against the sold-out type of an earlier hot run."""
        storm_target = dataclasses.replace(target, tokens=self.tokens[:STORM_CLIENTS])
        result = self.measured(load.sold_out_storm, storm_target, requests=self.args.storm)
        self.results["sold_out_storm"] = result
        say(f"sold-out storm: {result['rejections_per_s']}/s, statuses {result['statuses']}")

    def service_level(self) -> None:
        for threads in self.args.service_threads:
            on_sale = seed.on_sale(capacity=self.args.capacity, label=f"service N={threads}")
            result = self.measured(service.reserve_threads, *on_sale, threads=threads)
            result["oversell"] = seed.oversell_check(on_sale[1])
            self.results["service"].append(result)
            say(f"service N={threads}: {result['reservations_per_s']} reservations/s, "
                f"p50 {result['latency']['p50']} ms, p99 {result['latency']['p99']} ms")
        self.inventory_check("service level")

    def holds_expire(self) -> None:
        _event, ticket_type = seed.on_sale(capacity=self.args.holds, label="holds")
        seed.expired_holds(ticket_type, self.args.holds)
        result = self.measured(service.expire_all)
        result["created"] = self.args.holds
        result["check_inventory"] = self.inventory_check("holds_expire")
        self.results["holds_expire"] = result
        say(f"holds_expire: {result['released']:,} of {self.args.holds:,} holds in {result['seconds']} s")

    def scaling(self) -> None:
        count, sold = self.args.sequential, self.args.sold
        latencies: dict[str, dict[str, list[float]]] = {"http": {}, "service": {}}
        self._sequential(seed.on_sale(capacity=2 * count, label="scaling, before bulk load"), count,
                         "empty_before_load", latencies)
        full = seed.on_sale(capacity=sold + 2 * count, label=f"scaling, {sold} sold")
        say(f"bulk-loading {sold:,} sold tickets ...")
        load_s = seed.sold_tickets(full[1], sold)
        empty = seed.on_sale(capacity=2 * count, label="scaling, empty")
        for _block in range(0, count, SCALING_BLOCK):
            self._sequential(empty, SCALING_BLOCK, "empty", latencies)
            self._sequential(full, SCALING_BLOCK, "full", latencies)
        scaling = {"sold": sold, "count": count, "block": SCALING_BLOCK, "load_s": round(load_s, 1)}
        for door, columns in latencies.items():
            scaling[door] = {column: latency_summary(values) for column, values in columns.items()}
        scaling["check_inventory"] = self.inventory_check("scaling")
        self.results["scaling"] = scaling
        say(f"scaling: reserve p50 over HTTP {scaling['http']['empty']['p50']} ms at 0 sold, "
            f"{scaling['http']['full']['p50']} ms at {sold:,} sold")

    def _sequential(self, on_sale: OnSale, count: int, column: str, latencies: dict) -> None:
        """`count` reservations over HTTP, then `count` at the service level, on one type."""
        samples = load.sequential(self.target(on_sale, 1), count=count)
        refused = [s for s in samples if s.status != 201]
        if refused:
            raise SystemExit(f"sequential reservations refused: {refused[:3]}\n{self.server.log_tail()}")
        latencies["http"].setdefault(column, []).extend(s.latency for s in samples)
        latencies["service"].setdefault(column, []).extend(service.reserve_sequential(*on_sale, count=count))


def run_phases(args: argparse.Namespace, results: dict) -> None:
    tokens = seed.buyers(max(*args.clients, STORM_CLIENTS))
    results["post_queries"] = service.post_queries(*seed.on_sale(capacity=10, label="queries"), tokens[0])
    config = infra.ServerConfig(args.workers, args.worker_class, args.threads, infra.pick_port(args.port))
    log_path = Path(tempfile.gettempdir()) / f"bench-gunicorn-{os.getpid()}.log"
    with infra.gunicorn(config, log_path) as server:
        results["settings"].update(server=server.config.describe(), port=str(server.config.port))
        say(f"{server.config.describe()} on {server.base_url}; warming up ...")
        bench = Bench(args, server, tokens, results)
        bench.warm_up()
        pgbench_on_sale = seed.on_sale(capacity=2_000_000_000, label="pgbench")
        poll_at = min(args.clients, key=lambda n: abs(n - report.TARGET_P99_CLIENTS))
        storm_target = None
        for clients in args.clients:
            target = bench.hot(clients, poll=clients == poll_at)
            storm_target = target if clients == poll_at else storm_target
            bench.limits(target, pgbench_on_sale)
        bench.storm(storm_target)
        bench.service_level()
        bench.holds_expire()
        bench.scaling()
        log = log_path.read_text(errors="replace")
        results["server_log"] = {"path": str(log_path), "tracebacks": log.count("Traceback"),
                                 "tail": server.log_tail(40)}
