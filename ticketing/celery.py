"""The Celery application: `celery -A ticketing worker` / `celery -A ticketing beat`."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketing.settings")

app = Celery("ticketing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_unsafe_start(**kwargs) -> None:
    """With DJANGO_DEBUG off, a worker or beat does not start on development defaults (core/checks.py).

    Celery logs and ignores an exception raised by a signal handler, so the refusal is an exit, its
    reason written to the real stderr (beat has sent its own to the log by then).
    """
    import sys

    import django
    from django.core.exceptions import ImproperlyConfigured

    django.setup()
    from core.checks import refuse_unsafe_start

    try:
        refuse_unsafe_start()
    except ImproperlyConfigured as exc:
        print(f"celery: {exc}", file=sys.__stderr__, flush=True)
        raise SystemExit(1) from None
