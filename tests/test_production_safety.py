"""Production safety (issue 15, item 13): with DJANGO_DEBUG off the app refuses development defaults at
start-up (manage.py, gunicorn, Celery); the proxy's HTTPS header is believed only when a setting says so;
card numbers stay out of error reports."""

from __future__ import annotations

import logging
import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.views.debug import ExceptionReporter

from core.checks import PRODUCTION, refuse_unsafe_start

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GOOD_KEY = "a-real-key-" + "x7Q2" * 12
CARD = "4111111111111111"


def production_errors() -> dict[str, str]:
    return {m.id: m.msg for m in checks.run_checks(tags=[PRODUCTION]) if m.is_serious()}


@pytest.fixture
def production(settings):
    """Debug off with every production setting right; each test breaks one."""
    settings.DEBUG = False
    settings.DEMO = False
    settings.SECRET_KEY = GOOD_KEY
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_ALLOW_CONSOLE = False
    settings.PAYMENT_GATEWAY = "payments.gateway.Gateway"  # any gateway but the mock
    settings.PAYMENT_GATEWAY_ALLOW_MOCK = False
    return settings


# --- The checks ---------------------------------------------------------------------------------------


def test_a_production_configuration_passes(production):
    assert production_errors() == {}
    refuse_unsafe_start()


@pytest.mark.parametrize("key", ["django-insecure-development-key-set-DJANGO_SECRET_KEY-in-production",
                                 "django-insecure-" + "k" * 50])
def test_the_development_secret_key_is_refused(production, key):
    production.SECRET_KEY = key

    errors = production_errors()

    assert set(errors) == {"ticketing.E001"}
    assert "DJANGO_SECRET_KEY" in errors["ticketing.E001"]


@pytest.mark.parametrize("backend", ["console", "dummy", "locmem"])
def test_mail_that_goes_nowhere_is_refused_unless_allowed(production, backend):
    production.EMAIL_BACKEND = f"django.core.mail.backends.{backend}.EmailBackend"

    assert set(production_errors()) == {"ticketing.E002"}
    production.EMAIL_ALLOW_CONSOLE = True
    assert production_errors() == {}


def test_the_mock_gateway_is_refused_unless_allowed(production):
    production.PAYMENT_GATEWAY = "payments.mock_gateway.MockGateway"

    errors = production_errors()
    assert set(errors) == {"payments.E001"}
    assert "PAYMENT_GATEWAY_ALLOW_MOCK" in checks.run_checks(tags=[PRODUCTION])[0].hint
    production.PAYMENT_GATEWAY_ALLOW_MOCK = True
    assert production_errors() == {}


def test_with_debug_on_the_development_defaults_are_fine(settings):
    settings.DEBUG = True
    settings.SECRET_KEY = "django-insecure-development-key-set-DJANGO_SECRET_KEY-in-production"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.PAYMENT_GATEWAY = "payments.mock_gateway.MockGateway"

    assert production_errors() == {}


def test_refusing_to_start_names_every_problem(production):
    production.SECRET_KEY = "django-insecure-x"
    production.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    production.PAYMENT_GATEWAY = "payments.mock_gateway.MockGateway"

    with pytest.raises(ImproperlyConfigured) as refused:
        refuse_unsafe_start()

    message = str(refused.value)
    for name in ("DJANGO_SECRET_KEY", "EMAIL_ALLOW_CONSOLE", "PAYMENT_GATEWAY_ALLOW_MOCK"):
        assert name in message


# --- At start-up: manage.py, gunicorn, Celery (real processes) ----------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DJANGO_SECRET_KEY", "EMAIL_URL", "PAYMENT_GATEWAY", "EMAIL_ALLOW_CONSOLE",
                        "PAYMENT_GATEWAY_ALLOW_MOCK", "CELERY_BROKER_URL", "DJANGO_DEMO"}}
    env.update(DJANGO_SETTINGS_MODULE="ticketing.settings", DJANGO_DEBUG="false", **extra)
    return env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


REFUSED = ("ticketing.E001", "ticketing.E002", "payments.E001")


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    [sys.executable, "manage.py", "check"],
    [sys.executable, "manage.py", "migrate", "--plan"],
    [str(BIN / "gunicorn"), "ticketing.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
    [str(BIN / "celery"), "-A", "ticketing", "worker", "--loglevel=INFO", "--concurrency=1"],
    [str(BIN / "celery"), "-A", "ticketing", "beat", "--loglevel=INFO", "--schedule", "{tmp}/beat-schedule"],
], ids=["manage-check", "manage-migrate", "gunicorn", "celery-worker", "celery-beat"])
def test_the_app_refuses_to_start_with_debug_off_on_development_defaults(command, tmp_path):
    result = _run([part.format(tmp=tmp_path) for part in command], _env())

    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    for check_id in REFUSED:
        assert check_id in output, output[-2000:]


