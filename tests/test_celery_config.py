"""The Celery wiring DESIGN.md section 8 asks for, read from the configured app (not from settings.py text)."""

import json
from contextlib import ExitStack
from datetime import timedelta
from unittest import mock

import pytest

from bookings.models import Booking
from bookings.tests.factories import make_booking
from events.tests.factories import TicketTypeFactory
from payments.models import Payment
from payments.services import payment_authorize, refund_issue
from payments.tests.conftest import card
from ticketing.celery import app

PROJECT_APPS = ("bookings.", "payments.", "events.", "core.")


def project_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith(PROJECT_APPS)}


def queue_of(task_name: str) -> str:
    """The queue a message for `task_name` really goes to, as the app's router decides it."""
    return app.amqp.router.route({}, task_name)["queue"].name


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit and conf.task_time_limit
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit


def test_every_project_task_inherits_late_acks_and_reject_on_worker_lost():
    tasks = project_tasks()
    assert {"payments.tasks.payment_capture_task", "bookings.tasks.holds_expire_task"} <= set(tasks)
    for name, task in tasks.items():
        assert task.acks_late is True, name
        assert task.reject_on_worker_lost is True, name


def test_messages_are_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_three_queues_are_declared_so_a_plain_worker_consumes_them_all():
    # A worker started without -Q consumes every queue in app.amqp.queues.
    declared = set(app.amqp.queues)
    assert declared >= {"default", "payments", "mail"}
    assert app.conf.task_default_queue == "default"


def test_captures_and_refunds_go_to_payments_and_mail_to_its_own_queue():
    assert queue_of("payments.tasks.payment_capture_task") == "payments"
    assert queue_of("payments.tasks.refund_process_task") == "payments"
    assert queue_of("bookings.tasks.send_booking_confirmation") == "mail"
    assert queue_of("payments.tasks.send_refund_confirmation") == "mail"
    assert queue_of("bookings.tasks.holds_expire_task") == "default"
    assert queue_of("payments.tasks.payments_reconcile_task") == "default"


def test_every_project_task_is_routed_to_a_declared_queue():
    declared = set(app.amqp.queues)
    for name in project_tasks():
        assert queue_of(name) in declared, name


def test_beat_expires_holds_every_30_seconds_and_reconciles_every_2_minutes_on_registered_tasks():
    schedule = app.conf.beat_schedule
    by_task = {entry["task"]: entry for entry in schedule.values()}
    assert by_task["bookings.tasks.holds_expire_task"]["schedule"] == timedelta(seconds=30)
    assert by_task["payments.tasks.payments_reconcile_task"]["schedule"] == timedelta(minutes=2)
    registered = project_tasks()
    for key, entry in schedule.items():
        assert entry["task"] in registered, (key, entry["task"])


def test_on_redis_the_visibility_timeout_is_set_for_broker_and_results_and_outlasts_a_task():
    # The suite runs on Redis (conftest.py refuses to start without it), so this is never skipped.
    assert app.conf.broker_url.startswith(("redis://", "rediss://")), app.conf.broker_url
    broker = app.conf.broker_transport_options["visibility_timeout"]
    backend = app.conf.result_backend_transport_options["visibility_timeout"]
    assert broker == backend
    assert broker > app.conf.task_time_limit
    # A retry waits in the worker, unacknowledged, for its countdown: a longer wait than the
    # visibility timeout would have Redis hand the same message to a second worker.
    for name, task in project_tasks().items():
        if getattr(task, "autoretry_for", ()):
            if getattr(task, "retry_backoff", False):
                longest_wait = getattr(task, "retry_backoff_max", 600)  # Celery's default cap
            else:
                longest_wait = task.default_retry_delay
            assert longest_wait < broker, name


@pytest.mark.django_db
def test_payment_authorize_queues_the_capture_with_the_payment_id_as_its_only_argument(
    django_capture_on_commit_callbacks,
):
    from payments.tasks import payment_capture_task

    booking = make_booking(items=[(TicketTypeFactory(capacity=5), 2)])

    with mock.patch.object(payment_capture_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            payment = payment_authorize(booking=booking, card=card())
        delay.assert_not_called()  # queued on commit, not before
        for callback in callbacks:
            callback()

    delay.assert_called_once_with(str(payment.pk))
    [args] = [call.args for call in delay.call_args_list]
    assert len(args) == 1 and type(args[0]) is str


@pytest.mark.django_db
def test_every_task_queued_in_a_purchase_and_refund_gets_only_plain_json_ids(django_capture_on_commit_callbacks):
    """Spy on apply_async of every project task (still running them eagerly) through the whole flow."""
    sent = []

    def spy(original):
        def apply_async(self, args=None, kwargs=None, **options):
            sent.append((self.name, tuple(args or ()), dict(kwargs or {})))
            return original(self, args, kwargs, **options)

        return apply_async

    booking = make_booking(items=[(TicketTypeFactory(capacity=5), 2)])
    with ExitStack() as stack:
        for task in project_tasks().values():
            cls = type(task)
            stack.enter_context(mock.patch.object(cls, "apply_async", spy(cls.apply_async)))
        with django_capture_on_commit_callbacks(execute=True):
            payment = payment_authorize(booking=booking, card=card())
        with django_capture_on_commit_callbacks(execute=True):
            refund = refund_issue(booking=booking)

    booking.refresh_from_db()
    assert booking.status == Booking.Status.REFUNDED
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert [name for name, _, _ in sent] == [
        "payments.tasks.payment_capture_task",
        "bookings.tasks.send_booking_confirmation",
        "payments.tasks.refund_process_task",
        "payments.tasks.send_refund_confirmation",
    ]
    expected_ids = [str(payment.pk), str(booking.pk), str(refund.pk), str(refund.pk)]
    for (name, args, kwargs), expected in zip(sent, expected_ids, strict=True):
        assert args == (expected,) and kwargs == {}, name
        assert all(type(a) is str for a in args), name
        assert json.loads(json.dumps([args, kwargs])) == [list(args), kwargs], name
