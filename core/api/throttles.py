"""API throttles: rates read from the settings when a throttle is made; callers without an account
are told apart by client address."""

from __future__ import annotations

from rest_framework import throttling

from core.client_ip import client_ip


class _ClientIPIdent:
    """Callers without an account are told apart by `client_ip` (TRUSTED_PROXY_COUNT), never by an
    X-Forwarded-For the caller wrote itself."""

    def get_ident(self, request):
        return client_ip(request)


class _LiveRateThrottle(_ClientIPIdent, throttling.SimpleRateThrottle):
    """Reads its rate from the settings when it is made, not once at import (DRF's
    `THROTTLE_RATES` is a snapshot), so a settings change applies; no rate: no limit."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        return super().allow_request(request, view)

    def get_rate(self):
        from django.conf import settings

        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
        return rates.get(self.scope)


class AnonRateThrottle(_LiveRateThrottle, throttling.AnonRateThrottle):
    """DRF's `anon` rate (callers without an account), by client address."""


class UserRateThrottle(_LiveRateThrottle, throttling.UserRateThrottle):
    """DRF's `user` rate (callers without an account: by client address)."""


class IPRateThrottle(_LiveRateThrottle):
    """Every caller, logged in or not, by client address."""

    scope = "ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottle(IPRateThrottle):
    """The token endpoint: logins by client address, whatever the username (django-axes locks out
    one username at one address; this bounds guessing across usernames)."""

    scope = "login"


class _ScopedUserOrIPThrottle(_LiveRateThrottle):
    def get_cache_key(self, request, view):
        ident = f"user-{request.user.pk}" if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class BookingsThrottle(_ScopedUserOrIPThrottle):
    """Reserving and cancelling: tighter than the general rate."""

    scope = "bookings"


class PayThrottle(_ScopedUserOrIPThrottle):
    """Paying and refunding: the tightest rate."""

    scope = "pay"
