"""Schemathesis hooks of the live test (test_schemathesis_live.py), loaded by the CLI via SCHEMATHESIS_HOOKS.

An Idempotency-Key names one intended request: the same key on another request is refused (422) by
design, which ticketing's own tests cover (test_idempotency.py). The values schemathesis draws for
it repeat ("0", "00", ...), so most POSTs would be that refusal and the logic behind them untested:
each valid key drawn is made unique (a counter appended; schemathesis's advice for fields that must
be unique). Invalid keys (the negative cases about the header) are sent as drawn.

`positive_data_acceptance` lets the operations listed in the run's rules answer 400 to schema-valid
input, because they check rules no JSON Schema can state. This check narrows that to the rules
themselves: a 400 to schema-valid input must name (in the problem's `errors`) only the fields of
those rules. Any other field is a constraint the server enforces and the schema does not declare.

The rules come from the test, as JSON in LIVE_SCHEMATHESIS_RULES: {"METHOD /path": {"field": "why"}}.
"""

from __future__ import annotations

import itertools
import json
import os
import re

import schemathesis

RULES: dict[str, dict[str, str]] = json.loads(os.environ.get("LIVE_SCHEMATHESIS_RULES", "{}"))


# ticketing.idempotency.KEY_PATTERN, as the schema declares it.
VALID_KEY = re.compile(r"^[!-~](?:[ -~]{0,253}[!-~])?$")
_requests = itertools.count(1)


@schemathesis.hook
def before_call(context, case, kwargs):
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{key[:240]}-{next(_requests)}"


@schemathesis.check
def refused_only_for_rules_beyond_the_schema(ctx, response, case):
    """A 400 to schema-valid input names only fields whose rules the schema cannot state."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    allowed = RULES.get(f"{case.method.upper()} {case.operation.path}", {})
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
