"""A real Celery worker process on the Redis broker (DESIGN.md sections 8 and 11).

The pay -> capture -> confirm -> e-mail path through a worker, and what happens when a worker
dies in the middle of a capture, after the processor took the money but before our rows say so:
the whole worker SIGKILLed (the message comes back after the visibility timeout: acks_late), its
pool process SIGKILLed (the worker requeues it at once: reject_on_worker_lost), and a message
stuck unacknowledged (payments_reconcile queues the capture again). Each ends with exactly one
capture at the gateway.

The worker uses the test database pytest-django created and the broker this process publishes
to (`app.conf.broker_url`, from REDIS_URL / CELERY_BROKER_URL), so nothing in the app is
re-pointed at runtime; that Redis database must be the test run's own (it is flushed).
"""

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from events.tests.factories import TicketTypeFactory
from payments.models import MockCharge, Payment
from payments.services import payment_authorize, payments_reconcile
from payments.tests.conftest import card
from ticketing.celery import app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
CELERY = Path(sys.executable).parent / "celery"
FAULT_GATEWAY = "payments.tests.fault_gateway.HangAfterCaptureGateway"
CAPTURE_RECEIVED = re.compile(r"Task payments\.tasks\.payment_capture_task\[([0-9a-f-]+)\] received")
DEADLINE = 30  # seconds a real worker may take to start or to finish the work


