"""Who may call what: every route and method of /api/v1/ against every kind of caller.

Callers: `anon` (no credentials), `buyer` (owns the bookings below), `other_buyer`,
`member` (of the event's organizer), `other_member` (of another organizer),
`superuser`, and `guest` (no credentials, the booking's `?token=`; booking routes only).

Rules (DESIGN.md sections 4 and 9):
- anonymous callers only read the catalogue and availability; every write is 401,
  and so is every booking route without a `?token=`;
- someone else's booking is 404 on every booking route, its payments and refunds;
- organizer members manage only their organizer's events: writes on another
  organizer's published event are 403, its drafts are invisible (404);
- a superuser may do everything.

Each case builds its own world (fixture `world`), so the order of cases does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from bookings.tests.factories import make_booking
from events.models import Event
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory
from payments.services import refund_issue

pytestmark = pytest.mark.django_db

ANON, BUYER, OTHER_BUYER, MEMBER, OTHER_MEMBER, SUPERUSER, GUEST = (
    "anon", "buyer", "other_buyer", "member", "other_member", "superuser", "guest",
)
CALLERS = (ANON, BUYER, OTHER_BUYER, MEMBER, OTHER_MEMBER, SUPERUSER)
PASSWORD = "secret-pass-123"  # UserFactory's


@dataclass
class World:
    users: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)  # what the {names} of the URL templates stand for
    tokens: dict = field(default_factory=dict)  # booking access tokens, by the same names


@pytest.fixture
def world(make_paid_booking) -> World:
    """Two organizers with one member each, two buyers, a superuser, and the buyer's bookings.

    `event` (published, capped, has bookings): `tt` (booked), `unused_tt` (never booked);
    `empty_event` (published, no bookings); `draft` (a draft with a ticket type).
    `booking` is the buyer's hold; `paid` the buyer's confirmed booking with
    `payment`; `refund` a refund of another confirmed booking of the buyer.
    """
    w = World()
    buyer, other_buyer = UserFactory(username="buyer"), UserFactory(username="other-buyer")
    member, other_member = UserFactory(username="member"), UserFactory(username="other-member")
    superuser = UserFactory(username="root", is_superuser=True, is_staff=True)
    w.users = {BUYER: buyer, OTHER_BUYER: other_buyer, MEMBER: member, OTHER_MEMBER: other_member,
               SUPERUSER: superuser}
    organizer = OrganizerFactory(slug="acme", members=[member])
    OrganizerFactory(slug="rival", members=[other_member])

    event = EventFactory(organizer=organizer, capacity=500)
    tt = TicketTypeFactory(event=event, name="General", capacity=100, price=Decimal("49.00"))
    unused_tt = TicketTypeFactory(event=event, name="Unused", capacity=10)
    empty_event = EventFactory(organizer=organizer)
    TicketTypeFactory(event=empty_event)
    draft = EventFactory(organizer=organizer, status=Event.Status.DRAFT)
    TicketTypeFactory(event=draft)

    booking = make_booking(items=[(tt, 2)], buyer=buyer, email="buyer@example.com")
    paid = make_paid_booking(tt, buyer=buyer)
    refunded = make_paid_booking(tt, buyer=buyer)
    refund = refund_issue(booking=refunded, by_buyer=True)

    w.ids = {"event": event.pk, "tt": tt.pk, "unused_tt": unused_tt.pk, "empty_event": empty_event.pk,
             "draft": draft.pk, "booking": booking.pk, "paid": paid.pk, "payment": paid.payments.get().pk,
             "refund": refund.pk}
    w.tokens = {"booking": booking.access_token, "paid": paid.access_token,
                "payment": paid.access_token, "refund": refunded.access_token}
    return w


# --- Request bodies ----------------------------------------------------------------------------

IN_A_MONTH = timezone.now() + timedelta(days=30)
EVENT_BODY = {
    "name": "Spring Gala", "description": "", "venue": "Opera", "city": "Vienna", "category": "music",
    "starts_at": IN_A_MONTH.isoformat(), "ends_at": (IN_A_MONTH + timedelta(hours=3)).isoformat(),
    "currency": "EUR", "capacity": 500,
}
TICKET_TYPE_BODY = {"name": "Balcony", "price": "19.50", "capacity": 120, "max_per_booking": 6}
CARD = {"card_number": "4111111111111111", "exp_month": 12, "exp_year": 2099, "cvc": "123",
        "cardholder_name": "Ada Lovelace"}


def bookings_body(w: World) -> dict:
    return {"event": str(w.ids["event"]), "items": [{"ticket_type": str(w.ids["tt"]), "quantity": 1}]}


def token_body(w: World) -> dict:
    return {"username": w.users[BUYER].username, "password": PASSWORD}


BODIES = {
    ("POST", "/api/v1/auth/token/"): token_body,
    ("POST", "/api/v1/events/"): lambda w: {**EVENT_BODY, "organizer": "acme"},
    ("PUT", "/api/v1/events/{event}/"): lambda w: EVENT_BODY,
    ("PATCH", "/api/v1/events/{event}/"): lambda w: {"name": "Renamed"},
    ("PATCH", "/api/v1/events/{draft}/"): lambda w: {"name": "Renamed"},
    ("POST", "/api/v1/events/{event}/ticket-types/"): lambda w: TICKET_TYPE_BODY,
    ("PUT", "/api/v1/events/{event}/ticket-types/{tt}/"): lambda w: {**TICKET_TYPE_BODY, "capacity": 150},
    ("PATCH", "/api/v1/events/{event}/ticket-types/{tt}/"): lambda w: {"capacity": 150},
    ("POST", "/api/v1/bookings/"): bookings_body,
    ("POST", "/api/v1/bookings/{booking}/pay/"): lambda w: CARD,
    ("POST", "/api/v1/bookings/{paid}/refund/"): lambda w: {"reason": "Cannot come"},
}

# --- The matrix ----------------------------------------------------------------------------------
# (method, URL template, {caller: expected status}). `guest` rows exist only for booking routes:
# the template's first {name} is the booking (or payment/refund) whose token the guest holds.


def everyone(status: int) -> dict:
    return dict.fromkeys(CALLERS, status)


def organizer_write(ok: int, *, anon: int = 401, outsider: int = 403) -> dict:
    """A write on the organizer's published event: only its members and superusers pass."""
    return {ANON: anon, BUYER: outsider, OTHER_BUYER: outsider, MEMBER: ok, OTHER_MEMBER: outsider, SUPERUSER: ok}


