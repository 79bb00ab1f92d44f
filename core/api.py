"""REST API plumbing shared by every app: errors, auth, pagination, throttling.

One exception handler turns every domain error and every DRF error into the
problem-details body of DESIGN.md section 3, with a stable `code`; anything
unexpected becomes a logged, generic 500 body. Views never catch domain errors.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema_field
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework import exceptions, metadata, pagination, parsers, serializers, throttling
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core import tokens
from core.client_ip import client_ip
from core.errors import DomainError

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
    """Any /api/v1/ path that no route matches (a malformed id, a typo): the problem body of a 404,
    not the site's HTML page. Last in the API's URLconf."""
    return JsonResponse({"type": "about:blank#not_found", "title": _TITLES[404], "status": 404, "code": "not_found",
                         "detail": "Not found."}, status=404)


# --- Input -------------------------------------------------------------------------------------------

# (field class, JSON types the OpenAPI schema gives it, how to say so); first match wins.
_JSON_TYPES: tuple = (
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "a whole number"),
    (serializers.DecimalField, (str,), "a decimal string such as \"49.00\""),
    (serializers.CharField, (str,), "a string"),
    (serializers.UUIDField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _wrong_json_type(field: serializers.Field, value: Any) -> str | None:
    """Why `value`, as parsed from JSON, does not have the type the schema gives `field`; None if it does."""
    if value is None:
        return None  # the field's own `allow_null` decides
    if isinstance(field, serializers.ListField):
        items = value if isinstance(value, list) else []
        return next((reason for item in items if (reason := _wrong_json_type(field.child, item))), None)
    for field_class, types, label in _JSON_TYPES:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types:
                return f"Must be {label}."
            if field_class is serializers.IntegerField and isinstance(value, float) and value.is_integer():
                return None  # 2.0 is a JSON Schema integer
            return None if isinstance(value, types) else f"Must be {label}."
    return None


def _unlike_declared(field: serializers.Field, value: Any) -> str | None:
    """Why a string, as sent, breaks a rule the schema declares for it; None if it does not.

    DRF checks a string's length and pattern after trimming it, and takes a UUID in any form
    `uuid.UUID` parses; the schema states them on the string as sent (`format: uuid` is the
    hyphenated form), so the server checks them so too. The checks of a field are worked out
    once (fields are shared, see `validated`): this runs on every reservation.
    """
    if isinstance(value, str):
        check = field.__dict__.get("_as_sent", _UNSET)
        if check is _UNSET:
            check = field.__dict__["_as_sent"] = _string_check(field)
        return check(value) if check is not None else None
    if isinstance(value, list) and isinstance(field, serializers.ListField):
        return next((reason for item in value if (reason := _unlike_declared(field.child, item))), None)
    return None


_UNSET = object()


def _string_check(field: serializers.Field):
    """The check of a string as sent for `field`, or None when DRF's own is already as strict."""
    if isinstance(field, serializers.UUIDField):
        message = str(field.error_messages["invalid"])
        return lambda value: None if _UUID.fullmatch(value) else message
    if not isinstance(field, serializers.CharField):
        return None
    email = isinstance(field, serializers.EmailField)  # `format: email` has no spaces around it
    longest, shortest = field.max_length, field.min_length
    patterns = [v for v in field.validators if isinstance(v, RegexValidator)]

    def check(value: str) -> str | None:
        if email and value != value.strip():
            return str(field.error_messages["invalid"])
        if longest is not None and len(value) > longest:
            return str(field.error_messages["max_length"]).format(max_length=longest)
        if shortest is not None and len(value) < shortest:
            return str(field.error_messages["min_length"]).format(min_length=shortest)
        for validator in patterns:
            try:
                validator(value)
            except DjangoValidationError as exc:
                return exc.messages[0]
        return None

    return check


