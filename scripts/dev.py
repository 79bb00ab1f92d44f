#!/usr/bin/env python3
"""The project's two set-up commands (stdlib only; runs with the machine's python3).

    python3 scripts/dev.py run     # the site + Celery worker + beat, on embedded defaults
    python3 scripts/dev.py test    # the whole test suite on PostgreSQL + Redis

Both create `.venv` and install the pinned requirements first (again only when
a requirements file changed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"

TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/ticketing"
TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def ensure_venv(requirements: str) -> None:
    """Create .venv and install `requirements` (skipped when nothing changed since the last install)."""
    if not PY.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    files = sorted(ROOT.glob("requirements*.txt"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files) + requirements.encode()).hexdigest()
    stamp = VENV / f".installed-{requirements}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"installing {requirements}")
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-r", str(ROOT / requirements)], check=True)
    stamp.write_text(digest)


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(PY), "manage.py", *args], cwd=ROOT, env=env, check=True)


# --- run --------------------------------------------------------------------------------------


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, web: subprocess.Popen, stopping, timeout: float = 60) -> bool:
    """True once the web server accepts connections; False if it died, never came up, or Ctrl-C came first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and web.poll() is None and not stopping():
        if _port_in_use(port):
            return True
        time.sleep(0.2)
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Creates the database DATABASE_URL names when the server lacks it (Django's migrate expects it to exist).
_CREATE_DATABASE = """
import os, psycopg
from psycopg import sql
name = os.environ["PROBE_DBNAME"]
with psycopg.connect(os.environ["PROBE_URL"], autocommit=True, connect_timeout=5) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"==> created the PostgreSQL database {name}")
"""


def ensure_database(env: dict[str, str]) -> None:
    """With a PostgreSQL DATABASE_URL, create its database if it does not exist yet."""
    db = urlparse(env.get("DATABASE_URL", ""))
    if db.scheme not in {"postgres", "postgresql", "pgsql"}:
        return
    name = unquote(db.path.lstrip("/"))
    if not name or name == "postgres":
        return
    maintenance = db._replace(scheme="postgresql", path="/postgres").geturl()
    subprocess.run([str(PY), "-c", _CREATE_DATABASE], check=True,
                   env={**env, "PROBE_URL": maintenance, "PROBE_DBNAME": name})


def run_environment(environ: dict[str, str]) -> dict[str, str]:
    """The run command's environment: `environ` plus demo mode with debug off (the site's own error pages,
    static files from whitenoise, the development defaults allowed) over plain HTTP. What `environ` sets
    wins: DJANGO_DEBUG=true brings back Django's debug pages for developers."""
    env = {**environ}
    env.setdefault("DJANGO_DEMO", "true")
    env.setdefault("DJANGO_DEBUG", "false")
    env.setdefault("DJANGO_SECURE", "false")
    env.setdefault("SITE_URL", f"http://127.0.0.1:{int(env.get('PORT', '8000'))}")
    return env


def run(argv: list[str]) -> int:
    ensure_venv("requirements.txt")
    env = run_environment(os.environ)
    port = int(env.get("PORT", "8000"))
    if _port_in_use(port):
        print(f"Port {port} is already in use: stop what runs there or choose another, e.g. PORT=8001.",
              file=sys.stderr)
        return 2
    ensure_database(env)
    manage("migrate", "--noinput", "-v", "1", env=env)
    manage("seed_demo", env=env)
    # Cheap when nothing changed; needed whenever DJANGO_DEBUG=false (the manifest storage serves only collected files).
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    commands = {
        "web": [str(PY), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [str(BIN / "celery"), "-A", "ticketing", "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [str(BIN / "celery"), "-A", "ticketing", "beat", "--loglevel=INFO"],
    }
    mode = ("debug (Django's debug pages)" if env["DJANGO_DEBUG"].lower() in {"true", "1", "yes", "on"}
            else "demo, debug off (the site's own error pages); DJANGO_DEBUG=true for Django's debug pages")
    backend = "PostgreSQL" if env.get("DATABASE_URL", "").startswith(("postgres", "pgsql")) else "SQLite"
    broker = "Redis" if env.get("REDIS_URL") or env.get("CELERY_BROKER_URL") else "the filesystem broker (var/celery/)"
    banner = f"""
  Site:   http://127.0.0.1:{port}/            buyer / buyer
  Admin:  http://127.0.0.1:{port}/admin/      organizer / organizer   (superuser: admin / admin)
  API:    http://127.0.0.1:{port}/api/v1/     docs: http://127.0.0.1:{port}/api/docs/
  Data:   {backend}; Celery worker + beat on {broker}
  Mode:   {mode}
  Ctrl-C stops everything.
"""
    return supervise(commands, env=env, port=port, banner=banner)


def supervise(commands: dict[str, list[str]], *, env: dict[str, str], port: int, banner: str) -> int:
    """Start `commands` ("web" first, serving `port`), print `banner` once it answers, stop them all on a signal.

    Every child (and the Celery worker's pool processes) joins one new process
    group, apart from the terminal's: Ctrl-C reaches only this script, which
    stops the children (SIGTERM: a warm shutdown for Celery, which finishes
    its current task), SIGKILLs whatever is left after 15 s, and finally
    sweeps the group so nothing outlives it. A second Ctrl-C kills at once.
    When one child exits by itself, the others are stopped the same way.
    """
    children: dict[str, subprocess.Popen] = {}
    pgid = 0
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        if stopping and pgid:
            say("killing everything")
            _killpg(pgid, signal.SIGKILL)
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands.items():
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, process_group=pgid)
        children[name] = child
        pgid = pgid or child.pid
    say(f"started {', '.join(f'{name} (pid {child.pid})' for name, child in children.items())}; "
        f"process group {pgid}")

    if _wait_for_port(port, children["web"], lambda: stopping):
        print(banner, flush=True)
    elif not stopping and children["web"].poll() is None:
        say(f"the web server is not answering on port {port} yet; see its log above")

    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                say(f"{name} exited with {child.returncode}; stopping the others")
                exit_code = child.returncode or 1
                stopping = True
                break
        else:
            time.sleep(0.5)
    say("stopping")
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _killpg(pgid, signal.SIGKILL)
            child.wait()
    # Anything still in the group (a pool process whose parent died first) goes too.
    if _group_alive(pgid):
        _killpg(pgid, signal.SIGKILL)
    say("stopped")
    return exit_code


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


# --- test --------------------------------------------------------------------------------------

# Run with the venv's interpreter, which has psycopg and redis; the URLs come in the environment.
_PROBE = """
import os, sys
try:
    {}
except Exception as exc:
    sys.exit(" ".join(f"{{type(exc).__name__}}: {{exc}}".split()))
"""
_POSTGRES_PROBE = _PROBE.format(
    'import psycopg; psycopg.connect(os.environ["PROBE_URL"], connect_timeout=5).close()'
)
_REDIS_PROBE = _PROBE.format(
    'import redis; redis.Redis.from_url(os.environ["PROBE_URL"], socket_connect_timeout=5, socket_timeout=5).ping()'
)


def _probe(code: str, url: str) -> str | None:
    """None when the probe connected, else its error on one line."""
    result = subprocess.run([str(PY), "-c", code], env={**os.environ, "PROBE_URL": url},
                            capture_output=True, text=True, timeout=30)
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def check_services(env: dict[str, str]) -> list[str]:
    """What keeps the suite from running: PostgreSQL (its `postgres` maintenance db) and Redis (PING)."""
    problems = []
    db = urlparse(env["DATABASE_URL"])
    if db.scheme not in {"postgres", "postgresql", "pgsql"}:
        problems.append(f"DATABASE_URL must be a PostgreSQL URL, got {env['DATABASE_URL']!r}")
    else:
        # pytest-django creates the test database itself; the server only has to let us in.
        maintenance = db._replace(scheme="postgresql", path="/postgres").geturl()
        error = _probe(_POSTGRES_PROBE, maintenance)
        if error:
            problems.append(f"PostgreSQL at {db.hostname}:{db.port or 5432} (DATABASE_URL) is unreachable: {error}")
    redis = urlparse(env["REDIS_URL"])
    if redis.scheme not in {"redis", "rediss", "unix"}:
        problems.append(f"REDIS_URL must be a Redis URL, got {env['REDIS_URL']!r}")
    else:
        error = _probe(_REDIS_PROBE, env["REDIS_URL"])
        if error:
            problems.append(f"Redis at {redis.hostname}:{redis.port or 6379} (REDIS_URL) does not answer PING: {error}")
    return problems


def prepare_browser() -> None:
    """Hook for the browser tests (tests/browser/): make sure the system Chromium they drive is there.

    scripts/browser.py installs Debian's package when it is missing and this
    user may. When it cannot, the rest of the suite still runs and the
    browser tests fail (never skip) with the reason.
    """
    if not (ROOT / "scripts" / "browser.py").exists():
        return
    sys.path.insert(0, str(ROOT / "scripts"))
    import browser

    try:
        browser.ensure_chromium()
    except browser.ChromiumUnavailable as exc:
        print(f"warning: {exc} The browser tests will fail.", file=sys.stderr, flush=True)


def test(argv: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    env = {**os.environ}
    env.setdefault("DATABASE_URL", TEST_DATABASE_URL)
    env.setdefault("REDIS_URL", TEST_REDIS_URL)
    # The broker is the Redis above: the worker tests need a real one, never the filesystem.
    env.pop("CELERY_BROKER_URL", None)
    problems = check_services(env)
    if problems:
        print("The test suite needs PostgreSQL and Redis; it never skips without them:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    prepare_browser()
    say(f"pytest on {env['DATABASE_URL']} and {env['REDIS_URL']}")
    return subprocess.run([str(PY), "-m", "pytest", *argv], cwd=ROOT, env=env).returncode


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs under any python3 to say so
        print(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}.", file=sys.stderr)
        return 2
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__.strip())
        return 2
    os.chdir(ROOT)
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