def on_draft(ok: int, *, anon: int = 404) -> dict:
    """The organizer's draft: invisible (404) to everyone but its members and superusers."""
    return organizer_write(ok, anon=anon, outsider=404)


def booking_route(ok: int) -> dict:
    """A route of the buyer's booking: the buyer, the event's organizer, a superuser and a token holder."""
    return {ANON: 401, BUYER: ok, OTHER_BUYER: 404, MEMBER: ok, OTHER_MEMBER: 404, SUPERUSER: ok, GUEST: ok}


MATRIX = [
    ("POST", "/api/v1/auth/token/", everyone(200)),
    # catalogue
    ("GET", "/api/v1/events/", everyone(200)),
    ("POST", "/api/v1/events/", {ANON: 401, BUYER: 403, OTHER_BUYER: 403, MEMBER: 201, OTHER_MEMBER: 403,
                                 SUPERUSER: 201}),
    ("GET", "/api/v1/events/{event}/", everyone(200)),
    ("GET", "/api/v1/events/{draft}/", on_draft(200)),
    ("PUT", "/api/v1/events/{event}/", organizer_write(200)),
    ("PATCH", "/api/v1/events/{event}/", organizer_write(200)),
    ("PATCH", "/api/v1/events/{draft}/", on_draft(200, anon=401)),
    ("DELETE", "/api/v1/events/{event}/", organizer_write(409)),  # it has bookings: has_sales
    ("DELETE", "/api/v1/events/{empty_event}/", organizer_write(204)),
    ("DELETE", "/api/v1/events/{draft}/", on_draft(204, anon=401)),
    ("POST", "/api/v1/events/{draft}/publish/", on_draft(200, anon=401)),
    ("POST", "/api/v1/events/{event}/publish/", organizer_write(409)),  # already published
    ("POST", "/api/v1/events/{event}/cancel/", organizer_write(200)),
    ("POST", "/api/v1/events/{draft}/cancel/", on_draft(200, anon=401)),
    ("GET", "/api/v1/events/{event}/availability/", everyone(200)),
    ("GET", "/api/v1/events/{draft}/availability/", on_draft(200)),
    ("GET", "/api/v1/events/{event}/ticket-types/", everyone(200)),
    ("GET", "/api/v1/events/{draft}/ticket-types/", on_draft(200)),
    ("POST", "/api/v1/events/{event}/ticket-types/", organizer_write(201)),
    ("GET", "/api/v1/events/{event}/ticket-types/{tt}/", everyone(200)),
    ("PUT", "/api/v1/events/{event}/ticket-types/{tt}/", organizer_write(200)),
    ("PATCH", "/api/v1/events/{event}/ticket-types/{tt}/", organizer_write(200)),
    ("DELETE", "/api/v1/events/{event}/ticket-types/{tt}/", organizer_write(409)),  # booked: has_sales
    ("DELETE", "/api/v1/events/{event}/ticket-types/{unused_tt}/", organizer_write(204)),
    # bookings
    ("GET", "/api/v1/bookings/", {**everyone(200), ANON: 401}),
    ("POST", "/api/v1/bookings/", {**everyone(201), ANON: 401}),
    ("GET", "/api/v1/bookings/{booking}/", booking_route(200)),
    ("POST", "/api/v1/bookings/{booking}/pay/", booking_route(202)),
    ("POST", "/api/v1/bookings/{booking}/cancel/", booking_route(200)),
    ("POST", "/api/v1/bookings/{paid}/refund/", booking_route(202)),
    ("GET", "/api/v1/payments/{payment}/", booking_route(200)),
    ("GET", "/api/v1/refunds/{refund}/", booking_route(200)),
]

