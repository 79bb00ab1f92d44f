"""Demo mode (issue 17 item 8): `python3 scripts/dev.py run` shows the site as a buyer sees it in production,
debug off, styled error pages, on the embedded development defaults that the production checks then allow."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.core import checks
from django.test import Client
from django.urls import reverse

from bookings.tests.factories import make_booking
from core.checks import PRODUCTION
from events.tests.factories import TicketTypeFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
DEV_KEY = "django-insecure-development-key-set-DJANGO_SECRET_KEY-in-production"


def _settings_module(monkeypatch, **env: str) -> dict:
    for name in ("DJANGO_DEBUG", "DJANGO_DEMO", "DJANGO_SECURE", "DJANGO_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "ticketing" / "settings.py"))


def test_demo_settings_have_debug_off_plain_http_cookies_and_whitenoise(monkeypatch):
    values = _settings_module(monkeypatch, DJANGO_DEMO="true", DJANGO_DEBUG="false")

    assert values["DEMO"] is True and values["DEBUG"] is False
    # Login over plain http: cookies without the Secure flag, no redirect to https.
    assert not values["SESSION_COOKIE_SECURE"] and not values["CSRF_COOKIE_SECURE"]
    assert not values["SECURE_SSL_REDIRECT"] and values["SECURE_HSTS_SECONDS"] == 0
    # Static files from whitenoise (collected by the run command), not from runserver.
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in values["MIDDLEWARE"]
    assert values["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"


def test_outside_demo_mode_debug_off_is_secure(monkeypatch):
    values = _settings_module(monkeypatch, DJANGO_DEBUG="false")

    assert values["DEMO"] is False
    assert values["SESSION_COOKIE_SECURE"] and values["SECURE_SSL_REDIRECT"]


def test_demo_mode_allows_the_development_defaults(settings):
    settings.DEBUG, settings.DEMO = False, True
    settings.SECRET_KEY = DEV_KEY
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    settings.EMAIL_ALLOW_CONSOLE = False
    settings.PAYMENT_GATEWAY = "payments.mock_gateway.MockGateway"
    settings.PAYMENT_GATEWAY_ALLOW_MOCK = False

    assert [m.id for m in checks.run_checks(tags=[PRODUCTION]) if m.is_serious()] == []

    settings.DEMO = False
    refused = {m.id for m in checks.run_checks(tags=[PRODUCTION]) if m.is_serious()}
    assert refused == {"ticketing.E001", "ticketing.E002", "payments.E001"}


# --- The styled error pages under demo settings -----------------------------------------------------------


@pytest.fixture
def demo(settings):
    """The run command's settings: demo mode, debug off, plain HTTP."""
    settings.DEBUG, settings.DEMO = False, True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = settings.SECURE_SSL_REDIRECT = False
    return settings


def styled_404(response) -> str:
    html = response.content.decode()
    assert response.status_code == 404
    assert "<title>Page not found · Ticketing</title>" in html
    assert 'href="/static/css/site.css"' in html or "/static/css/site." in html
    assert "Browse events" in html
    assert "Traceback" not in html and "DEBUG = True" not in html
    return html


@pytest.mark.django_db
def test_another_buyers_booking_is_the_styled_404(demo, client):
    booking = make_booking(items=[(TicketTypeFactory(), 1)], buyer=UserFactory(), email="owner@example.com")
    client.force_login(UserFactory())

    styled_404(client.get(booking.get_absolute_url()))


@pytest.mark.django_db
def test_a_page_number_past_the_end_is_the_styled_404(demo, client):
    client.force_login(UserFactory())

    styled_404(client.get(reverse("bookings:mine"), {"page": 999}))
    styled_404(client.get(reverse("bookings:mine"), {"page": "x"}))
    styled_404(client.get(reverse("events:list"), {"page": 999}))


@pytest.mark.django_db
def test_an_error_is_the_styled_500(demo, monkeypatch):
    from events import views

    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views.EventListView, "get", broken)

    response = Client(raise_request_exception=False).get(reverse("events:list"))

    html = response.content.decode()
    assert response.status_code == 500
    assert "<title>Something went wrong · Ticketing</title>" in html
    assert "/static/css/site." in html
    assert "RuntimeError" not in html
