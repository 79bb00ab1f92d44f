"""Every API error as a problem-details body (DESIGN.md section 3) with a stable `code`.

Domain errors and DRF errors map to their status and code; anything unexpected is logged
and answered with a generic 500 body. Views never catch domain errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.errors import DomainError

logger = logging.getLogger(__name__)

_TITLES = {
    400: "Invalid input", 401: "Not authenticated", 403: "Permission denied", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 415: "Unsupported media type",
    422: "Unprocessable request", 429: "Too many requests", 500: "Server error", 503: "Service unavailable",
}


def problem(status: int, code: str, detail: str, *, title: str | None = None,
            errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    """A problem-details response: `type`, `title`, `status`, `code`, `detail`, and `errors` when given."""
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
                if key == api_settings.NON_FIELD_ERRORS_KEY and prefix:
                    walk(prefix, sub)  # a nested list/serializer's own errors belong to its field: "items"
                else:
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


@csrf_exempt
def not_found(request, *args, **kwargs) -> JsonResponse:
    """Any /api/v1/ path that no route matches: the problem body of a 404, not the site's HTML page.
    Last in the API's URLconf."""
    return JsonResponse({"type": "about:blank#not_found", "title": _TITLES[404], "status": 404, "code": "not_found",
                         "detail": "Not found."}, status=404)