CASES = [
    pytest.param(caller, method, url, expected, id=f"{caller}-{method}-{url}")
    for method, url, expectations in MATRIX
    for caller, expected in expectations.items()
]


def test_the_matrix_covers_every_route_and_method():
    """A route or method added to api_urls.py without a row here fails this test."""
    from django.urls import get_resolver

    from ticketing import api_urls

    covered = {(method, _route_of(url)) for method, url, _ in MATRIX}
    expected = set()
    for pattern in api_urls.urlpatterns:
        view = getattr(pattern.callback, "view_class", None)
        if view is None:  # the catch-all 404 for paths no route matches
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                expected.add((method.upper(), str(pattern.pattern)))
    assert expected == covered
    assert get_resolver()  # the URLconf loads


def _route_of(url: str) -> str:
    """'/api/v1/events/{draft}/publish/' -> 'events/<uuid:pk>/publish/' (the api_urls pattern)."""
    parts = url.removeprefix("/api/v1/").split("/")
    names = iter(["<uuid:pk>", "<uuid:tt_id>"])
    return "/".join(next(names) if part.startswith("{") else part for part in parts)


@pytest.mark.parametrize("caller, method, url, expected", CASES)
def test_caller_gets_expected_status(world, client_for, assert_problem, caller, method, url, expected):
    client = client_for(world.users.get(caller))
    path = url.format(**world.ids)
    if caller == GUEST:
        name = url.split("{")[1].split("}")[0]
        path += f"?token={world.tokens[name]}"
    body = BODIES.get((method, url), lambda w: None)(world)

    response = getattr(client, method.lower())(path, body)

    if expected >= 400:
        assert_problem(response, expected)
    else:
        assert response.status_code == expected, response.content[:500]


# --- A few rows spelled out, with the error codes --------------------------------------------


def test_anonymous_writes_are_401_not_authenticated(world, client_for, assert_problem):
    response = client_for().post("/api/v1/bookings/", bookings_body(world))

    body = assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert body["detail"]


def test_another_buyers_booking_is_404_not_found(world, client_for, assert_problem):
    client = client_for(world.users[OTHER_BUYER])

    for path in (f"/api/v1/bookings/{world.ids['booking']}/", f"/api/v1/payments/{world.ids['payment']}/"):
        assert_problem(client.get(path), 404, "not_found")


def test_a_wrong_guest_token_is_404(world, client_for, assert_problem):
    path = f"/api/v1/bookings/{world.ids['booking']}/?token={world.tokens['paid']}"

    assert_problem(client_for().get(path), 404, "not_found")


def test_a_non_ascii_guest_token_is_404_not_a_server_error(world, client_for, assert_problem):
    path = f"/api/v1/bookings/{world.ids['booking']}/?token=%C3%A9t%C3%A9"

    assert_problem(client_for().get(path), 404, "not_found")


def test_another_organizers_member_is_403_permission_denied_on_a_published_event(world, client_for, assert_problem):
    client = client_for(world.users[OTHER_MEMBER])

    response = client.patch(f"/api/v1/events/{world.ids['event']}/", {"name": "Mine now"})

    assert_problem(response, 403, "permission_denied")
    assert Event.objects.get(pk=world.ids["event"]).name != "Mine now"


def test_a_member_cannot_create_events_for_another_organizer(world, client_for, assert_problem):
    response = client_for(world.users[OTHER_MEMBER]).post("/api/v1/events/", {**EVENT_BODY, "organizer": "acme"})

    assert_problem(response, 403, "permission_denied")
    assert not Event.objects.filter(name=EVENT_BODY["name"]).exists()
