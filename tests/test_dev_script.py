"""scripts/dev.py, the README's two commands: the test command's refusals, the install stamp, and the
run command's promise that Ctrl-C leaves no process behind."""

import importlib.util
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_dev():
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dev = _load_dev()


def _must_not_run(*args, **kwargs):
    raise AssertionError("the test command went on to run the suite")


def test_the_test_command_stops_with_a_clear_message_when_postgres_and_redis_are_unreachable(monkeypatch, capsys):
    monkeypatch.setattr(dev, "ensure_venv", lambda requirements: None)
    monkeypatch.setattr(dev, "prepare_browser", _must_not_run)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/ticketing")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/15")

    assert dev.test([]) == 2

    err = capsys.readouterr().err
    assert "never skips" in err
    assert "PostgreSQL at 127.0.0.1:1 (DATABASE_URL) is unreachable" in err
    assert "Redis at 127.0.0.1:1 (REDIS_URL) does not answer PING" in err


def test_the_test_command_wants_postgresql_not_sqlite():
    problems = dev.check_services({"DATABASE_URL": "sqlite:///db.sqlite3", "REDIS_URL": os.environ["REDIS_URL"]})

    assert problems == ["DATABASE_URL must be a PostgreSQL URL, got 'sqlite:///db.sqlite3'"]


def test_the_test_command_accepts_the_servers_this_suite_runs_on():
    assert dev.check_services({"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}) == []


def test_requirements_are_installed_again_only_when_a_requirements_file_changes(tmp_path, monkeypatch):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()  # the venv exists: only the install is in question
    (tmp_path / "requirements.txt").write_text("Django==5.2.19\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\npytest==9.2.0\n")
    installs = []
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "VENV", venv)
    monkeypatch.setattr(dev, "PY", venv / "bin" / "python")
    monkeypatch.setattr(dev, "subprocess", SimpleNamespace(run=lambda command, **kw: installs.append(command[-1])))

    dev.ensure_venv("requirements-dev.txt")
    dev.ensure_venv("requirements-dev.txt")
    assert installs == [str(tmp_path / "requirements-dev.txt")]

    (tmp_path / "requirements.txt").write_text("Django==5.2.20\n")
    dev.ensure_venv("requirements-dev.txt")
    assert len(installs) == 2


def test_the_run_command_runs_the_demo_with_debug_off_over_plain_http():
    env = dev.run_environment({"PATH": "/usr/bin", "PORT": "8001"})

    assert env["DJANGO_DEMO"] == "true"  # the production checks allow the embedded development defaults
    assert env["DJANGO_DEBUG"] == "false"  # the site's own error pages, static files from whitenoise
    assert env["DJANGO_SECURE"] == "false"  # plain http: login cookies without the Secure flag
    assert env["SITE_URL"] == "http://127.0.0.1:8001"


def test_developers_get_the_debug_pages_with_django_debug_true():
    env = dev.run_environment({"DJANGO_DEBUG": "true"})

    assert env["DJANGO_DEBUG"] == "true" and env["DJANGO_DEMO"] == "true"


# --- the run command's process handling, with stand-ins for runserver and Celery ---------------

DRIVER = """
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location("dev_script", sys.argv[1])
dev = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev)
port, worker = int(sys.argv[2]), sys.argv[3]
commands = {
    "web": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
    "worker": [sys.executable, "-c", worker],
}
sys.exit(dev.supervise(commands, env=dict(os.environ), port=port, banner="READY"))
"""

# A worker whose child ignores SIGTERM and outlives it: only the final sweep of the group ends it.
STUBBORN_WORKER = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
time.sleep(600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(worker: str):
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(ROOT / "scripts" / "dev.py"), str(_free_port()),
                             worker], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _read_until(process, marker: str, timeout: float = 30) -> str:
    """The driver's output up to the line holding `marker` (fails after `timeout` seconds)."""
    output = ""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while marker not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"no {marker!r} within {timeout} s; output so far:\n{output}")
            line = process.stdout.readline()
            if not line:
                pytest.fail(f"the driver ended before {marker!r}:\n{output}")
            output += line
    return output


def _process_group(output: str) -> int:
    return int(output.split("process group ")[1].split()[0])


def _live_members(pgid: int) -> list[int]:
    """Pids in the group that still run (zombies waiting for init to reap them do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.mark.slow
def test_ctrl_c_stops_every_child_and_sweeps_what_they_left():
    driver = _start(STUBBORN_WORKER)
    pgid = None
    try:
        output = _read_until(driver, "READY")
        pgid = _process_group(output)
        assert len(_live_members(pgid)) == 3  # web, worker, the worker's child

        driver.send_signal(signal.SIGINT)
        rest, _ = driver.communicate(timeout=30)  # EOF only once every child holding the pipe is gone
    finally:
        if driver.poll() is None:
            driver.kill()
        if pgid and _live_members(pgid):
            os.killpg(pgid, signal.SIGKILL)  # leave nothing behind when the test fails
    assert driver.returncode == 0, output + rest
    assert "==> stopped" in rest
    assert _live_members(pgid) == []


@pytest.mark.slow
def test_when_one_child_dies_the_run_command_stops_the_others_and_fails():
    driver = _start("import sys; sys.exit(3)")
    try:
        output, _ = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 3, output
    assert "worker exited with 3; stopping the others" in output
    assert _live_members(_process_group(output)) == []
