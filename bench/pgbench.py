"""The database's own ceiling for the reserve transaction: pgbench running bench/reserve.sql."""

from __future__ import annotations

import re
import shutil

from bench import infra
from bench.reserve_sql import pgbench_command


def _number(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def reserve_tps(*, clients: int, duration: int, event_id: str, ticket_type_id: str) -> dict:
    """`clients` connections run the reserve transaction on one ticket type for `duration` seconds."""
    binary = shutil.which("pgbench")
    if binary is None:
        return {"skipped": "pgbench is not installed (Debian: postgresql-client)"}
    used = max(1, min(clients, infra.pg_free_connections()))
    cmd = pgbench_command(binary, event_id=event_id, ticket_type_id=ticket_type_id, database=infra.DB_NAME,
                          clients=used, limit=["-T", str(duration)])
    result = infra.run(cmd, timeout=duration + 120)
    output = result.stdout + result.stderr
    if result.returncode:
        return {"clients": used, "error": output.strip().splitlines()[-3:]}
    return {
        "clients": used,
        "capped": used < clients,
        "tps": _number(r"tps = ([\d.]+) \(without initial connection time\)", output),
        "latency_avg_ms": _number(r"latency average = ([\d.]+) ms", output),
        "transactions": int(_number(r"number of transactions actually processed: (\d+)", output) or 0),
        "failed": int(_number(r"number of failed transactions: (\d+)", output) or 0),
    }
