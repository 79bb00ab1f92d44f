#!/usr/bin/env python3
"""The project's two set-up commands (stdlib only; runs with the machine's python3).

    python3 scripts/dev.py run     # the site + Celery worker + beat, on embedded defaults
    python3 scripts/dev.py test    # the whole test suite on PostgreSQL + Redis

Both create `.venv` and install the pinned requirements first (again only when
a requirements file changed).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.parse import urlparse

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


def run(argv: list[str]) -> int:
    ensure_venv("requirements.txt")
    env = {**os.environ}
    env.setdefault("DJANGO_DEBUG", "true")
    env.setdefault("DJANGO_SECURE", "false")
    port = env.get("PORT", "8000")
    env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    manage("migrate", "--noinput", "-v", "1", env=env)
    manage("seed_demo", env=env)
    manage("collectstatic", "--noinput", "-v", "0", env=env)
    commands = {
        "web": [str(PY), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [str(BIN / "celery"), "-A", "ticketing", "worker", "--loglevel=INFO", "--concurrency=2"],
        "beat": [str(BIN / "celery"), "-A", "ticketing", "beat", "--loglevel=INFO"],
    }
    children: dict[str, subprocess.Popen] = {}
    for name, command in commands.items():
        children[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    backend = "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite (db.sqlite3)"
    broker = "Redis" if env.get("REDIS_URL") or env.get("CELERY_BROKER_URL") else "filesystem broker (var/celery/)"
    print(f"""
  Site:   http://127.0.0.1:{port}/
  Admin:  http://127.0.0.1:{port}/admin/    organizer / organizer   (superuser: admin / admin)
  API:    http://127.0.0.1:{port}/api/v1/   docs: http://127.0.0.1:{port}/api/docs/
  Buyer:  buyer / buyer
  Data:   {backend}; Celery worker + beat on the {broker}
  Ctrl-C stops everything.
""", flush=True)

    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                say(f"{name} exited with {child.returncode}; stopping the others")
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.terminate()  # a warm shutdown: Celery finishes its current task
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    say("stopped")
    return exit_code


# --- test --------------------------------------------------------------------------------------


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def check_services(env: dict[str, str]) -> list[str]:
    problems = []
    db = urlparse(env["DATABASE_URL"])
    if db.scheme not in {"postgres", "postgresql", "pgsql"}:
        problems.append(f"DATABASE_URL must be a PostgreSQL URL, got {env['DATABASE_URL']!r}")
    elif not _reachable(db.hostname or "127.0.0.1", db.port or 5432):
        problems.append(f"PostgreSQL is not reachable at {db.hostname}:{db.port or 5432} (DATABASE_URL)")
    else:
        probe = (
            "import psycopg; psycopg.connect("
            f"host={db.hostname!r}, port={db.port or 5432}, user={db.username or 'postgres'!r}, "
            f"password={db.password or ''!r}, dbname='postgres', connect_timeout=5)"
        )
        result = subprocess.run([str(PY), "-c", probe], capture_output=True, text=True)
        if result.returncode:
            problems.append("PostgreSQL refused the connection: " + result.stderr.strip().splitlines()[-1])
    redis = urlparse(env["REDIS_URL"])
    if not _reachable(redis.hostname or "127.0.0.1", redis.port or 6379):
        problems.append(f"Redis is not reachable at {redis.hostname}:{redis.port or 6379} (REDIS_URL)")
    return problems


def test(argv: list[str]) -> int:
    ensure_venv("requirements-dev.txt")
    env = {**os.environ}
    env.setdefault("DATABASE_URL", TEST_DATABASE_URL)
    env.setdefault("REDIS_URL", TEST_REDIS_URL)
    env.pop("CELERY_BROKER_URL", None)
    problems = check_services(env)
    if problems:
        print("The test suite needs PostgreSQL and Redis; it never skips without them:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    if (ROOT / "scripts" / "browser.py").exists():
        sys.path.insert(0, str(ROOT / "scripts"))
        import browser  # the browser tests' Chromium, installed from Debian's packages when missing

        browser.ensure_chromium()
    say(f"pytest on {env['DATABASE_URL']} and {env['REDIS_URL']}")
    return subprocess.run([str(PY), "-m", "pytest", *argv], cwd=ROOT, env=env).returncode


def main() -> int:
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__.strip())
        return 2
    os.chdir(ROOT)
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
