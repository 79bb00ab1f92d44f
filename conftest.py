"""Suite-wide setup: the suite runs on PostgreSQL and Redis and fails, never skips, without them."""

import pytest

# The admin tests' two organizers (fixtures x, y, client_x), shared by events, bookings and payments;
# the lock rules (global lock order, nothing slow under a lock), checked on every test.
pytest_plugins = ["backoffice.tests.admin_support", "payments.tests.lock_rules"]


def pytest_sessionstart(session):
    from django.conf import settings

    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "core.postgresql":
        problems.append("DATABASE_URL must point at PostgreSQL (e.g. postgres://postgres@127.0.0.1:5432/ticketing)")
    if not settings.REDIS_URL:
        problems.append("REDIS_URL must point at Redis (e.g. redis://127.0.0.1:6379/15)")
    else:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis at {settings.REDIS_URL} is unreachable: {exc}")
    if problems:
        pytest.exit("The test suite needs PostgreSQL and Redis:\n  " + "\n  ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def _isolated_cache():
    from django.core.cache import cache

    from bookings.services import holds
    from events import permissions

    cache.clear()
    permissions._recent.clear()
    holds._RECENT_TYPES.clear()
    yield


@pytest.fixture(autouse=True)
def _plain_http_and_static(settings):
    """The test client speaks plain HTTP, and static files are not collected for tests."""
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _celery_eager():
    """Queued tasks run in-process when their transaction commits; the worker tests turn this off."""
    from ticketing.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False
