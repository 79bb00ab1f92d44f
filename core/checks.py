"""Production safety: with DJANGO_DEBUG off the app refuses to start on development defaults.

System checks tagged `production` (Error level). `manage.py` runs them before its
commands (migrate, runserver, check, ...); `refuse_unsafe_start()` runs them when
gunicorn loads the WSGI/ASGI application and when a Celery worker or beat starts
(ticketing/celery.py), so none of them serves with:
- the development secret key (ticketing.E001),
- console e-mail, which sends buyers nothing, unless EMAIL_ALLOW_CONSOLE=true (ticketing.E002),
- the mock payment gateway unless PAYMENT_GATEWAY_ALLOW_MOCK=true (payments.E001, payments/checks.py).
With DJANGO_DEBUG=true, or DJANGO_DEMO=true (the run command: a demo on the embedded defaults), they pass.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

PRODUCTION = "production"


def development_defaults_allowed() -> bool:
    """Whether the development defaults are meant: DEBUG on, or demo mode (DJANGO_DEMO, the run command)."""
    return bool(settings.DEBUG or getattr(settings, "DEMO", False))

# The settings' default key and the keys Django generates for development start with this.
_INSECURE_PREFIX = "django-insecure"
# Backends that deliver no mail to anyone: the console, a black hole, memory.
CONSOLE_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
}


@checks.register(PRODUCTION)
def secret_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if development_defaults_allowed():
        return []
    key = str(settings.SECRET_KEY or "")
    if key and not key.startswith(_INSECURE_PREFIX):
        return []
    return [checks.Error(
        "DJANGO_DEBUG is off but DJANGO_SECRET_KEY is the development key.",
        hint="Set DJANGO_SECRET_KEY to a long random value, e.g. the output of "
             "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'.",
        id="ticketing.E001",
    )]


@checks.register(PRODUCTION)
def email_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if (development_defaults_allowed() or settings.EMAIL_ALLOW_CONSOLE
            or settings.EMAIL_BACKEND not in CONSOLE_EMAIL_BACKENDS):
        return []
    return [checks.Error(
        f"DJANGO_DEBUG is off but e-mail goes nowhere ({settings.EMAIL_BACKEND}): buyers would get no tickets.",
        hint="Set EMAIL_URL to a mail server (smtp://user:password@host:587), or EMAIL_ALLOW_CONSOLE=true "
             "for a demo.",
        id="ticketing.E002",
    )]


def refuse_unsafe_start() -> None:
    """Raise ImproperlyConfigured naming every failed production check (none with DJANGO_DEBUG or DJANGO_DEMO on)."""
    errors = [message for message in checks.run_checks(tags=[PRODUCTION]) if message.is_serious()]
    if errors:
        raise ImproperlyConfigured("Refusing to start with DJANGO_DEBUG off:\n" + "\n".join(
            f"  {message}" for message in errors))
