"""Shared pieces of the buyer site (the HTML door): domain errors as pages, form errors and messages.

Views call services and hand any `DomainError` to these helpers, so every page
maps errors the same way (CONVENTIONS.md, "One service, two doors"): input
errors become field errors, anticipated refusals a non-field error or a
message, and `Busy` (a lock timeout) the "very busy, try again" page, 503.
The site's reserve and pay forms are throttled like the API's (`throttled_response`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from core.errors import Busy, DomainError


def busy_response(request: HttpRequest, exc: Busy | None = None) -> HttpResponse:
    """The "very busy, try again" page: 503 with `Retry-After`, nothing was changed."""
    exc = exc or Busy()
    response = render(request, "503.html", {"detail": exc.detail}, status=503)
    response["Retry-After"] = str(getattr(exc, "retry_after", None) or Busy.retry_after)
    return response


def throttled_response(request: HttpRequest, *throttle_classes) -> HttpResponse | None:
    """The "too many requests" page (429 with `Retry-After`) when one of the API's throttles refuses
    this request, else None (the request is counted).

    The API's own throttle classes (`core.api.BookingsThrottle`, `PayThrottle`): the same
    scopes, rates (`API_THROTTLE_RATES`, `off` too) and Redis buckets, so a buyer's POSTs on
    the site and on the API count together.
    """
    from rest_framework.settings import api_settings

    if not api_settings.DEFAULT_THROTTLE_CLASSES:  # API_THROTTLE_RATES=off
        return None
    waits = []
    for throttle in (cls() for cls in throttle_classes):
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 1)
    if not waits:
        return None
    retry_after = max(1, int(max(waits) + 0.999))
    response = render(request, "429.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def form_add_domain_error(form: forms.Form, exc: DomainError) -> None:
    """Put a domain error on a form: its field errors where the form has the field, else the detail.

    A form whose field has another name than the service's says so in `error_fields`
    (the card form's one expiry field takes the errors of `exp_month` and `exp_year`).
    """
    placed = False
    renamed = getattr(form, "error_fields", {})
    for name, messages in (exc.errors or {}).items():
        field = renamed.get(name, name)
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, exc.detail)


def token_query(token: str | None) -> str:
    """`?token=...` for guest links (empty when the page was opened without a token)."""
    return f"?{urlencode({'token': token})}" if token else ""


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the site's page for a refused form (usually an old tab or blocked cookies)."""
    return render(request, "403_csrf.html", {"title": _("Form expired")}, status=403)
