"""OpenAPI pieces shared by every app's API: the problem-details body, common error responses, the
schema generator that declares what DRF enforces, and the OpenAPI links between operations."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.validators import RegexValidator
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object, get_lib_doc_excludes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ProblemSerializer(serializers.Serializer):
    """Every error body (DESIGN.md section 3)."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField(help_text="Stable machine-readable error code, e.g. `sold_out`.")
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="Field errors, by field name.")


def _problem(description: str, example_code: str | None = None, status: int = 400, detail: str = "") -> OpenApiResponse:
    examples = []
    if example_code:
        examples.append(OpenApiExample(example_code, value={
            "type": f"about:blank#{example_code}", "title": description, "status": status, "code": example_code,
            "detail": detail or description,
        }, response_only=True, status_codes=[str(status)]))
    return OpenApiResponse(ProblemSerializer, description=description, examples=examples)


BAD_INPUT = _problem("Invalid input (field errors under `errors`)", "invalid", 400, "This field is required.")
UNAUTHENTICATED = _problem("Not authenticated", "not_authenticated", 401,
                           "Authentication credentials were not provided.")
FORBIDDEN = _problem("Permission denied", "permission_denied", 403)
NOT_FOUND = _problem("Not found", "not_found", 404)
CONFLICT = _problem("Conflict with the current state (e.g. `sold_out`, `hold_expired`, `invalid_transition`, "
                    "`hold_limit_reached`, `ticket_limit_reached`)",
                    "sold_out", 409, "Only 3 'General' tickets left.")
UNPROCESSABLE = _problem("Idempotency-Key reused with another body", "idempotency_key_reused", 422)
THROTTLED = _problem("Too many requests (see Retry-After): `throttled`, or `ip_hold_limit_reached` (a reservation)",
                     "throttled", 429)
BUSY = _problem("Very busy, try again (see Retry-After)", "busy", 503)
GUEST_LINK_EXPIRED = _problem("The guest link (`?token=`) expired: GUEST_LINK_VALID_DAYS_AFTER_EVENT days after "
                              "the event ended", "guest_link_expired", 410)
DECLINED = _problem("Card declined (`card_declined`, `insufficient_funds`, `expired_card`, `incorrect_cvc`)",
                    "card_declined", 402, "Your card was declined.")

READ_ERRORS = {400: BAD_INPUT, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 429: THROTTLED}
WRITE_ERRORS = {**READ_ERRORS, 409: CONFLICT, 422: UNPROCESSABLE, 503: BUSY}

token_response = inline_serializer("TokenResponse", {"token": serializers.CharField()})


class TokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <key>` (core.api.CachedTokenAuthentication), named as DRF's token auth was."""

    target_class = "core.api.CachedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization",
                                                   token_prefix=self.target.authenticate_header(None))


# --- What the generator does not see ---------------------------------------------------------------------------


def _char_class(characters: str) -> str:
    """A regex character class body for `characters`, as \\uXXXX escapes (ECMA-262 and Python alike)."""
    codes = sorted({ord(c) for c in characters})
    parts, start = [], None
    for i, code in enumerate(codes):
        start = code if start is None else start
        if i + 1 == len(codes) or codes[i + 1] != code + 1:
            parts.append(f"\\u{start:04x}" if start == code else f"\\u{start:04x}-\\u{code:04x}")
            start = None
    return "".join(parts)


# What `str.strip()` removes (DRF trims text before its blank check): spelled out rather than `\s`,
# whose meaning differs between regex engines.
_WHITESPACE = _char_class("".join(chr(c) for c in range(0x3001) if chr(c).isspace()))  # none above U+3000
# Text DRF accepts: no NUL character anywhere (Django's ProhibitNullCharactersValidator); where blank
# is allowed, drf-spectacular adds the empty string as the schema's other choice (`oneOf`) ...
TEXT_PATTERN = r"^[^\u0000]+$"
# ... and where it is not, at least one character that is not whitespace.
NON_BLANK_TEXT_PATTERN = rf"^[^\u0000]*[^\u0000{_WHITESPACE}][^\u0000]*$"


def _declare_drf_rules(field, schema: dict) -> None:
    """Add to an input field's schema the rules DRF enforces that drf-spectacular leaves out."""
    if isinstance(field, (serializers.ListSerializer, serializers.ListField)) and schema.get("type") == "array":
        fewest = max(field.min_length or 0, 0 if field.allow_empty else 1)
        if fewest:
            schema["minItems"] = max(schema.get("minItems", 0), fewest)
        if field.max_length is not None:
            schema["maxItems"] = min(schema.get("maxItems", field.max_length), field.max_length)
    elif (isinstance(field, serializers.CharField) and schema.get("type") == "string"
          and not ({"format", "enum", "pattern"} & schema.keys())
          and not any(isinstance(v, RegexValidator) for v in field.validators)):
        schema["pattern"] = TEXT_PATTERN if field.allow_blank else NON_BLANK_TEXT_PATTERN


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's generator, also declaring what DRF enforces on input beyond what it maps
    (text that is not blank and has no NUL, the bounds of lists) and the `Idempotency-Key` header
    of every POST that honours it (core/idempotency.py)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and isinstance(schema, dict):
            _declare_drf_rules(field, schema)
        return schema

    def get_override_parameters(self):
        from core.idempotency import IDEMPOTENCY_KEY_PARAMETER, honours_idempotency_key

        parameters = super().get_override_parameters()
        if self.method == "POST" and honours_idempotency_key(getattr(self.view, "post", None)):
            parameters = [*parameters, IDEMPOTENCY_KEY_PARAMETER]
        return parameters


def doc_excludes() -> list:
    """Classes whose docstrings describe the implementation, not the API: never schema descriptions."""
    from core.api import Rendered, ScopedThrottleMixin, StrictInput

    return [*get_lib_doc_excludes(), ScopedThrottleMixin, StrictInput, Rendered]


# --- Links ---------------------------------------------------------------------------------------------------

_ID = "$response.body#/id"
_PATH_ID = "$request.path.id"


@dataclass(frozen=True)
class Link:
    operation_id: str
    parameters: dict[str, str]
    description: str
    request_body: dict | None = None


def _on_event(id_expression: str) -> dict[str, Link]:
    """What an organizer does next with an event: read it, change it, sell it, stop it."""
    return {
        "GetEvent": Link("v1_events_retrieve", {"id": id_expression}, "Read the event."),
        "ReplaceEvent": Link("v1_events_update", {"id": id_expression}, "Replace its details."),
        "ChangeEvent": Link("v1_events_partial_update", {"id": id_expression}, "Change some of its details."),
        "DeleteEvent": Link("v1_events_destroy", {"id": id_expression}, "Delete it (only without bookings)."),
        "PublishEvent": Link("v1_events_publish_create", {"id": id_expression}, "Put it on sale."),
        "CancelEvent": Link("v1_events_cancel_create", {"id": id_expression}, "Cancel it."),
        "EventAvailability": Link("v1_events_availability_retrieve", {"id": id_expression}, "Its availability."),
        "ListTicketTypes": Link("v1_events_ticket_types_list", {"id": id_expression}, "Its ticket types."),
        "AddTicketType": Link("v1_events_ticket_types_create", {"id": id_expression}, "Add a ticket type."),
    }


def _on_booking(id_expression: str) -> dict[str, Link]:
    return {
        "GetBooking": Link("v1_bookings_retrieve", {"id": id_expression}, "Read the booking."),
        "PayBooking": Link("v1_bookings_pay_create", {"id": id_expression}, "Pay for it by card."),
        "CancelBooking": Link("v1_bookings_cancel_create", {"id": id_expression}, "Release the hold."),
        "RefundBooking": Link("v1_bookings_refund_create", {"id": id_expression}, "Refund it once confirmed."),
    }


# (operationId, status) -> the links of that response: each create leads to the reads and actions on what
# it created, so a client (and schemathesis's stateful tests) can follow a purchase from end to end.
LINKS: dict[tuple[str, str], dict[str, Link]] = {
    ("v1_events_create", "201"): _on_event(_ID),
    ("v1_events_publish_create", "200"): {
        **_on_event(_ID),
        # A published event has at least one ticket type: reserve one of the first.
        "Reserve": Link("v1_bookings_create", {}, "Reserve a ticket of its first ticket type.",
                        {"event": _ID, "items": [{"ticket_type": "$response.body#/ticket_types/0/id", "quantity": 1}]}),
    },
    ("v1_events_ticket_types_create", "201"): {
        "GetTicketType": Link("v1_events_ticket_types_retrieve", {"id": _PATH_ID, "tt_id": _ID},
                              "Read the ticket type."),
        "ReplaceTicketType": Link("v1_events_ticket_types_update", {"id": _PATH_ID, "tt_id": _ID},
                                  "Replace it."),
        "ChangeTicketType": Link("v1_events_ticket_types_partial_update", {"id": _PATH_ID, "tt_id": _ID},
                                 "Change some of it."),
        "DeleteTicketType": Link("v1_events_ticket_types_destroy", {"id": _PATH_ID, "tt_id": _ID},
                                 "Delete it (only if never booked)."),
        "PublishEvent": Link("v1_events_publish_create", {"id": _PATH_ID}, "Put its event on sale."),
        "Reserve": Link("v1_bookings_create", {}, "Reserve a ticket of this type (its event must be on sale).",
                        {"event": _PATH_ID, "items": [{"ticket_type": _ID, "quantity": 1}]}),
    },
    ("v1_bookings_create", "201"): {
        **_on_booking(_ID),
        "GetEvent": Link("v1_events_retrieve", {"id": "$response.body#/event"}, "Read the booking's event."),
        "EventAvailability": Link("v1_events_availability_retrieve", {"id": "$response.body#/event"},
                                  "What is left of the event."),
    },
    ("v1_bookings_cancel_create", "200"): {
        "GetBooking": Link("v1_bookings_retrieve", {"id": _ID}, "Read the booking."),
    },
    ("v1_bookings_pay_create", "202"): {
        "GetPayment": Link("v1_payments_retrieve", {"id": _ID}, "Follow the payment."),
        "GetBooking": Link("v1_bookings_retrieve", {"id": _PATH_ID}, "Follow the booking until confirmed."),
        "RefundBooking": Link("v1_bookings_refund_create", {"id": _PATH_ID}, "Refund it once confirmed."),
    },
    ("v1_bookings_refund_create", "202"): {
        "GetRefund": Link("v1_refunds_retrieve", {"id": _ID}, "Follow the refund."),
        "GetBooking": Link("v1_bookings_retrieve", {"id": _PATH_ID}, "Read the booking."),
    },
}


def add_links(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: the OpenAPI links of LINKS (operations left out of this
    schema, e.g. by a narrower URLconf, get none)."""
    operations = {operation["operationId"]: operation for item in result.get("paths", {}).values()
                  for operation in item.values() if isinstance(operation, dict) and "operationId" in operation}
    for (source, status), links in LINKS.items():
        response = operations.get(source, {}).get("responses", {}).get(status)
        if response is None:
            continue
        for name, link in links.items():
            if link.operation_id not in operations:
                continue
            definition = {"operationId": link.operation_id, "description": link.description}
            if link.parameters:
                definition["parameters"] = dict(link.parameters)
            if link.request_body is not None:
                definition["requestBody"] = link.request_body
            response.setdefault("links", {})[name] = definition
    return result
