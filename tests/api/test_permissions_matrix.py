"""Who may call what: every route and method of /api/v1/ against every kind of caller.

Callers: `anon` (no credentials), `buyer` (owns the bookings below), `other_buyer`,
`member` (of the event's organizer, in the "Organizer" group like `create_organizer`
makes them), `viewer` (a staff member of the same organizer with only the group's
view permissions), `other_member` (of another organizer), `superuser`, and `guest`
(no credentials, the booking's `?token=`; booking routes only).

Rules (DESIGN.md sections 4 and 9, issue 15 items 9 and 10):
- anonymous callers only read the catalogue and availability; every write is 401,
  and so is every booking route without a `?token=`;
- someone else's booking is 404 on every booking route, its payments and refunds;
- organizer members manage only their organizer's events: writes on another
  organizer's published event are 403, its drafts are invisible (404);
- an organizer write needs the Django permission the admin asks for too
  (`events.permissions`): the view-only member sees what the member sees and
  gets 403 on every write (event, ticket type, refund, cancelling a buyer's hold);
- a refused caller is refused whatever the body (permission before validation);
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
from events.organizer_group import organizer_group_sync
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory
from payments.services import refund_issue

pytestmark = pytest.mark.django_db

ANON, BUYER, OTHER_BUYER, MEMBER, VIEWER, OTHER_MEMBER, SUPERUSER, GUEST = (
    "anon", "buyer", "other_buyer", "member", "viewer", "other_member", "superuser", "guest",
)
CALLERS = (ANON, BUYER, OTHER_BUYER, MEMBER, VIEWER, OTHER_MEMBER, SUPERUSER)
PASSWORD = "secret-pass-123"  # UserFactory's


@dataclass
class World:
    users: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)  # what the {names} of the URL templates stand for
    tokens: dict = field(default_factory=dict)  # booking access tokens, by the same names


def view_only_staff(username: str = "viewer"):
    """A staff user with only the "Organizer" group's view permissions (not yet a member of any organizer)."""
    user = UserFactory(username=username, is_staff=True)
    group = organizer_group_sync()  # a flush (transactional tests) deletes groups
    user.user_permissions.add(*group.permissions.filter(codename__startswith="view_"))
    return user


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
    viewer = view_only_staff()
    w.users = {BUYER: buyer, OTHER_BUYER: other_buyer, MEMBER: member, VIEWER: viewer,
               OTHER_MEMBER: other_member, SUPERUSER: superuser}
    organizer = OrganizerFactory(slug="acme", members=[member])
    organizer.members.add(viewer)
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


def organizer_write(ok: int, *, anon: int = 401, outsider: int = 403, viewer: int = 403) -> dict:
    """A write on the organizer's published event: only its full members and superusers pass;
    its view-only member sees the event but may not change it (403)."""
    return {ANON: anon, BUYER: outsider, OTHER_BUYER: outsider, MEMBER: ok, VIEWER: viewer, OTHER_MEMBER: outsider,
            SUPERUSER: ok}


def on_draft(ok: int, *, anon: int = 404, viewer: int = 403) -> dict:
    """The organizer's draft: invisible (404) to everyone but its members and superusers."""
    return organizer_write(ok, anon=anon, outsider=404, viewer=viewer)


def booking_route(ok: int, *, viewer: int | None = None) -> dict:
    """A route of the buyer's booking: the buyer, the event's organizer, a superuser and a token holder;
    the view-only member sees it (`viewer`: what it may do)."""
    return {ANON: 401, BUYER: ok, OTHER_BUYER: 404, MEMBER: ok, VIEWER: ok if viewer is None else viewer,
            OTHER_MEMBER: 404, SUPERUSER: ok, GUEST: ok}


