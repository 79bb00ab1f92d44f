"""The OpenAPI schema tells the truth (issue 15, item 14): what the server refuses, the schema refuses too,
and OpenAPI links lead from each create to the reads and actions on what it created.

Each refusal case is sent to the API (it must answer 400 naming the field) and checked against the
request schema of the same operation (it must not validate). A case the server refuses but the
schema accepts is a constraint the schema does not declare: clients and fuzzers would send it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import jsonschema_rs
import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture(scope="module")
def openapi(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


def _inline(node, components: dict):
    """The schema with every `#/components/schemas/...` reference replaced by its target."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(components[node["$ref"].rsplit("/", 1)[1]], components)
        return {key: _inline(value, components) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, components) for value in node]
    return node


def valid(schema: dict, instance) -> bool:
    """Whether `instance` is valid under `schema`, formats (email, uuid, date-time) included."""
    return jsonschema_rs.is_valid(schema, instance, validate_formats=True)


def _operation(openapi: dict, method: str, path: str) -> dict:
    return openapi["paths"][path][method.lower()]


def request_schema(openapi: dict, method: str, path: str) -> dict:
    body = _operation(openapi, method, path)["requestBody"]["content"]["application/json"]["schema"]
    return _inline(body, openapi["components"]["schemas"])


def parameter_schema(openapi: dict, method: str, path: str, name: str, location: str) -> dict:
    [parameter] = [p for p in _operation(openapi, method, path).get("parameters", [])
                   if p["name"] == name and p["in"] == location]
    return _inline(parameter["schema"], openapi["components"]["schemas"])


@pytest.fixture
def world(client_for):
    """An organizer member with a draft and a published event, a buyer with a reserved and a paid booking."""
    member = UserFactory(username="member")
    organizer = OrganizerFactory(slug="acme", members=[member])
    event = EventFactory(organizer=organizer, name="Jazz Night")
    tt = TicketTypeFactory(event=event, name="General", capacity=50, price=Decimal("49.00"))
    draft = EventFactory(organizer=organizer, status=Event.Status.DRAFT, name="Secret Gig")
    buyer = UserFactory(username="buyer", email="buyer@example.com")
    reserved = make_booking(items=[(tt, 1)], buyer=buyer)
    return {"member": client_for(member), "buyer": client_for(buyer), "event": event, "tt": tt, "draft": draft,
            "reserved": reserved}


