"""Schemathesis against a LIVE server: gunicorn on the test PostgreSQL database and Redis (issue 15, item 14).

The server is the production stack (gunicorn from the venv, the project's WSGI
application, debug off), bound to a socket this test opened on a free port and
handed to gunicorn (`fd://`), so no port is ever guessed. It reads the rows this
test seeded and committed (`transaction=True`): an organizer with events and
ticket types, a buyer with bookings in every state, a payment and a refund.
Queued tasks run in the server process when their transaction commits, so a
payment the run makes is captured and its booking can be refunded.

The schema is the one the server serves at /api/schema/; the test only adds the
seeded rows' ids as path-parameter examples (and samples the time zone enum).
Schemathesis's CLI then runs every phase (examples, coverage, fuzzing, and the
stateful phase, which follows the schema's OpenAPI links from a create to the
reads and actions on what it created) with ALL checks, once as a buyer and once
as an organizer member: 0 failures, and the server's own access log shows no
5xx. Schema-valid input may be refused (400) only for the rules no schema can
state, field by field (schemathesis_policy.py, registered for the CLI by
schemathesis_hooks.py).

Bounded: a fixed seed, derandomized generation, MAX_EXAMPLES cases per
operation and phase, STATEFUL_SCENARIOS scenarios of at most STATEFUL_STEPS
steps, one client: about two minutes for both runs on 2 busy cores.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import schemathesis_policy as policy  # what a schema-valid request may get (shared with test_schemathesis.py)
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from bookings.tests.factories import make_booking
from events.models import Event, Organizer
from events.tests.factories import EventFactory, TicketTypeFactory, UserFactory
from payments.services import refund_issue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "Live-schema-Test-9431"  # noqa: S105 - a test login on a throw-away database
MAX_EXAMPLES = 10
STATEFUL_STEPS = 8
STATEFUL_SCENARIOS = 30
RUN_TIMEOUT = 600  # seconds; a run takes about a minute
START_TIMEOUT = 60

HOOKS = Path(__file__).with_name("schemathesis_hooks.py")


# --- Logins --------------------------------------------------------------------------------


def api_token(base_url: str, username: str, password: str) -> str:
    """The one place this test gets an API key: the token endpoint, as an integrator does."""
    response = requests.post(f"{base_url}/api/v1/auth/token/", json={"username": username, "password": password},
                             timeout=30)
    assert response.status_code == 200, (response.status_code, response.text[:500])
    return response.json()["token"]


@pytest.fixture(autouse=True)
def _fast_password_hashing():
    """The live server checks passwords with the project's hashers, so the seeded logins use them
    too (this replaces tests/api/conftest.py's cheap test-only hasher for this module)."""


# --- Data ----------------------------------------------------------------------------------


def seed() -> dict:
    """Committed rows for both runs; returns the logins and each role's path-parameter examples.

    Examples are looked up by (method, route, parameter), then by route (bookings, payments,
    refunds), then by parameter: `tt_id`, or `id` on an event route.
    """
    call_command("create_organizer", "Acme Live", username="organizer", email="ops@acme.test",
                 password=PASSWORD, stdout=io.StringIO())
    organizer = Organizer.objects.get(slug="acme-live")
    buyer = UserFactory(username="buyer", email="buyer@example.com", password=PASSWORD)
    # One buyer holds every seeded booking: the event lifts its limits per buyer (as the server does).
    event = EventFactory(organizer=organizer, name="Jazz Night", capacity=400, max_holds_per_buyer=0,
                         max_holds_per_ip=0, max_tickets_per_buyer=0)
    general = TicketTypeFactory(event=event, name="General", capacity=200, price=Decimal("49.00"))
    TicketTypeFactory(event=event, name="VIP", capacity=20, price=Decimal("120.00"), max_per_booking=4)
    draft = EventFactory(organizer=organizer, status=Event.Status.DRAFT, name="Secret Gig")
    draft_type = TicketTypeFactory(event=draft, name="Early bird", capacity=50, price=Decimal("19.00"))
    spare_type = TicketTypeFactory(event=draft, name="Spare", capacity=5)
    popup = EventFactory(organizer=organizer, status=Event.Status.DRAFT, name="Pop-up")
    gala = EventFactory(organizer=organizer, name="Gala", capacity=100)
    _paid_booking(TicketTypeFactory(event=gala, name="Stalls", capacity=100), buyer)
    TicketTypeFactory(event=EventFactory(name="Rock Fest", city="Hamburg"), capacity=50)  # someone else's

    to_read, to_pay, to_cancel = (make_booking(items=[(general, 2)], buyer=buyer) for _ in range(3))
    paid = _paid_booking(general, buyer)
    refund = refund_issue(booking=_paid_booking(general, buyer, n=1))
    bookings = {
        "/api/v1/bookings/{id}/": to_read.pk, "/api/v1/bookings/{id}/pay/": to_pay.pk,
        "/api/v1/bookings/{id}/cancel/": to_cancel.pk, "/api/v1/bookings/{id}/refund/": paid.pk,
        "/api/v1/payments/{id}/": paid.payments.get().pk, "/api/v1/refunds/{id}/": refund.pk,
    }
    return {
        # A buyer may read the organizer's published event; every write on it is refused.
        "buyer": {"username": "buyer", "ids": {"id": event.pk, "tt_id": general.pk, **bookings}},
        # The organizer changes and publishes its draft, and sees its buyers' bookings. What the run
        # deletes or cancels has rows of its own, so the draft lives on for the other operations.
        "organizer": {"username": "organizer", "ids": {
            "id": draft.pk, "tt_id": draft_type.pk, **bookings,
            ("DELETE", "/api/v1/events/{id}/", "id"): popup.pk,
            ("POST", "/api/v1/events/{id}/cancel/", "id"): gala.pk,  # confirmed booking: refunded
            ("DELETE", "/api/v1/events/{id}/ticket-types/{tt_id}/", "tt_id"): spare_type.pk,
        }},
        "reserve": {"event": str(event.pk), "items": [{"ticket_type": str(general.pk), "quantity": 2}]},
    }


def _paid_booking(tt, buyer, n: int = 2):
    from payments.services import payment_authorize
    from payments.tests.conftest import card

    booking = make_booking(items=[(tt, n)], buyer=buyer)
    payment_authorize(booking=booking, card=card())  # captured on commit: tasks run eagerly here
    booking.refresh_from_db()
    assert booking.status == "confirmed", booking.status
    return booking


def with_examples(raw: dict, ids: dict, reserve: dict) -> dict:
    """The served schema with the seeded rows as path-parameter and reservation examples (and a sample
    of the time zones: policy.TIME_ZONES_SENT)."""
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    name = parameter["name"]
                    key = (method.upper(), path, name)
                    parameter["example"] = str(ids[key] if key in ids else ids[path] if path in ids else ids[name])
    for content in raw["paths"]["/api/v1/bookings/"]["post"]["requestBody"]["content"].values():
        content["examples"] = {"Two tickets": {"value": reserve}}
    return policy.fewer_time_zones(raw)


# --- The server ----------------------------------------------------------------------------


def database_url() -> str:
    """The test database (the one pytest-django created), as a URL for another process."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class LiveServer:
    """gunicorn serving ticketing.wsgi on a socket bound to port 0 here, in its own process group."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.log = directory / "gunicorn.log"
        self.access_log = directory / "access.log"
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> LiveServer:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.set_inheritable(True)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ticketing.settings",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            # Production settings, over plain HTTP on the loopback.
            "DJANGO_DEBUG": "false",
            "DJANGO_SECURE": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "PAYMENT_GATEWAY_ALLOW_MOCK": "true",  # the mock gateway, explicitly allowed with debug off
            "EMAIL_URL": f"filemail:///{self.directory / 'mail'}",
            # Queued tasks (capture, e-mail) run in the server when their transaction commits, so a
            # payment made during the run is captured and its booking can be refunded.
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "PAYMENT_CAPTURE_DELAY_SECONDS": "0",
            # Throttles on (the code path runs) with rates no run reaches: a 429 would hide what a request
            # does, and the in-process test and test_throttling.py see the 429s. Likewise the hoarding
            # limits (one buyer makes every reservation of the run): answered 409/429, tested on their own.
            "API_THROTTLE_RATES": ",".join(f"{scope}=1000000/min"
                                           for scope in ("anon", "user", "ip", "bookings", "pay", "login")),
            "BOOKING_MAX_HOLDS_PER_BUYER": "0", "BOOKING_MAX_HOLDS_PER_IP": "0", "BOOKING_MAX_TICKETS_PER_BUYER": "0",
            "LOG_LEVEL": "WARNING",
        }
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "ticketing.wsgi", "--bind", f"fd://{listener.fileno()}", "--workers", "2",
                 "--timeout", "120", "--access-logfile", str(self.access_log),
                 "--access-logformat", '%(s)s "%(r)s"'],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=(listener.fileno(),),
            )
        listener.close()  # gunicorn holds its own copy of the bound socket
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.output()}"
            try:  # the socket accepts at once; the answer comes once a worker has loaded the project
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)  # polling a real process's start-up, not waiting for a clock
        pytest.fail(f"gunicorn did not answer within {START_TIMEOUT}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def statuses(self) -> list[tuple[int, str]]:
        """(status, request line) of every request the server answered."""
        lines = self.access_log.read_text(errors="replace").splitlines() if self.access_log.exists() else []
        return [(int(line[:3]), line[4:]) for line in lines if line[:3].isdigit()]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # gunicorn: graceful stop of master and workers
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def collected_static():
    """Static files collected as a deployment does (the Dockerfile, the run command): with debug off,
    every HTML page (the site's 404 for a path outside the API) names them from the manifest."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**os.environ, "DJANGO_DEBUG": "false"}, timeout=START_TIMEOUT)


@pytest.fixture
def live_server_api(tmp_path, transactional_db, _celery_eager, collected_static):
    """Seeded, committed rows and a gunicorn serving them; stopped before the database is flushed."""
    data = seed()
    server = LiveServer(tmp_path).start()
    try:
        yield server, data
    finally:
        server.stop()


# --- Schemathesis --------------------------------------------------------------------------


def _toml(value) -> str:
    return json.dumps(value)  # JSON strings, numbers, booleans and arrays are valid TOML values


def schemathesis_config(path: Path, token: str, schema: dict) -> Path:
    lines = [
        "seed = 20240917",
        "workers = 1",
        f"headers = {{ Authorization = {_toml('Token ' + token)} }}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "deterministic = true",
        'database = "none"',
        "[phases.stateful]",
        f"max-steps = {STATEFUL_STEPS}",
        "[phases.stateful.generation]",
        f"max-examples = {STATEFUL_SCENARIOS}",
    ]
    for entry in policy.positive_acceptance_by_operation(schema):
        statuses = entry["checks"]["positive_data_acceptance"]["expected-statuses"]
        lines += ["[[operations]]", f"include-name = {_toml(entry['include-name'])}",
                  "[operations.checks.positive_data_acceptance]", f"expected-statuses = {_toml(statuses)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_schemathesis(server: LiveServer, data: dict, role: str, directory: Path) -> subprocess.CompletedProcess:
    token = api_token(server.url, data[role]["username"], PASSWORD)
    served = requests.get(f"{server.url}/api/schema/", params={"format": "json"}, timeout=60)
    assert served.status_code == 200, served.text[:500]
    raw = with_examples(served.json(), data[role]["ids"], data["reserve"])
    schema = directory / f"schema-{role}.json"
    schema.write_text(json.dumps(raw))
    config = schemathesis_config(directory / f"schemathesis-{role}.toml", token, raw)
    result = subprocess.run(
        [str(BIN / "schemathesis"), "--config-file", str(config), "--no-color", "run", str(schema),
         "--url", server.url, "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
         "--report", "junit", "--report-dir", str(directory / f"report-{role}")],
        cwd=directory, capture_output=True, text=True, timeout=RUN_TIMEOUT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS),
             "PYTHONPATH": os.pathsep.join(filter(None, [str(HOOKS.parent), os.environ.get("PYTHONPATH")]))},
    )
    (directory / f"schemathesis-{role}.txt").write_text(result.stdout + result.stderr)
    return result


@pytest.mark.parametrize("role", ["buyer", "organizer"])
def test_the_live_api_keeps_its_schema_under_every_check(live_server_api, role, tmp_path):
    server, data = live_server_api

    result = run_schemathesis(server, data, role, tmp_path)

    report = result.stdout[-20000:] + result.stderr[-3000:]
    errors = [(status, line) for status, line in server.statuses() if status >= 500]
    assert not errors, f"the server answered 5xx: {errors[:20]}\n{server.output()[-5000:]}\n{report}"
    assert result.returncode == 0, report
    # The stateful phase ran on the schema's own links and followed some of them to what it created.
    links = re.search(r"API Links:\s+(\d+) covered / \d+ selected / (\d+) total(?: \((\d+) inferred\))?", result.stdout)
    assert links, report
    covered, total, inferred = (int(n or 0) for n in links.groups())
    assert total - inferred >= 30 and covered >= 5, report
    assert any(status == 201 for status, _ in server.statuses()), report
