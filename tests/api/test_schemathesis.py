"""Property-based tests of every API operation against the OpenAPI schema (schemathesis 4, in-process WSGI).

The schema is drf-spectacular's, generated in the test; the requests go
through Django's WSGI application in this thread, so they see the seeded rows
of the test transaction. The caller is an organizer member who also has
bookings, and the schema's path parameters get those rows' ids as examples, so
the examples phase reaches real objects while the fuzzing and coverage phases
also send unknown ids and malformed input. Every default check runs: no 5xx,
status codes, content types, headers and bodies as documented, negative data
rejected, positive data accepted (schema-valid data refused only for the rules of
schemathesis_policy.py, which no schema can state).

Bounded for speed: a fixed seed, derandomized generation, at most
MAX_EXAMPLES fuzzed cases per operation, no example database.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import schemathesis
import schemathesis_policy as policy  # what a schema-valid request may get (shared with the live test)
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory
from payments.services import refund_issue

MAX_EXAMPLES = 12
CONFIG = {
    "seed": 20240917,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
}


@pytest.fixture
def seeded(db, make_paid_booking, client_for):
    """An organizer member with bookings, published events with ticket types, a payment and a refund."""
    user = UserFactory(username="integrator", email="integrator@example.com")
    organizer = OrganizerFactory(slug="acme", members=[user])
    # No hoarding limits on this event: its one buyer holds several bookings and reserves per example.
    event = EventFactory(organizer=organizer, name="Jazz Night", capacity=400, max_holds_per_buyer=0,
                         max_tickets_per_buyer=0)
    tt = TicketTypeFactory(event=event, name="General", capacity=200, price=Decimal("49.00"), max_per_booking=10)
    TicketTypeFactory(event=event, name="VIP", capacity=20, price=Decimal("120.00"))
    other = EventFactory(name="Rock Fest", city="Hamburg")
    TicketTypeFactory(event=other, capacity=50)
    EventFactory(organizer=organizer, status=Event.Status.DRAFT, name="Secret Gig")
    to_read, to_pay, to_cancel = (make_booking(items=[(tt, 2)], buyer=user) for _ in range(3))
    paid = make_paid_booking(tt, buyer=user, n=2)
    refunded = make_paid_booking(tt, buyer=user, n=1)
    refund = refund_issue(booking=refunded)
    token = client_for(user)._credentials["HTTP_AUTHORIZATION"]
    return {
        "authorization": token,
        "ids": {
            "/api/v1/bookings/{id}/": to_read.pk, "/api/v1/bookings/{id}/pay/": to_pay.pk,
            "/api/v1/bookings/{id}/cancel/": to_cancel.pk, "/api/v1/bookings/{id}/refund/": paid.pk,
            "/api/v1/payments/{id}/": paid.payments.get().pk, "/api/v1/refunds/{id}/": refund.pk,
            "events": event.pk, "tt_id": tt.pk,
        },
        "reserve": {"event": str(event.pk), "items": [{"ticket_type": str(tt.pk), "quantity": 2}],
                    "email": "integrator@example.com"},
    }


def _with_real_ids(raw: dict, seeded: dict) -> dict:
    """Point the schema's path-parameter and reservation examples at the seeded rows."""
    ids = seeded["ids"]
    for path, operations in raw["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                if parameter["name"] == "tt_id":
                    parameter["example"] = str(ids["tt_id"])
                elif path.startswith("/api/v1/events/"):
                    parameter["example"] = str(ids["events"])
                else:
                    parameter["example"] = str(ids[path])
    for content in raw["paths"]["/api/v1/bookings/"]["post"]["requestBody"]["content"].values():
        content["examples"] = {"Two tickets": {"value": seeded["reserve"]}}
    return policy.fewer_time_zones(raw)


@pytest.fixture
def wsgi_app():
    """The project's WSGI stack for in-process requests inside the test transaction.

    A fresh handler (ticketing.wsgi's was built at import, before the tests'
    settings: plain HTTP), and, as Django's test client does, the test's
    database connection is not closed at the end of each request.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(seeded, wsgi_app, request):
    # schemathesis 4.32's lazy loader reads `node._nodeid`, which pytest 9.2 no longer sets.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    document = SchemaGenerator().get_schema(request=None, public=True)
    raw = json.loads(OpenApiJsonRenderer().render(document))
    # What a schema-valid request may be answered, per operation: schemathesis_policy.py.
    config = schemathesis.Config.from_dict({**CONFIG, "operations": policy.positive_acceptance_by_operation(raw)})
    schema = schemathesis.openapi.from_dict(_with_real_ids(raw, seeded), config=config)
    schema.app = wsgi_app
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_conforms_to_the_schema_and_never_answers_5xx(case, seeded):
    policy.fresh_idempotency_key(case)
    case.call_and_validate(headers={"Authorization": seeded["authorization"]},
                           additional_checks=[policy.refused_only_for_rules_beyond_the_schema])