MATRIX = [
    ("POST", "/api/v1/auth/token/", everyone(200)),
    # catalogue
    ("GET", "/api/v1/events/", everyone(200)),
    ("POST", "/api/v1/events/", {ANON: 401, BUYER: 403, OTHER_BUYER: 403, MEMBER: 201, VIEWER: 403,
                                 OTHER_MEMBER: 403, SUPERUSER: 201}),
    ("GET", "/api/v1/events/{event}/", everyone(200)),
    ("GET", "/api/v1/events/{draft}/", on_draft(200, viewer=200)),
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
    ("GET", "/api/v1/events/{draft}/availability/", on_draft(200, viewer=200)),
    ("GET", "/api/v1/events/{event}/ticket-types/", everyone(200)),
    ("GET", "/api/v1/events/{draft}/ticket-types/", on_draft(200, viewer=200)),
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
    # Paying is no organizer write (the admin has no such action): whoever sees the hold may pay it.
    ("POST", "/api/v1/bookings/{booking}/pay/", booking_route(202)),
    ("POST", "/api/v1/bookings/{booking}/cancel/", booking_route(200, viewer=403)),
    ("POST", "/api/v1/bookings/{paid}/refund/", booking_route(202, viewer=403)),
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


# --- Permission before validation (issue 15 item 10) ---------------------------------------------
# A caller refused with a body that would pass is refused the same way with one that would not:
# nothing about the input (its fields, its shape, whether it parses) is told to a caller who may
# not make the request, and nothing is validated for them.

WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Every field invalid but `organizer`, which names the organizer the matrix's member creates for:
# the member of another organizer is refused for naming it (a body that does not parse names none).
GARBAGE = {"name": 12, "capacity": -1, "items": "many", "card_number": [], "tickets": "all", "organizer": "acme"}
REFUSED_WRITES = [
    pytest.param(caller, method, url, expected, id=f"{caller}-{method}-{url}")
    for method, url, expectations in MATRIX if method in WRITES and url != "/api/v1/auth/token/"
    for caller, expected in expectations.items() if expected in (401, 403, 404)
]


@pytest.mark.parametrize("caller, method, url, expected", REFUSED_WRITES)
def test_a_refused_caller_is_refused_whatever_the_body(world, client_for, assert_problem, caller, method, url,
                                                       expected):
    client = client_for(world.users.get(caller))
    path = url.format(**world.ids)

    invalid = getattr(client, method.lower())(path, GARBAGE)
    assert_problem(invalid, expected)
    if (caller, method, url) != (OTHER_MEMBER, "POST", "/api/v1/events/"):  # refused for what the body names
        unparsable = getattr(client, method.lower())(path, b"{not json", content_type="application/json")
        assert_problem(unparsable, expected)


def test_a_buyer_creating_an_event_with_an_empty_body_is_403_not_400(world, client_for, assert_problem):
    response = client_for(world.users[BUYER]).post("/api/v1/events/", {})

    assert_problem(response, 403, "permission_denied")


def test_a_member_naming_another_organizer_is_403_even_with_an_invalid_body(world, client_for, assert_problem):
    response = client_for(world.users[MEMBER]).post("/api/v1/events/", {"organizer": "rival", "capacity": -1})

    assert_problem(response, 403, "permission_denied")


def test_the_view_only_member_cannot_cancel_the_event_through_the_api(world, client_for, assert_problem):
    response = client_for(world.users[VIEWER]).post(f"/api/v1/events/{world.ids['event']}/cancel/")

    assert_problem(response, 403, "permission_denied")
    assert Event.objects.get(pk=world.ids["event"]).status == Event.Status.PUBLISHED


def test_membership_alone_gives_no_organizer_write(world, client_for, assert_problem):
    """A member of the organizer without any permission (not in the group) reads what members read."""
    bare = UserFactory(username="bare")
    Event.objects.get(pk=world.ids["event"]).organizer.members.add(bare)
    client = client_for(bare)

    assert client.get(f"/api/v1/events/{world.ids['draft']}/").status_code == 200
    assert_problem(client.patch(f"/api/v1/events/{world.ids['draft']}/", {"name": "Mine"}), 403)
    assert_problem(client.post("/api/v1/events/", {**EVENT_BODY, "organizer": "acme"}), 403)
    assert_problem(client.post(f"/api/v1/bookings/{world.ids['paid']}/refund/", {}), 404)  # no view_booking
