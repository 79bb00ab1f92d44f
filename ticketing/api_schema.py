"""OpenAPI pieces shared by every app's API: the problem-details body and common error responses."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
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
    """`Authorization: Token <key>` (ticketing.api.CachedTokenAuthentication), named as DRF's token auth was."""

    target_class = "ticketing.api.CachedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization",
                                                   token_prefix=self.target.authenticate_header(None))