class StrictInput(serializers.Serializer):
    """An input serializer that takes exactly the JSON values its OpenAPI schema documents.

    DRF's fields coerce: 12 becomes "12" for a string, "12" becomes 12 for a
    whole number, 12 becomes a UUID. A value of the wrong type is a 400 like any
    other invalid value, and so is a string that breaks its declared length or
    pattern as sent (DRF would trim it first), so the API accepts exactly what its
    schema documents.
    """

    json_types = True

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {
                name: [reason] for name, field in self.fields.items()
                if name in data and not field.read_only
                and (reason := (self.json_types and _wrong_json_type(field, data[name]))
                     or _unlike_declared(field, data[name]))
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictQuery(StrictInput):
    """Query filters (always strings), checked as sent like `StrictInput`'s strings."""

    json_types = False


class Rendered:
    """Output serializers that read nothing from their context: `render(instance)` answers
    `cls(instance).data`, from one instance of the serializer per process (see `validated`)."""

    @classmethod
    def render(cls, instance, *, many: bool = False):
        return _shared_serializer(cls, many=many).to_representation(instance)


def validated(serializer_class: type[serializers.Serializer], data, *, partial: bool = False) -> dict[str, Any]:
    """What `serializer_class(data=data, partial=partial).is_valid(raise_exception=True)` validates
    (a 400 with the field errors otherwise), from one instance of the serializer per process.

    DRF builds a serializer's fields on every instantiation (deep copies of the declared
    fields; for a ModelSerializer, fields derived from the model's), which costs far more than
    validating or rendering a small body: on the reservation path it was a third of the CPU.
    Fields keep no state between uses, so one instance serves every request. For serializers
    that read nothing from their context.
    """
    try:
        return _shared_serializer(serializer_class, partial=partial).run_validation(data)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(exc.detail) from None


@functools.cache
def _shared_serializer(serializer_class: type[serializers.BaseSerializer], *, many: bool = False,
                       partial: bool = False) -> serializers.BaseSerializer:
    return serializer_class(many=many, partial=partial)


MONEY_PATTERN = r"^\d{1,8}(\.\d{1,2})?$"


@extend_schema_field({"type": "string", "format": "decimal", "pattern": MONEY_PATTERN, "example": "49.00"})
class MoneyField(serializers.DecimalField):
    """An amount in: a decimal string such as "49.00" (DESIGN.md section 9), at least 0, at most 2 places.

    Only the plain form: no number, sign, exponent or blanks, which DRF's DecimalField would take.
    """

    def __init__(self, **kwargs):
        super().__init__(max_digits=10, decimal_places=2, min_value=0, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(MONEY_PATTERN, data):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Query parameters ----------------------------------------------------------------------------


def query_filters(filter_class: type[serializers.Serializer], request) -> dict[str, Any]:
    """The request's query filters, validated by `filter_class` (400 with field errors otherwise).

    Validated as a plain dict, so a filter given empty (`?status=`) is refused like any
    other bad value instead of being dropped as an empty HTML form field would be: the
    OpenAPI schema documents no empty values.
    """
    names = _shared_serializer(filter_class).fields.keys()
    return dict(validated(filter_class, {k: v for k, v in request.query_params.items() if k in names}))


# --- Authentication: tokens, with the lookup cached ---------------------------------------------


class CachedTokenAuthentication(knox_auth.TokenAuthentication):
    """`Authorization: Token <key>`: django-rest-knox's hashed tokens, whose lookup is cached for a minute.

    The hot path (one request per reservation) then costs a digest and a cache read
    instead of a join on every request. Revoking a token, changing its user's password
    or saving the user drops or blocks the cache entry, and an expiry is checked on
    every request, so a token stops working at once (core/tokens.py).
    `request.auth` is the token's digest.
    """

    def authenticate_credentials(self, token: bytes):
        try:
            key = token.decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_INVALID_TOKEN) from None
        digest = hash_token(key)
        entry = tokens.cached_token(digest)
        if entry is None:
            row = AuthToken.objects.select_related("user").filter(digest=digest).first()
            if row is None or _expired(row.expiry):
                raise exceptions.AuthenticationFailed(_INVALID_TOKEN)
            user, expiry = row.user, row.expiry
            tokens.remember_token(digest, user, expiry)
        elif entry == tokens.REVOKED:
            raise exceptions.AuthenticationFailed(_INVALID_TOKEN)
        else:
            user, expiry = entry
            if expiry is not None and _expired(expiry):
                raise exceptions.AuthenticationFailed(_INVALID_TOKEN)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, digest


_INVALID_TOKEN = "Invalid token."  # noqa: S105 - a message, not a secret


def _expired(expiry) -> bool:
    return expiry is not None and expiry <= timezone.now()


# --- Pagination ----------------------------------------------------------------------------------


class Pagination(pagination.PageNumberPagination):
    """`{"count", "next", "previous", "results"}`; 50 per page, `page_size` up to 200.

    A `page` or `page_size` that is not a whole number of at least 1 is a 400, as the schema
    says (DRF would take an empty `page` as the first, "last" as the last, and silently use the
    default size); a page past the end is a 404; a `page_size` above 200 gives 200.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not re.fullmatch(r"[1-9][0-9]*", raw):  # any size: past the end is a 404
            raise exceptions.ValidationError({self.page_query_param: ["Enter a whole number of at least 1."]})
        return raw or 1

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise exceptions.ValidationError({self.page_size_query_param: ["Enter a whole number of at least 1."]})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Results per page (default {self.page_size}, at most {self.max_page_size})."
        return parameters


# --- Throttling -----------------------------------------------------------------------------------


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


class Metadata(metadata.SimpleMetadata):
    """OPTIONS: name, description, renders and parses, without DRF's per-field `actions`.

    The views declare no `serializer_class` (their nested Input serializers and the
    OpenAPI schema describe the input), so building `actions` would fail with a 500.
    """

    def determine_actions(self, request, view):
        return {}


class ScopedThrottleMixin:
    """Every API view: a view adds its tighter scope (`extra_throttles`) to the default throttles,
    unless throttling is off; OPTIONS is answered by `Metadata`.

    Permissions in two steps around the throttles (DRF checks throttles after all of them):
    first those that only ask who is calling (an anonymous write is 401 at once, as before);
    then, once the caller is within its rate, those that read the resource of the URL
    (`reads_resource = True`: the booking a guest token opens, the event an organizer
    writes), so a throttled caller costs no read and a refused lookup counts like any call.
    """

    extra_throttles: tuple = ()
    metadata_class = Metadata

    def check_permissions(self, request):
        permissions = self.get_permissions()
        self._check_each(request, [p for p in permissions if not getattr(p, "reads_resource", False)])
        self.check_throttles(request)
        self._check_each(request, [p for p in permissions if getattr(p, "reads_resource", False)])

    def _check_each(self, request, permissions) -> None:
        for permission in permissions:  # DRF's `check_permissions` loop
            if not permission.has_permission(request, self):
                self.permission_denied(request, message=getattr(permission, "message", None),
                                       code=getattr(permission, "code", None))

    def check_throttles(self, request):
        if getattr(request, "_throttles_checked", False):  # DRF's `initial` asks again after permissions
            return
        request._throttles_checked = True
        super().check_throttles(request)

    def get_throttles(self):
        # `APIView.throttle_classes` is read from the settings once, at import; read them now so
        # that a settings change (API_THROTTLE_RATES=off in a test, a load test) applies.
        classes = api_settings.DEFAULT_THROTTLE_CLASSES
        if not classes:  # API_THROTTLE_RATES=off
            return []
        return [cls() for cls in (*classes, *self.extra_throttles)]


# --- Parsing --------------------------------------------------------------------------------------


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with JSON nested too deeply for Python's parser answered 400, not 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
