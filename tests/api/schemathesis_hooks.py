"""Schemathesis hooks of the live test (test_schemathesis_live.py), loaded by the CLI via SCHEMATHESIS_HOOKS
(with this directory on PYTHONPATH): the policy of schemathesis_policy.py, registered for the CLI."""

from __future__ import annotations

import schemathesis
from schemathesis_policy import fresh_idempotency_key, refused_only_for_rules_beyond_the_schema

schemathesis.check(refused_only_for_rules_beyond_the_schema)


@schemathesis.hook
def before_call(context, case, kwargs):
    fresh_idempotency_key(case)
