"""What the schemathesis tests (test_schemathesis.py in-process, test_schemathesis_live.py on gunicorn) accept.

`positive_data_acceptance` expects input the schema accepts to be accepted (2xx) or refused for a
reason about the caller or the state (401, 403, 404, 409, 429). Some operations also check rules no
JSON schema can state, answered 400 with field errors (DESIGN.md section 3): those operations may
answer 400 to schema-valid input, and `refused_only_for_rules_beyond_the_schema` checks that such a
400 names only the fields of those rules. Any other field is a constraint the server enforces and the
schema does not declare: fix the schema (core/api_schema.py, the serializers), not this list.

Plain data and functions, no registration: the CLI's hooks file registers the check and the hook,
the in-process test passes them itself.
"""

from __future__ import annotations

import itertools
import re

POSITIVE_DEFAULT = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

_EVENT_DATES = {"ends_at": "an event ends after it starts (and is published before it ends)"}
_EVENT_CHANGE = {**_EVENT_DATES,
                 "currency": "the event's ticket-type prices fit the new currency's decimals (core.currencies)"}
_TICKET_TYPE = {"sales_end": "sales end after they start",
                "name": "a ticket type's name is unique within its event (the other types' names)",
                "price": "a price has no more decimals than its event's currency (JPY none: core.currencies)"}
# "METHOD /path" -> {field: the rule no JSON schema can state}.
RULES_BEYOND_THE_SCHEMA: dict[str, dict[str, str]] = {
    "POST /api/v1/auth/token/": {"non_field_errors": "the username and password match an account"},
    "POST /api/v1/events/": _EVENT_DATES,
    "PUT /api/v1/events/{id}/": _EVENT_CHANGE,
    "PATCH /api/v1/events/{id}/": _EVENT_CHANGE,
    "POST /api/v1/events/{id}/ticket-types/": _TICKET_TYPE,
    "PUT /api/v1/events/{id}/ticket-types/{tt_id}/": _TICKET_TYPE,
    "PATCH /api/v1/events/{id}/ticket-types/{tt_id}/": _TICKET_TYPE,
    "POST /api/v1/bookings/": {"items": "the ticket types are the event's, each at most its max_per_booking"},
    "POST /api/v1/bookings/{id}/pay/": {"card_number": "the number passes the Luhn check",
                                        "exp_year": "the card has not expired (this month or later)"},
    "POST /api/v1/bookings/{id}/refund/": {"tickets": "the tickets are this booking's issued ones"},
}
# What else an operation may answer to schema-valid input: a payment may be declined (402), the
# processor's answer, not the input's.
OTHER_ANSWERS = {"POST /api/v1/bookings/{id}/pay/": ["402"]}


def positive_acceptance_by_operation(schema: dict) -> list[dict]:
    """Schemathesis `operations` config entries: the expected statuses of `positive_data_acceptance`
    for each operation that has rules beyond the schema or other answers."""
    entries = []
    for path, item in schema["paths"].items():
        for method in item:
            name = f"{method.upper()} {path}"
            extra = [*(["400"] if name in RULES_BEYOND_THE_SCHEMA else []), *OTHER_ANSWERS.get(name, [])]
            if extra:
                # By name: an entry's include-method and include-path would each match on their own.
                entries.append({"include-name": name, "checks": {
                    "positive_data_acceptance": {"expected-statuses": [*POSITIVE_DEFAULT, *extra]}}})
    return entries


def refused_only_for_rules_beyond_the_schema(ctx, response, case):
    """A 400 to schema-valid input names only fields whose rules the schema cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    allowed = RULES_BEYOND_THE_SCHEMA.get(f"{case.method.upper()} {case.operation.path}", {})
    try:
        errors = response.json().get("errors") or {}
    except (ValueError, AttributeError):
        errors = {}
    fields = {name.split(".")[0] for name in errors}
    unexplained = sorted(fields - set(allowed)) if fields else ["(no field named)"]
    if unexplained:
        raise AssertionError(
            f"Schema-valid input refused for {', '.join(unexplained)}: a rule the schema does not declare.\n"
            f"Rules beyond the schema here: {allowed or 'none'}\nResponse: {response.text[:500]}"
        )
    return None


# An Idempotency-Key names one intended request: the same key on another request is refused (422) by
# design, which test_idempotency.py covers. The values schemathesis draws repeat ("0", "00", ...), so
# most POSTs would be that refusal and the logic behind them untested: each valid key drawn is made
# unique (a counter appended; schemathesis's advice for fields that must be unique). Invalid keys (the
# cases about the header itself) are sent as drawn.
VALID_KEY = re.compile(r"^[!-~](?:[ -~]{0,253}[!-~])?$")  # core.idempotency.KEY_PATTERN
_requests = itertools.count(1)


def fresh_idempotency_key(case) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{key[:240]}-{next(_requests)}"


# The coverage phase sends every value of an enum: the ~600 time zones to three operations would be a
# third of a run. The run's copy of the schema keeps a sample of them (still values the server takes;
# the invalid values schemathesis draws for an enum are never time zone names).
TIME_ZONES_SENT = 6


def fewer_time_zones(raw: dict) -> dict:
    zones = raw.get("components", {}).get("schemas", {}).get("TimeZone", {})
    if "enum" in zones:
        zones["enum"] = zones["enum"][::max(1, len(zones["enum"]) // TIME_ZONES_SENT)]
    return raw