def _event_body(**overrides) -> dict:
    starts = timezone.now() + timedelta(days=30)
    return {"name": "Spring Gala", "venue": "Opera", "city": "Vienna", "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(), **overrides}


def _tt_body(**overrides) -> dict:
    return {"name": "Balcony", "price": "25.00", "capacity": 40, **overrides}


def _card(**overrides) -> dict:
    return {"card_number": "4111111111111111", "exp_month": 12, "exp_year": 2099, "cvc": "123", **overrides}


def _line(world, quantity: int = 1) -> dict:
    return {"ticket_type": str(world["tt"].pk), "quantity": quantity}


def _reserve(world, **overrides) -> dict:
    return {"event": str(world["event"].pk), "items": [{"ticket_type": str(world["tt"].pk), "quantity": 1}],
            **overrides}


# (name, who, method, path template, body builder, the field the server names)
REFUSED_BODIES = [
    ("event name blank", "member", "POST", "/events/", lambda w: _event_body(name="   "), "name"),
    ("event name with a NUL", "member", "POST", "/events/", lambda w: _event_body(name="Gala\x00"), "name"),
    ("venue blank", "member", "POST", "/events/", lambda w: _event_body(venue="\t"), "venue"),
    ("unknown time zone", "member", "POST", "/events/", lambda w: _event_body(timezone="Mars/Olympus"), "timezone"),
    ("event description with a NUL", "member", "POST", "/events/", lambda w: _event_body(description="a\x00"),
     "description"),
    ("patched city blank", "member", "PATCH", "/events/{draft}/", lambda w: {"city": " "}, "city"),
    ("ticket type name blank", "member", "POST", "/events/{draft}/ticket-types/", lambda w: _tt_body(name=" "),
     "name"),
    ("reservation without items", "buyer", "POST", "/bookings/", lambda w: _reserve(w, items=[]), "items"),
    ("reservation of 21 lines", "buyer", "POST", "/bookings/",
     lambda w: _reserve(w, items=[_line(w)] * 21), "items"),
    ("card number in other digits", "buyer", "POST", "/bookings/{reserved}/pay/",
     lambda w: _card(card_number="\u0664" + "\u0661" * 15), "card_number"),
    ("card number in superscripts", "buyer", "POST", "/bookings/{reserved}/pay/",
     lambda w: _card(card_number="\u00b2" * 16), "card_number"),
    ("card number with letters", "buyer", "POST", "/bookings/{reserved}/pay/",
     lambda w: _card(card_number="4111-1111-1111-111x"), "card_number"),
    ("card number with two spaces in a row", "buyer", "POST", "/bookings/{reserved}/pay/",
     lambda w: _card(card_number="4111  1111 1111 1111"), "card_number"),
    ("CVC with a letter", "buyer", "POST", "/bookings/{reserved}/pay/", lambda w: _card(cvc="12a"), "cvc"),
    ("refund of an empty list", "buyer", "POST", "/bookings/{reserved}/refund/", lambda w: {"tickets": []},
     "tickets"),
    # Strings as sent: DRF would trim them, or take a UUID in any form, before checking.
    ("event id without hyphens", "buyer", "POST", "/bookings/", lambda w: _reserve(w, event=w["event"].pk.hex),
     "event"),
    ("CVC with a space", "buyer", "POST", "/bookings/{reserved}/pay/", lambda w: _card(cvc=" 123"), "cvc"),
    ("event name too long before trimming", "member", "POST", "/events/", lambda w: _event_body(name="a" * 200 + " "),
     "name"),
]


@pytest.mark.parametrize(("who", "method", "route", "body", "field"), [case[1:] for case in REFUSED_BODIES],
                         ids=[case[0] for case in REFUSED_BODIES])
def test_a_body_the_server_refuses_is_one_the_schema_refuses(openapi, world, assert_problem, who, method, route,
                                                            body, field):
    payload = body(world)
    path = API + route.format(draft=world["draft"].pk, reserved=world["reserved"].pk)

    response = getattr(world[who], method.lower())(path, payload)

    problem = assert_problem(response, 400, "invalid")
    assert field in problem["errors"], problem
    template = API + route.replace("{draft}", "{id}").replace("{reserved}", "{id}")
    assert not valid(request_schema(openapi, method, template), payload), (
        f"the schema of {method} {template} accepts {payload!r}, which the server refuses")


@pytest.mark.parametrize(("params", "name"), [({"q": "  "}, "q"), ({"city": "Ber\x00lin"}, "city")])
def test_a_query_filter_the_server_refuses_is_one_the_schema_refuses(openapi, client_for, assert_problem, params,
                                                                    name):
    problem = assert_problem(client_for().get(f"{API}/events/", params), 400, "invalid")

    assert name in problem["errors"], problem
    assert not valid(parameter_schema(openapi, "GET", f"{API}/events/", name, "query"), params[name])


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tinside", "caf\u00e9"])
def test_an_idempotency_key_the_server_refuses_is_one_the_schema_refuses(openapi, world, assert_problem, key):
    response = world["buyer"].post(f"{API}/bookings/", _reserve(world), HTTP_IDEMPOTENCY_KEY=key)

    assert_problem(response, 400, "invalid_idempotency_key")
    schema = parameter_schema(openapi, "POST", f"{API}/bookings/", "Idempotency-Key", "header")
    assert not valid(schema, key)


def test_the_schemathesis_tests_know_the_servers_idempotency_key_pattern():
    import schemathesis_policy

    from core.idempotency import KEY_PATTERN

    assert schemathesis_policy.VALID_KEY.pattern == KEY_PATTERN


def test_every_post_declares_the_idempotency_key_header(openapi):
    posts = [(path, operation) for path, item in openapi["paths"].items()
             for method, operation in item.items() if method == "post" and path != f"{API}/auth/token/"]

    assert posts
    for path, operation in posts:
        names = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
        assert ("Idempotency-Key", "header") in names, path


def test_bodies_the_server_accepts_are_ones_the_schema_accepts(openapi, world):
    """The other way round: the declared constraints are no stricter than the server (spaces around a
    name are trimmed, blank text where allowed, card number groups, two lines of one ticket type)."""
    cases = [
        ("member", "POST", "/events/", _event_body(name="  Spring Gala ", timezone="Europe/Vienna", description="")),
        ("buyer", "POST", "/bookings/", _reserve(world, items=[_line(world)] * 2)),
        ("buyer", "POST", "/bookings/{id}/pay/", _card(card_number="4111 1111-1111 1111", cardholder_name="")),
    ]
    for who, method, route, payload in cases:
        response = getattr(world[who], method.lower())(API + route.format(id=world["reserved"].pk), payload)

        assert response.status_code in (201, 202), (route, response.json())
        assert valid(request_schema(openapi, method, API + route), payload), (method, route, payload)
    # The most lines a reservation may have.
    most = _reserve(world, items=[_line(world)] * 20)
    assert valid(request_schema(openapi, "POST", f"{API}/bookings/"), most)


# --- Links -----------------------------------------------------------------------------------------------------

EXPECTED_LINKS = {
    ("v1_bookings_create", "201"): {"v1_bookings_retrieve", "v1_bookings_pay_create", "v1_bookings_cancel_create",
                                    "v1_bookings_refund_create", "v1_events_retrieve"},
    ("v1_bookings_pay_create", "202"): {"v1_payments_retrieve", "v1_bookings_retrieve", "v1_bookings_refund_create"},
    ("v1_bookings_refund_create", "202"): {"v1_refunds_retrieve", "v1_bookings_retrieve"},
    ("v1_events_create", "201"): {"v1_events_retrieve", "v1_events_update", "v1_events_partial_update",
                                  "v1_events_destroy", "v1_events_publish_create", "v1_events_cancel_create",
                                  "v1_events_availability_retrieve", "v1_events_ticket_types_list",
                                  "v1_events_ticket_types_create"},
    ("v1_events_ticket_types_create", "201"): {"v1_events_ticket_types_retrieve", "v1_events_ticket_types_update",
                                               "v1_events_ticket_types_partial_update",
                                               "v1_events_ticket_types_destroy", "v1_events_publish_create"},
    ("v1_events_publish_create", "200"): {"v1_bookings_create"},
}


def test_links_lead_from_each_create_to_the_reads_and_actions_on_what_it_created(openapi):
    operations = {op["operationId"]: op for item in openapi["paths"].values() for op in item.values()}

    for (source, status), targets in EXPECTED_LINKS.items():
        links = operations[source]["responses"][status].get("links", {})
        assert targets <= {link["operationId"] for link in links.values()}, (source, status, sorted(links))
        for link in links.values():
            assert link["operationId"] in operations, link


def test_a_reservation_link_from_a_published_event_carries_its_first_ticket_type(openapi):
    operations = {op["operationId"]: op for item in openapi["paths"].values() for op in item.values()}
    links = operations["v1_events_publish_create"]["responses"]["200"]["links"]
    [reserve] = [link for link in links.values() if link["operationId"] == "v1_bookings_create"]

    assert reserve["requestBody"] == {"event": "$response.body#/id", "items": [
        {"ticket_type": "$response.body#/ticket_types/0/id", "quantity": 1}]}


def test_every_operation_documents_the_throttles_429(openapi):
    """Every API view is throttled (ScopedThrottleMixin), so every operation may answer 429."""
    missing = [f"{method.upper()} {path}" for path, item in openapi["paths"].items()
               for method, operation in item.items() if "429" not in operation["responses"]]

    assert not missing


@pytest.mark.parametrize("page", ["", "last", "0", "-1", "1.5", "two"])
def test_a_page_that_is_not_a_positive_whole_number_is_400_as_the_schema_says(openapi, client_for, assert_problem,
                                                                             page):
    """The schema says `page` is a whole number of at least 1; DRF would take "" (page 1) and "last"."""
    body = assert_problem(client_for().get(f"{API}/events/", {"page": page}), 400, "invalid")

    assert "page" in body["errors"]
    assert not valid(parameter_schema(openapi, "GET", f"{API}/events/", "page", "query"), page)


@pytest.mark.parametrize("page", ["99", "1120830954227983712256"])
def test_a_page_past_the_end_is_404_however_large(client_for, assert_problem, page):
    assert_problem(client_for().get(f"{API}/events/", {"page": page}), 404, "not_found")


@pytest.mark.parametrize("email", [" buyer@example.com", "buyer@example.com "])
def test_an_email_with_surrounding_spaces_is_refused_as_the_schema_says(openapi, world, assert_problem, email):
    """`format: email` has no spaces around the address; DRF's EmailField would trim them."""
    payload = _reserve(world, email=email)

    body = assert_problem(world["buyer"].post(f"{API}/bookings/", payload), 400, "invalid")

    assert "email" in body["errors"]
    assert not valid(request_schema(openapi, "POST", f"{API}/bookings/"), payload)
