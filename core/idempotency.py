"""`Idempotency-Key` on API POSTs (DESIGN.md section 9).

The same key with the same body replays the first response and creates
nothing; with another body -> 422; while the first request still runs -> 409.
Keys are scoped to the caller and kept 24 hours. The first request's row is
committed as `in_progress` before it runs (so a concurrent duplicate is
answered 409 at once), and its response is written in the same transaction
as its effect: a crash in between leaves neither.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.api import problem
from core.client_ip import client_ip
from core.models import IdempotencyKey

HEADER = "Idempotency-Key"
# 1 to 255 printable ASCII characters, not starting or ending with a space (HTTP drops those).
KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER, {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER, required=False,
    description="Makes the request safe to retry: the same key with the same body replays the first response "
                "and creates nothing; with another body: 422; while the first still runs: 409. Keys are kept "
                "24 hours, per caller.",
)
# A request that has been running this long is presumed dead (its worker
# crashed before it could record a response): the key may be used again.
STALE_AFTER = timedelta(minutes=5)


def _scope(request) -> str:
    if request.user and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{client_ip(request)}"  # at most 48 characters: an address, never the caller's header


# Never hashed into a fingerprint: a hash of a card number is still card data.
SECRET_FIELDS = {"card_number": lambda v: f"*{str(v)[-4:]}/{len(str(v))}", "cvc": lambda v: "***"}


def _fingerprint(request) -> str:
    data = request.data
    if isinstance(data, dict):
        data = {k: SECRET_FIELDS[k](v) if k in SECRET_FIELDS else v for k, v in data.items()}
    body = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(*, atomic: bool = True, replay_allowed=None):
    """Make an API view's `post` honour `Idempotency-Key`.

    With `atomic`, the view and the recording of its response run in one
    transaction (the services' own transactions become savepoints of it).
    Views whose effect spans several transactions around a network call
    (paying) pass `atomic=False`: their response is recorded right after.

    A replay is answered only to a caller who may make the request now: the
    view's permission classes run before this wrapper on every request, the
    replayed ones too (the resource of the URL). `replay_allowed(request, body)`
    asks about a resource only the stored body names (the organizer of a
    created event); when it says no, the caller gets 403 and nothing replayed.
    """

    def decorate(post):
        @wraps(post)
        def wrapper(self, request, *args, **kwargs):
            key = request.headers.get(HEADER)
            if key is None:
                return post(self, request, *args, **kwargs)
            if not _KEY.fullmatch(key):
                return problem(400, "invalid_idempotency_key",
                               "Idempotency-Key must be 1 to 255 printable ASCII characters.")
            scope, fingerprint = _scope(request), _fingerprint(request)
            record, early = _begin(scope, key, request, fingerprint)
            if early is not None:
                if (replay_allowed is not None and early.get("Idempotent-Replayed") and early.status_code < 300
                        and not replay_allowed(request, early.data)):
                    raise exceptions.PermissionDenied()
                return early
            try:
                if atomic:
                    with transaction.atomic():
                        response = post(self, request, *args, **kwargs)
                        _complete(record, response)
                    return response
                response = post(self, request, *args, **kwargs)
            except Exception as exc:
                response = self.handle_exception(exc)
            _complete(record, response)
            return response

        wrapper.idempotency_key = True
        return wrapper

    return decorate


def honours_idempotency_key(handler) -> bool:
    """Whether a view's handler is wrapped by `idempotent` (the OpenAPI schema declares the header)."""
    return bool(getattr(handler, "idempotency_key", False))


def _begin(scope: str, key: str, request, fingerprint: str):
    """Claim the key; or the answer for a replay, a mismatch or a request still running."""
    now = timezone.now()
    expired = now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyKey.objects.filter(scope=scope, key=key).filter(
        created_at__lt=expired
    ).delete()
    IdempotencyKey.objects.filter(scope=scope, key=key, status=IdempotencyKey.Status.IN_PROGRESS,
                                  created_at__lt=now - STALE_AFTER).delete()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(scope=scope, key=key, method=request.method,
                                                   path=request.path[:500], fingerprint=fingerprint)
        return record, None
    except IntegrityError:
        pass
    existing = IdempotencyKey.objects.filter(scope=scope, key=key).first()
    if existing is None:  # deleted meanwhile (expired): treat as in flight, the client retries
        return None, problem(409, "idempotency_key_in_use", "A request with this Idempotency-Key is in progress.")
    if existing.fingerprint != fingerprint:
        return None, problem(422, "idempotency_key_reused",
                             "This Idempotency-Key was used with a different request.")
    if existing.status == IdempotencyKey.Status.IN_PROGRESS:
        return None, problem(409, "idempotency_key_in_use", "A request with this Idempotency-Key is in progress.",
                             headers={"Retry-After": "1"})
    response = Response(existing.response_body, status=existing.response_status)
    response["Idempotent-Replayed"] = "true"
    return None, response


def _complete(record: IdempotencyKey, response) -> None:
    """Record the response (4xx answers too: the same request gets the same answer); forget the
    key after a 5xx or a 429 (a limit that lifts: see Retry-After) so the client can try again."""
    if response.status_code >= 500 or response.status_code == 429:
        IdempotencyKey.objects.filter(pk=record.pk).delete()
        return
    data = getattr(response, "data", None)
    body = json.loads(JSONRenderer().render(data)) if data is not None else None
    IdempotencyKey.objects.filter(pk=record.pk).update(
        status=IdempotencyKey.Status.COMPLETED, response_status=response.status_code,
        response_body=body, completed_at=timezone.now(),
    )


def idempotency_keys_purge() -> int:
    """Delete keys older than their time to live; return how many."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
