"""The Celery wiring DESIGN.md section 8 asks for, read from the configured app."""

from datetime import timedelta

from django.conf import settings

from ticketing.celery import app


def route(name):
    return app.amqp.router.route({}, name)["queue"].name


def test_tasks_are_acknowledged_late_and_requeued_when_a_worker_dies():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit


def test_messages_are_json_only():
    assert app.conf.task_serializer == "json"
    assert app.conf.result_serializer == "json"
    assert list(app.conf.accept_content) == ["json"]


def test_three_queues_are_declared_so_a_plain_worker_consumes_them_all():
    assert {q.name for q in app.amqp.queues.values()} >= {"default", "payments", "mail"}
    assert app.conf.task_default_queue == "default"


def test_payments_and_mail_have_their_own_queues():
    assert route("payments.tasks.payment_capture_task") == "payments"
    assert route("payments.tasks.refund_process_task") == "payments"
    assert route("bookings.tasks.send_booking_confirmation") == "mail"
    assert route("payments.tasks.send_refund_confirmation") == "mail"
    assert route("bookings.tasks.holds_expire_task") == "default"
    assert route("payments.tasks.payments_reconcile_task") == "default"


def test_beat_runs_expiry_reconciliation_and_cleanup_on_registered_tasks():
    schedule = app.conf.beat_schedule
    assert schedule["holds-expire"]["schedule"] == timedelta(seconds=30)
    assert schedule["payments-reconcile"]["schedule"] == timedelta(minutes=2)
    app.loader.import_default_modules()
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]


def test_the_visibility_timeout_is_set_wherever_celery_reads_it_and_outlasts_a_task():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    broker = app.conf.broker_transport_options["visibility_timeout"]
    backend = app.conf.result_backend_transport_options["visibility_timeout"]
    assert broker == backend > app.conf.task_time_limit
