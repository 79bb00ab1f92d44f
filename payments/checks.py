"""Production safety of payments: the mock gateway is refused with DJANGO_DEBUG off unless allowed
or in demo mode (see core/checks.py)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from core.checks import PRODUCTION, development_defaults_allowed


@checks.register(PRODUCTION)
def gateway_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from payments.mock_gateway import MockGateway

    try:
        gateway = import_string(settings.PAYMENT_GATEWAY)
    except ImportError as exc:
        return [checks.Error(f"PAYMENT_GATEWAY {settings.PAYMENT_GATEWAY!r} cannot be imported: {exc}",
                             id="payments.E002")]
    if development_defaults_allowed() or settings.PAYMENT_GATEWAY_ALLOW_MOCK or not issubclass(gateway, MockGateway):
        return []
    return [checks.Error(
        f"DJANGO_DEBUG is off but PAYMENT_GATEWAY is the mock gateway ({settings.PAYMENT_GATEWAY}): "
        "it takes no money.",
        hint="Set PAYMENT_GATEWAY to a real gateway class, or PAYMENT_GATEWAY_ALLOW_MOCK=true for a demo.",
        id="payments.E001",
    )]
