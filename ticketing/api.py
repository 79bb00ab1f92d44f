"""REST API plumbing shared by every app: errors, auth, pagination, throttling.

One exception handler turns every domain error and every DRF error into the
problem-details body of DESIGN.md section 3, with a stable `code`; anything
unexpected becomes a logged, generic 500 body. Views never catch domain errors.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, pagination, throttling
from rest_framework.authentication import TokenAuthentication
from rest_framework.response import Response

from ticketing.errors import DomainError

logger = logging.getLogger(__name__)

# --- Errors ----------------------------------------------------------------------------

_TITLES = {
    400: "Invalid input", 401: "Not authenticated", 403: "Permission denied", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 415: "Unsupported media type",
    422: "Unprocessable request", 429: "Too many requests", 500: "Server error", 503: "Service unavailable",
}


def problem(status: int, code: str, detail: str, *, title: str | None = None,
            errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    body: dict[str, Any] = {"type": f"about:blank#{code}", "title": title or _TITLES.get(status, "Error"),
                            "status": status, "code": code, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(body, status=status, headers=headers)


def _field_errors(detail: Any) -> dict[str, list[str]]:
    """DRF's nested error detail flattened to {"field" or "field.0.sub": ["message", ...]}."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            flat.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                if sub:
                    walk(f"{prefix}.{i}" if prefix else str(i), sub)
        else:
            flat.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return flat


def exception_handler(exc: Exception, context: dict) -> Response:
    """Every error of the API as problem details (DESIGN.md section 3)."""
    if isinstance(exc, DomainError):
        retry = getattr(exc, "retry_after", None)
        response = Response(exc.as_problem(), status=exc.status,
                            headers={"Retry-After": str(retry)} if retry else None)
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        first = next(iter(errors.values()))[0] if errors else "Invalid input."
        return problem(400, "invalid", first, errors=errors)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        return problem(exc.status_code, code, str(exc.detail), headers=headers or None)
    logger.exception("unhandled error in %s", context.get("view").__class__.__name__ if context.get("view") else "?")
    return problem(500, "server_error", "Something went wrong on our side; nothing was charged twice. Try again.")


# --- Authentication: tokens, with the lookup cached ---------------------------------------------

_TOKEN_TTL = 60


def _token_cache_key(key: str) -> str:
    return "api-token:" + hashlib.sha256(key.encode()).hexdigest()


def forget_token(key: str) -> None:
    cache.delete(_token_cache_key(key))


def forget_user_tokens(user) -> None:
    from rest_framework.authtoken.models import Token

    for key in Token.objects.filter(user_id=user.pk).values_list("key", flat=True):
        forget_token(key)


class CachedTokenAuthentication(TokenAuthentication):
    """DRF token auth whose token -> user lookup is cached for a minute.

    The hot path (one request per reservation) then costs a cache read instead
    of a join on every request. Deleting a token or saving its user drops the
    cache entry (ticketing/signals.py), so revocation takes effect at once.
    """

    def authenticate_credentials(self, key: str):
        cache_key = _token_cache_key(key)
        user = cache.get(cache_key)
        if user is None:
            user, token = super().authenticate_credentials(key)
            cache.set(cache_key, user, _TOKEN_TTL)
            return user, token
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key


# --- Pagination ----------------------------------------------------------------------------------


class Pagination(pagination.PageNumberPagination):
    """`{"count", "next", "previous", "results"}`; 50 per page, `page_size` up to 200."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


# --- Throttling -----------------------------------------------------------------------------------


class IPRateThrottle(throttling.SimpleRateThrottle):
    """Every caller, logged in or not, by client address."""

    scope = "ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _ScopedUserOrIPThrottle(throttling.SimpleRateThrottle):
    def get_cache_key(self, request, view):
        ident = f"user-{request.user.pk}" if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        return super().allow_request(request, view)

    def get_rate(self):
        from django.conf import settings

        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
        return rates.get(self.scope)


class BookingsThrottle(_ScopedUserOrIPThrottle):
    """Reserving and cancelling: tighter than the general rate."""

    scope = "bookings"


class PayThrottle(_ScopedUserOrIPThrottle):
    """Paying and refunding: the tightest rate."""

    scope = "pay"


class ScopedThrottleMixin:
    """A view adds its tighter scope (`extra_throttles`) to the defaults, unless throttling is off."""

    extra_throttles: tuple = ()

    def get_throttles(self):
        throttles = super().get_throttles()
        if not throttles:  # API_THROTTLE_RATES=off
            return throttles
        return [*throttles, *(cls() for cls in self.extra_throttles)]
