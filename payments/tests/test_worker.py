"""A real Celery worker process on the Redis broker: the pay -> capture -> confirm path, and a worker
SIGKILLed in the middle of a capture."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from bookings.models import Booking, Ticket
from bookings.tests.factories import make_booking
from events.tests.factories import TicketTypeFactory
from payments.models import MockCharge, Payment
from payments.services import payment_authorize
from payments.tests.conftest import card
from ticketing.celery import app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60  # seconds a real worker may take to start or to finish the work


def wait_for(predicate, what, timeout=DEADLINE):
    """Poll a real process's effect (not a clock): fail with `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Worker:
    def __init__(self, tmp_path, **extra_env):
        db = connection.settings_dict
        self.log = tmp_path / f"worker-{time.monotonic_ns()}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "ticketing.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "EMAIL_URL": f"filemail:///{tmp_path / 'mail'}",  # four slashes: an absolute path
            "CELERY_VISIBILITY_TIMEOUT": "1",
            **extra_env,
        }
        self.env.pop("CELERY_BROKER_URL", None)
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "ticketing", "worker", "--loglevel=INFO",
             "--concurrency=1", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(lambda: " ready." in self.log.read_text(), "the worker to be ready")
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def real_broker(_celery_eager):
    """Tasks go to Redis (not run in-process), with an empty broker database before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    app.conf.task_always_eager = False
    yield
    client.flushdb()


@pytest.fixture
def workers(tmp_path, real_broker):
    started = []

    def start(**extra_env):
        worker = Worker(tmp_path, **extra_env).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def status(booking):
    return Booking.objects.values_list("status", flat=True).get(pk=booking.pk)


def test_a_real_worker_captures_confirms_and_mails(workers, tmp_path):
    workers()
    tt = TicketTypeFactory(capacity=5)
    booking = make_booking(items=[(tt, 2)])

    payment_authorize(booking=booking, card=card())

    wait_for(lambda: status(booking) == Booking.Status.CONFIRMED, "the booking to be confirmed")
    assert Payment.objects.get().status == Payment.Status.CAPTURED
    assert MockCharge.objects.get().capture_count == 1
    assert set(Ticket.objects.filter(booking=booking).values_list("status", flat=True)) == {"issued"}
    mail_dir = tmp_path / "mail"
    wait_for(lambda: mail_dir.exists() and any(mail_dir.iterdir()), "the confirmation e-mail")
    [message] = list(mail_dir.iterdir())
    assert "Your tickets for" in message.read_text()


def test_a_worker_killed_during_a_capture_captures_exactly_once_after_a_restart(workers, tmp_path):
    marker = tmp_path / "captured"
    first = workers(PAYMENT_GATEWAY="payments.tests.fault_gateway.HangAfterCaptureGateway",
                    FAULT_MARKER=str(marker))
    tt = TicketTypeFactory(capacity=5)
    booking = make_booking(items=[(tt, 2)])
    payment_authorize(booking=booking, card=card())

    wait_for(marker.exists, "the capture to reach the gateway")
    first.kill()  # SIGKILL, main process and pool child: no chance to acknowledge or clean up

    assert status(booking) == Booking.Status.PROCESSING
    assert Payment.objects.get().status == Payment.Status.AUTHORIZED
    assert MockCharge.objects.get().capture_count == 1  # the money was taken, our record was not written

    # acks_late: the task was never acknowledged, so Redis hands it to the next worker.
    workers(PAYMENT_GATEWAY="payments.tests.fault_gateway.HangAfterCaptureGateway", FAULT_MARKER=str(marker))

    wait_for(lambda: status(booking) == Booking.Status.CONFIRMED, "the redelivered capture to confirm")
    assert Payment.objects.get().status == Payment.Status.CAPTURED
    assert MockCharge.objects.get().capture_count == 1  # exactly one capture at the gateway
    call_command("check_inventory")