def wait_for(predicate, what: str, timeout: float = DEADLINE):
    """Poll a real process's effect (not a clock) until `predicate()` is truthy; fail after `timeout` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """`celery -A ticketing worker` (no -Q: it must consume every queue) in its own process group."""

    def __init__(self, directory: Path, **extra_env: str) -> None:
        self.log = directory / f"worker-{time.monotonic_ns()}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ticketing.settings",
            "DATABASE_URL": database_url(),  # the test database, not the one named in the environment
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": app.conf.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_URL": f"filemail:///{directory / 'mail'}",  # another process: mail to files (4 slashes: absolute)
            # Debug off, as in production: a real-looking key and the mock gateway allowed (core/checks.py).
            "DJANGO_SECRET_KEY": "worker-test-" + secrets.token_urlsafe(40),
            "PAYMENT_GATEWAY_ALLOW_MOCK": "true",
            **extra_env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [str(CELERY), "-A", "ticketing", "worker", "--loglevel=INFO", "--pool=prefork", "--concurrency=1",
                 "--without-mingle", "--without-gossip", "--hostname", f"test-{time.monotonic_ns()}@%h"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(lambda: " ready." in self.output() or self.process.poll() is not None, "the worker to start")
        assert self.process.poll() is None, f"the worker exited:\n{self.output()}"
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the main process and its pool processes together: no chance to acknowledge or clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def broker(_celery_eager, transactional_db):
    """Tasks go to the Redis broker (not run in-process); its database is empty before and after."""
    assert app.conf.broker_url.startswith("redis://"), app.conf.broker_url
    client = redis.Redis.from_url(app.conf.broker_url)
    client.flushdb()
    app.conf.task_always_eager = False
    yield client
    client.flushdb()


@pytest.fixture
def workers(tmp_path, broker):
    """Start workers with `workers(**env)`; every one is killed (whole process group) at teardown."""
    started: list[Worker] = []

    def start(**extra_env: str) -> Worker:
        worker = Worker(tmp_path, **extra_env)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.kill()
    for worker in started:  # no card data in what a real worker logs either
        assert "4111111111111111" not in worker.output()


@pytest.fixture
def booking():
    return make_booking(items=[(TicketTypeFactory(capacity=5), 2)])


def status(booking: Booking) -> str:
    return Booking.objects.values_list("status", flat=True).get(pk=booking.pk)


def mails(tmp_path: Path) -> list[str]:
    directory = tmp_path / "mail"
    return [path.read_text() for path in sorted(directory.iterdir())] if directory.exists() else []


def confirmation_sent(booking: Booking) -> bool:
    return Booking.objects.filter(pk=booking.pk, confirmation_sent_at__isnull=False).exists()


def assert_confirmed_once(booking: Booking, tmp_path: Path) -> None:
    """Confirmed, captured exactly once at the gateway, tickets issued, one e-mail, inventory consistent."""
    wait_for(lambda: status(booking) == Booking.Status.CONFIRMED, "the booking to be confirmed")
    payment = Payment.objects.get(booking=booking)
    assert payment.status == Payment.Status.CAPTURED
    assert MockCharge.objects.get(reference=payment.gateway_reference).capture_count == 1
    assert list(Ticket.objects.filter(booking=booking).values_list("status", flat=True)) == ["issued", "issued"]
    # The row is stamped when the message is claimed, before it is handed to the mail backend.
    wait_for(lambda: confirmation_sent(booking) and "Subject: Your tickets for" in "".join(mails(tmp_path)),
             "the confirmation e-mail")
    [message] = mails(tmp_path)
    assert message.count("Subject: Your tickets for") == 1
    assert booking.email in message
    out = StringIO()
    call_command("check_inventory", stdout=out)  # raises CommandError on any mismatch
    assert "Inventory OK" in out.getvalue()


def assert_stuck_after_capture(booking: Booking) -> None:
    """The processor took the money; our rows do not know yet."""
    assert status(booking) == Booking.Status.PROCESSING
    payment = Payment.objects.get(booking=booking)
    assert payment.status == Payment.Status.AUTHORIZED
    assert MockCharge.objects.get(reference=payment.gateway_reference).capture_count == 1


def kill_a_worker_during_the_capture(workers, booking: Booking, tmp_path):
    """A worker whose gateway captures and then hangs is SIGKILLed there: the capture is taken,
    the task never finished and its message was never acknowledged. Returns the gateway's marker
    file and the killed worker (for its output)."""
    marker = tmp_path / "captured"
    first = workers(PAYMENT_GATEWAY=FAULT_GATEWAY, FAULT_MARKER=str(marker))
    payment_authorize(booking=booking, card=card())
    wait_for(marker.exists, "the capture to reach the gateway")
    first.kill()
    assert_stuck_after_capture(booking)
    return marker, first


def test_a_real_worker_captures_confirms_and_mails(workers, booking, tmp_path):
    workers()

    payment_authorize(booking=booking, card=card())

    assert_confirmed_once(booking, tmp_path)


def test_a_worker_killed_during_a_capture_gets_the_message_again_after_a_restart(workers, booking, tmp_path):
    marker, first = kill_a_worker_during_the_capture(workers, booking, tmp_path)

    # acks_late: the message was never acknowledged, so Redis keeps it and hands it out again once
    # the visibility timeout has passed. The restarted worker runs with a visibility timeout of 0,
    # as if the hour had passed: when it starts it puts every unacknowledged message back in its
    # queue (kombu's startup sweep), receives the capture and finishes it. The gateway answers the
    # repeated capture (same idempotency key) with the first result, without taking money twice.
    # (With a small non-zero timeout the outcome would depend on how fast the worker starts: a
    # message not yet timed out at the startup sweep waits for kombu's next sweep, 100 s later.)
    second = workers(PAYMENT_GATEWAY=FAULT_GATEWAY, FAULT_MARKER=str(marker), CELERY_VISIBILITY_TIMEOUT="0")

    assert_confirmed_once(booking, tmp_path)
    [task_id] = CAPTURE_RECEIVED.findall(first.output())
    assert CAPTURE_RECEIVED.findall(second.output()) == [task_id]  # the same message, delivered again


def test_a_pool_process_killed_during_a_capture_is_requeued_at_once_by_its_worker(workers, booking, tmp_path):
    marker = tmp_path / "captured"
    # The default (one hour) visibility timeout: only reject_on_worker_lost can bring the message back.
    worker = workers(PAYMENT_GATEWAY=FAULT_GATEWAY, FAULT_MARKER=str(marker))
    payment_authorize(booking=booking, card=card())

    child = int(wait_for(lambda: marker.exists() and marker.read_text(), "the capture to reach the gateway"))
    assert child != worker.process.pid
    os.kill(child, signal.SIGKILL)  # the pool process only; the worker's main process lives on

    assert_confirmed_once(booking, tmp_path)
    log = worker.output()
    assert "WorkerLostError" in log and "signal 9 (SIGKILL)" in log
    assert log.count("payments.tasks.payment_capture_task[") >= 3  # received, received again, succeeded


def test_a_capture_stuck_unacknowledged_is_queued_again_by_payments_reconcile(workers, booking, tmp_path, broker):
    marker, first = kill_a_worker_during_the_capture(workers, booking, tmp_path)
    assert broker.hlen("unacked") == 1  # the message sits unacknowledged for the hour-long visibility timeout

    later = timezone.now() + timedelta(seconds=settings.PAYMENT_STUCK_AFTER_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        result = payments_reconcile()  # what beat runs every 2 minutes
    assert result.captures_requeued == 1
    second = workers(PAYMENT_GATEWAY=FAULT_GATEWAY, FAULT_MARKER=str(marker))

    assert_confirmed_once(booking, tmp_path)
    # A new message did it; the original still waits, unacknowledged, and will be a no-op when it returns.
    [original] = CAPTURE_RECEIVED.findall(first.output())
    assert CAPTURE_RECEIVED.findall(second.output()) != [original]
    assert broker.hlen("unacked") == 1