@pytest.mark.slow
def test_a_production_shaped_environment_passes_the_start_up_checks():
    env = _env(DJANGO_SECRET_KEY=secrets.token_urlsafe(50), EMAIL_URL="smtp://mail.example.com:587",
               PAYMENT_GATEWAY_ALLOW_MOCK="true")

    result = _run([sys.executable, "manage.py", "check"], env)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_demo_mode_passes_the_start_up_checks_on_the_development_defaults():
    """The run command (DJANGO_DEMO=true, DJANGO_DEBUG=false): a demo on the embedded defaults starts."""
    result = _run([sys.executable, "manage.py", "check"], _env(DJANGO_DEMO="true"))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_makemigrations_runs_on_the_development_defaults_with_debug_off():
    """It writes files and serves nothing: `manage.py makemigrations --check` works on a fresh checkout."""
    result = _run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], _env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


# --- The proxy's HTTPS header ---------------------------------------------------------------------


def _settings_module(monkeypatch, **env: str) -> dict:
    for name in ("DJANGO_SECURE_PROXY_SSL_HEADER",):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "ticketing" / "settings.py"))


def test_the_proxy_https_header_is_not_believed_by_default(monkeypatch):
    assert _settings_module(monkeypatch)["SECURE_PROXY_SSL_HEADER"] is None


def test_the_proxy_https_header_is_believed_when_a_setting_says_a_proxy_sets_it(monkeypatch):
    values = _settings_module(monkeypatch, DJANGO_SECURE_PROXY_SSL_HEADER="true")

    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.django_db
def test_without_a_trusted_proxy_a_forged_https_header_changes_nothing(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    request = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https").wsgi_request

    assert not request.is_secure()
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/healthz", HTTP_X_FORWARDED_PROTO="https").wsgi_request.is_secure()


# --- Card numbers stay out of error reports -------------------------------------------------------------


class _Reports(logging.Handler):
    """What an error report (AdminEmailHandler's HTML mail, the debug page) shows of each logged exception:
    every frame's local variables and the request's POST data, as Django's reporter filters them."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            reporter = ExceptionReporter(getattr(record, "request", None), *record.exc_info, is_email=True)
            data = reporter.get_traceback_data()
            self.texts.append("\n".join([
                *(f"{frame['function']}: {frame['vars']}" for frame in data["frames"]),
                str(data.get("filtered_POST_items")),
                reporter.get_traceback_html(),
            ]))


@pytest.fixture
def reports():
    handler = _Reports()
    loggers = [logging.getLogger(name) for name in ("django.request", "core.api")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def broken_gateway(monkeypatch):
    """A gateway that fails unexpectedly while it holds the card."""
    from payments.mock_gateway import MockGateway

    def authorize(self, *, card, amount, currency, idempotency_key):
        raise RuntimeError("the processor's SDK crashed")

    monkeypatch.setattr(MockGateway, "authorize", authorize)


@pytest.mark.django_db
def test_an_api_payment_that_fails_unexpectedly_reports_no_card_number(reports, broken_gateway):
    from rest_framework.test import APIClient

    from bookings.tests.factories import make_booking
    from core.tokens import api_token_create
    from events.tests.factories import TicketTypeFactory, UserFactory

    buyer = UserFactory()
    booking = make_booking(items=[(TicketTypeFactory(), 1)], buyer=buyer, email=buyer.email)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=buyer)}")

    response = client.post(f"/api/v1/bookings/{booking.pk}/pay/", {
        "card_number": CARD, "exp_month": 12, "exp_year": 2099, "cvc": "987", "cardholder_name": "Ada",
    }, format="json")

    assert response.status_code == 500
    assert reports.texts, "no error report"
    for text in reports.texts:
        assert "RuntimeError" in text
        assert CARD not in text


@pytest.mark.django_db
def test_a_site_payment_that_fails_unexpectedly_reports_no_card_number(reports, broken_gateway):
    from django.test import Client

    from bookings.tests.factories import make_booking
    from events.tests.factories import TicketTypeFactory

    booking = make_booking(items=[(TicketTypeFactory(), 1)], email="guest@example.com")
    client = Client(raise_request_exception=False)

    response = client.post(f"/bookings/{booking.pk}/pay/?token={booking.access_token}", {
        "card_number": CARD, "expiry": "12/2099", "cvc": "987", "cardholder_name": "Ada",
    })

    assert response.status_code == 500
    assert reports.texts, "no error report"
    for text in reports.texts:
        assert "RuntimeError" in text
        assert CARD not in text
