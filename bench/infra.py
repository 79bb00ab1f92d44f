"""What the bench runs on: its own PostgreSQL database and Redis db, gunicorn, CPU meters, machine facts.

Nothing here imports Django models, so it is usable before `django.setup()`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import fcntl
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bench_ticketing"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/13"
# Holds taken by one phase must not lapse while a later phase runs (the sold-out storm
# would reclaim them and sell again; holds_expire would count them): a day, not 15 minutes.
HOLD_MINUTES = 24 * 60
CONN_MAX_AGE = 600
_SECRET_KEY = "bench-" + secrets.token_urlsafe(32)  # one per run, shared by every process of the run


def bench_env() -> dict[str, str]:
    """The environment of every process that runs the project for the bench (README "Configuration")."""
    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE": "false",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECRET_KEY": _SECRET_KEY,
        # Debug off, as in production: the mock gateway and console e-mail must be allowed explicitly.
        "PAYMENT_GATEWAY_ALLOW_MOCK": "true",
        "EMAIL_ALLOW_CONSOLE": "true",
        "API_THROTTLE_RATES": "off",
        "LOG_LEVEL": "WARNING",
        "DATABASE_CONN_MAX_AGE": str(CONN_MAX_AGE),
        "BOOKING_HOLD_MINUTES": str(HOLD_MINUTES),
        # A hot on-sale by a handful of buyers (one API token each, all from 127.0.0.1, thousands of
        # holds each): the hoarding limits per buyer and per address would refuse nearly all of it.
        "BOOKING_MAX_HOLDS_PER_BUYER": "0",
        "BOOKING_MAX_HOLDS_PER_IP": "0",
        "BOOKING_MAX_TICKETS_PER_BUYER": "0",
        "PYTHONPATH": str(ROOT),
    }


# --- PostgreSQL and Redis ---------------------------------------------------------------------

_LOCK_PATH = Path("/tmp") / f"{DB_NAME}.lock"  # noqa: S108 - a well-known path is the point: one run per machine


def exclusive_run() -> TextIO:
    """A lock held while the returned file is open: one run at a time, since runs share the
    database, the Redis db and the port."""
    lock = open(_LOCK_PATH, "w")  # noqa: SIM115 - the caller closes it (`with`)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise SystemExit(f"Another bench run holds {_LOCK_PATH}; runs share {DB_NAME} and Redis db 13.") from None
    return lock


def require_services() -> None:
    """Fail with a plain message when PostgreSQL, Redis or pgbench is missing."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (trust auth expected): {exc}") from None
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis is not reachable at {REDIS_URL}: {exc}") from None


def recreate_database() -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def flush_redis() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()


def pg_scalar(sql: str) -> str:
    with psycopg.connect(DATABASE_URL) as conn:
        return str(conn.execute(sql).fetchone()[0])


def pg_free_connections(margin: int = 10) -> int:
    """Connections the server can still open, keeping `margin` for everyone else."""
    used = int(pg_scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
    return int(pg_scalar("SHOW max_connections")) - used - margin


# --- Processes ----------------------------------------------------------------------------------


def run(cmd: list[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """A command of the bench (manage.py, pgbench): fixed argument lists, never a shell."""
    env = {**os.environ, **bench_env()}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)  # noqa: S603


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args])


def migrate() -> None:
    result = manage("migrate", "--noinput", "-v", "0")
    if result.returncode:
        raise SystemExit(f"manage.py migrate failed:\n{result.stdout}{result.stderr}")


def check_inventory() -> dict:
    """`manage.py check_inventory` with the bench settings: exit code and the end of its output."""
    result = manage("check_inventory")
    lines = (result.stdout + result.stderr).strip().splitlines()
    return {"exit_code": result.returncode, "ok": result.returncode == 0, "output": lines[-5:]}


# --- gunicorn ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    workers: int
    worker_class: str
    threads: int
    port: int

    def describe(self) -> str:
        threads = f", {self.threads} threads each" if self.worker_class == "gthread" else ""
        return f"gunicorn, {self.workers} {self.worker_class} workers{threads}"


@dataclass
class Server:
    config: ServerConfig
    process: subprocess.Popen
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        """The end of gunicorn's log, without Django's one-line warning per 4xx answer."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        kept = [line for line in text.splitlines() if " WARNING django.request " not in line]
        return "\n".join(kept[-lines:])


def pick_port(preferred: int) -> int:
    """`preferred` when it is free, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise SystemExit("No free TCP port for gunicorn.")


@contextlib.contextmanager
def gunicorn(config: ServerConfig, log_path: Path, *, root: Path = ROOT) -> Iterator[Server]:
    """gunicorn serving `ticketing.wsgi` with the bench settings; always stopped, with its workers.
    `root`: the project tree whose code it serves (bench/ab.py serves another commit's)."""
    worker_class = "gthread" if config.threads > 1 and config.worker_class == "sync" else config.worker_class
    config = dataclasses.replace(config, worker_class=worker_class)
    cmd = [
        sys.executable, "-m", "gunicorn", "ticketing.wsgi",
        "--bind", f"127.0.0.1:{config.port}", "--workers", str(config.workers),
        "--worker-class", config.worker_class, "--threads", str(config.threads),
        "--backlog", "2048", "--timeout", "60", "--log-level", "warning",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(  # noqa: S603
            cmd, cwd=root, env={**os.environ, **bench_env(), "PYTHONPATH": str(root)}, stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops every worker
            preexec_fn=_die_with_parent,
        )
        server = Server(config, process, f"http://127.0.0.1:{config.port}", log_path)
        try:
            _wait_ready(server)
            yield server
        finally:
            _stop(process)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM to gunicorn if the bench process dies without cleaning up
    (even by SIGKILL). Linux only; elsewhere the `finally` above has to do."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz within {timeout:.0f} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """TERM the server's process group (graceful), KILL it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- CPU ------------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds used, command line) of every process we can read."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, cmdline)
    return table


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


def _self_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU used during a block, in cores (1.0 = one core busy the whole time): the bench process
    (load generator), the gunicorn tree, the PostgreSQL backends of the bench database, and the
    machine as a whole (which includes whatever else runs on it)."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.result: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        table = _proc_table()
        busy, total = _machine_busy()
        return {
            "wall": time.perf_counter(), "self": _self_cpu(), "busy": busy, "total": total,
            "server": sum(table[pid][1] for pid in _tree(table, self.server_pid)),
            "db": sum(cpu for _ppid, cpu, cmd in table.values() if cmd.startswith("postgres:") and DB_NAME in cmd),
        }

    def __enter__(self) -> CpuMeter:
        self._start = self._sample()
        return self

    def __exit__(self, *exc) -> None:
        end = self._sample()
        d = {key: end[key] - self._start[key] for key in end}
        wall = d["wall"] or 1e-9
        self.result = {
            "loadgen_cores": round(d["self"] / wall, 2),
            "server_cores": round(d["server"] / wall, 2),
            "db_cores": round(d["db"] / wall, 2),
            "machine_busy_pct": round(100 * d["busy"] / (d["total"] or 1e-9), 1),
        }


def _tree(table: dict[int, tuple[int, float, str]], root: int | None) -> set[int]:
    if root is None or root not in table:
        return set()
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _cpu, _cmd) in table.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


# --- Facts about the machine and the software --------------------------------------------------------


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem_kb = int(re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor() or "unknown",
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "speed_probe_ms_at_start": speed_probe_ms(),
    }


def speed_probe_ms() -> float:
    """CPU ms of a fixed pure-Python loop (best of 3), at the start and the end of a run: a rough
    sign of how fast the machine's cores were. The machine's speed changes from one minute to the
    next (other tenants); sustained slowness shows better in the framework ceiling of the run."""
    best = float("inf")
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def versions() -> dict:
    import django
    import gunicorn as gunicorn_pkg
    import rest_framework

    pgbench = shutil.which("pgbench")
    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "djangorestframework": rest_framework.VERSION,
        "psycopg": psycopg.__version__,
        "gunicorn": gunicorn_pkg.__version__,
        "httpx": httpx.__version__,
        "postgresql": pg_scalar("SHOW server_version"),
        "redis": redis.Redis.from_url(REDIS_URL).info("server")["redis_version"],
        "pgbench": run([pgbench, "--version"]).stdout.strip() if pgbench else "not installed",
    }
