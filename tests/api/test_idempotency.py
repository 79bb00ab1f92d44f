"""`Idempotency-Key` on API POSTs (DESIGN.md section 9, core/idempotency.py).

The same key with the same body replays the first response and creates
nothing; with another body -> 422; while the first still runs -> 409. Keys are
scoped to the caller and kept 24 hours.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from bookings import api as bookings_api
from bookings.models import Booking
from bookings.services import booking_cancel
from bookings.tests.factories import make_booking
from core.models import IdempotencyKey
from core.tasks import idempotency_keys_purge_task
from events.tests.factories import EventFactory, OrganizerFactory, TicketTypeFactory, UserFactory
from payments.models import Payment

API = "/api/v1"
CARD_NUMBER = "4111111111111111"


@pytest.fixture
def buyer(db):
    return UserFactory(username="buyer")


def new_ticket_type():
    """A ticket type on sale for a week from now (`now` as moved by time_machine, if it was)."""
    return TicketTypeFactory(event=EventFactory(capacity=None), name="General", capacity=5, price=Decimal("49.00"))


@pytest.fixture
def tt(db):
    return new_ticket_type()


def reserve_body(tt, quantity=1) -> dict:
    return {"event": str(tt.event_id), "items": [{"ticket_type": str(tt.pk), "quantity": quantity}]}


def post(client, path, body, key):
    return client.post(path, body, HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response_and_creates_nothing(client_for, buyer, tt):
    client = client_for(buyer)

    first = post(client, f"{API}/bookings/", reserve_body(tt, 2), "key-1")
    second = post(client, f"{API}/bookings/", reserve_body(tt, 2), "key-1")

    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Booking.objects.count() == 1
    tt.refresh_from_db()
    assert tt.held == 2
    record = IdempotencyKey.objects.get()
    assert (record.status, record.response_status, record.scope) == ("completed", 201, f"user:{buyer.pk}")


@pytest.mark.django_db
def test_without_a_key_every_post_creates(client_for, buyer, tt):
    client = client_for(buyer)

    client.post(f"{API}/bookings/", reserve_body(tt))
    client.post(f"{API}/bookings/", reserve_body(tt))

    assert Booking.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_same_key_with_another_body_is_422_idempotency_key_reused(client_for, buyer, tt, assert_problem):
    client = client_for(buyer)
    post(client, f"{API}/bookings/", reserve_body(tt, 1), "key-1")

    assert_problem(post(client, f"{API}/bookings/", reserve_body(tt, 2), "key-1"), 422, "idempotency_key_reused")
    assert Booking.objects.count() == 1


@pytest.mark.django_db
def test_same_key_on_another_route_is_422(client_for, buyer, tt, assert_problem):
    client = client_for(buyer)
    booking_id = post(client, f"{API}/bookings/", reserve_body(tt), "key-1").json()["id"]

    assert_problem(post(client, f"{API}/bookings/{booking_id}/cancel/", {}, "key-1"), 422, "idempotency_key_reused")
    assert Booking.objects.get().status == Booking.Status.RESERVED


@pytest.mark.django_db
def test_keys_are_scoped_per_caller(client_for, buyer, tt):
    other = UserFactory(username="other")

    mine = post(client_for(buyer), f"{API}/bookings/", reserve_body(tt), "shared-key")
    theirs = post(client_for(other), f"{API}/bookings/", reserve_body(tt), "shared-key")

    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "Idempotent-Replayed" not in theirs
    assert set(Booking.objects.values_list("buyer__username", flat=True)) == {"buyer", "other"}
    assert IdempotencyKey.objects.filter(key="shared-key").count() == 2


@pytest.mark.django_db
def test_a_4xx_answer_is_replayed_too(client_for, buyer, tt, assert_problem):
    blocker = make_booking(items=[(tt, 5)])
    client = client_for(buyer)
    body = reserve_body(tt, 1)
    first = assert_problem(post(client, f"{API}/bookings/", body, "key-1"), 409, "sold_out")
    booking_cancel(booking=blocker)  # seats are free again

    replay = post(client, f"{API}/bookings/", body, "key-1")

    assert replay.status_code == 409
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first
    assert Booking.objects.count() == 1  # only the blocker
    assert post(client, f"{API}/bookings/", body, "key-2").status_code == 201  # a new key is a new request


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 256, ""])
def test_a_key_too_long_or_empty_is_400(client_for, buyer, tt, assert_problem, key):
    assert_problem(post(client_for(buyer), f"{API}/bookings/", reserve_body(tt), key), 400, "invalid_idempotency_key")
    assert not Booking.objects.exists()


@pytest.mark.django_db
def test_a_key_of_255_characters_is_fine(client_for, buyer, tt):
    assert post(client_for(buyer), f"{API}/bookings/", reserve_body(tt), "k" * 255).status_code == 201


@pytest.mark.django_db
def test_a_key_can_be_used_again_after_24_hours(client_for, buyer, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    tt = new_ticket_type()
    client = client_for(buyer)
    first = post(client, f"{API}/bookings/", reserve_body(tt, 1), "daily")

    time_machine.move_to("2030-01-02 11:59Z", tick=False)
    assert post(client, f"{API}/bookings/", reserve_body(tt, 1), "daily")["Idempotent-Replayed"] == "true"

    time_machine.move_to("2030-01-02 12:00:01Z", tick=False)
    again = post(client, f"{API}/bookings/", reserve_body(tt, 2), "daily")  # another body: no 422 any more

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]
    assert IdempotencyKey.objects.get(key="daily").created_at.isoformat() == "2030-01-02T12:00:01+00:00"
    assert Booking.objects.count() == 2


@pytest.mark.django_db
def test_the_beat_purge_deletes_keys_older_than_24_hours(client_for, buyer, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    tt = new_ticket_type()
    client = client_for(buyer)
    post(client, f"{API}/bookings/", reserve_body(tt), "old-1")
    post(client, f"{API}/bookings/", reserve_body(tt), "old-2")
    time_machine.move_to("2030-01-02 06:00Z", tick=False)
    post(client, f"{API}/bookings/", reserve_body(tt), "young")
    time_machine.move_to("2030-01-02 12:00:01Z", tick=False)

    deleted = idempotency_keys_purge_task.delay().get()

    assert deleted == 2
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]
    assert idempotency_keys_purge_task() == 0  # running it again is harmless


@pytest.mark.django_db
@pytest.mark.parametrize("number, status", [(CARD_NUMBER, 202), ("4000000000000002", 402), ("4111111111111112", 400)])
def test_pay_with_a_key_stores_no_card_number(client_for, buyer, tt, number, status):
    booking = make_booking(items=[(tt, 1)], buyer=buyer)
    card = {"card_number": number, "exp_month": 12, "exp_year": 2099, "cvc": "987", "cardholder_name": "Ada"}
    client = client_for(buyer)

    first = post(client, f"{API}/bookings/{booking.pk}/pay/", card, "pay-1")
    replay = post(client, f"{API}/bookings/{booking.pk}/pay/", card, "pay-1")

    assert first.status_code == replay.status_code == status
    assert replay["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(booking=booking).count() == (0 if status == 400 else 1)
    stored = json.dumps(list(IdempotencyKey.objects.values()), default=str)
    # Long slices only: 3 or 4 digits (a CVC) turn up by chance in hashes, ids and timestamps.
    for secret in (number, number[:8], number[4:12], number[8:]):
        assert secret not in stored, secret
    assert all(len(fp) == 64 for fp in IdempotencyKey.objects.values_list("fingerprint", flat=True))


@pytest.mark.django_db
def test_a_replayed_pay_does_not_charge_twice(client_for, buyer, tt):
    booking = make_booking(items=[(tt, 1)], buyer=buyer)
    card = {"card_number": CARD_NUMBER, "exp_month": 12, "exp_year": 2099, "cvc": "123"}
    client = client_for(buyer)

    first = post(client, f"{API}/bookings/{booking.pk}/pay/", card, "pay-1")
    replay = post(client, f"{API}/bookings/{booking.pk}/pay/", card, "pay-1")

    assert replay.json() == first.json()
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_an_anonymous_guest_is_scoped_by_address(client_for, tt):
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    path = f"{API}/bookings/{booking.pk}/cancel/?token={booking.access_token}"
    client = client_for()

    first = client.post(path, {}, HTTP_IDEMPOTENCY_KEY="guest", REMOTE_ADDR="203.0.113.7")
    replay = client.post(path, {}, HTTP_IDEMPOTENCY_KEY="guest", REMOTE_ADDR="203.0.113.7")
    elsewhere = client.post(path, {}, HTTP_IDEMPOTENCY_KEY="guest", REMOTE_ADDR="198.51.100.1")

    assert first.status_code == replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert elsewhere.status_code == 409  # a new request from another address: already cancelled
    assert IdempotencyKey.objects.get(scope="ip:203.0.113.7").response_status == 200


@pytest.mark.django_db
def test_a_5xx_answer_is_not_kept_so_the_client_can_retry(client_for, buyer, tt):
    client = client_for(buyer)
    with mock.patch.object(bookings_api, "booking_reserve", side_effect=RuntimeError("boom")):
        failed = post(client, f"{API}/bookings/", reserve_body(tt), "retry-me")
    assert failed.status_code == 500

    retried = post(client, f"{API}/bookings/", reserve_body(tt), "retry-me")

    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried


# --- Two requests with the same key at the same time ---------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_booking(client_for, buyer, tt):
    """The first request is held inside the view until the second has its answer: a real overlap.

    Each thread has its own client and its own database connection (closed at
    its end); the in-progress key row is committed before the view runs, so
    the second request must see it and answer 409 at once, never reserve.
    """
    real_reserve = bookings_api.booking_reserve
    inside, release = threading.Event(), threading.Event()
    calls = []

    def held_reserve(**kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            inside.set()
            assert release.wait(20), "the test never released the first request"
        return real_reserve(**kwargs)

    token_user = buyer
    body = reserve_body(tt, 2)
    answers = {}

    def request(name):
        try:
            response = post(client_for(token_user), f"{API}/bookings/", body, "race-key")
            answers[name] = response
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions below
            answers[name] = exc
        finally:
            connection.close()

    first = threading.Thread(target=request, args=("first",), name="first")
    second = threading.Thread(target=request, args=("second",), name="second")
    with mock.patch.object(bookings_api, "booking_reserve", held_reserve):
        first.start()
        assert inside.wait(20), "the first request never reached the view"
        second.start()
        second.join(20)
        release.set()
        first.join(20)
    assert not first.is_alive() and not second.is_alive()

    winner, loser = answers["first"], answers["second"]
    assert winner.status_code == 201, winner.content
    # The contract allows a replay too, but the second answer came while the first was held
    # inside the view: nothing to replay yet, so "in progress" is the only right answer here.
    assert loser.status_code == 409, loser.content
    assert loser.json()["code"] == "idempotency_key_in_use"
    assert loser["Retry-After"] == "1"
    assert calls == ["first"]  # the second request never reached the view
    assert Booking.objects.count() == 1
    replay = post(client_for(buyer), f"{API}/bookings/", body, "race-key")
    assert (replay.status_code, replay.json()["id"]) == (201, winner.json()["id"])
    tt.refresh_from_db()
    assert tt.held == 2


@pytest.mark.django_db
def test_a_guest_rotating_x_forwarded_for_keeps_its_scope(client_for, settings, tt):
    settings.TRUSTED_PROXY_COUNT = 0
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    path = f"{API}/bookings/{booking.pk}/cancel/?token={booking.access_token}"
    client = client_for()

    first = client.post(path, {}, HTTP_IDEMPOTENCY_KEY="g", REMOTE_ADDR="203.0.113.7",
                        HTTP_X_FORWARDED_FOR="198.51.100.1")
    replay = client.post(path, {}, HTTP_IDEMPOTENCY_KEY="g", REMOTE_ADDR="203.0.113.7",
                         HTTP_X_FORWARDED_FOR="198.51.100.2")

    assert first.status_code == replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert list(IdempotencyKey.objects.values_list("scope", flat=True)) == ["ip:203.0.113.7"]


@pytest.mark.django_db
def test_behind_one_trusted_proxy_a_guest_is_scoped_by_the_address_the_proxy_saw(client_for, settings, tt):
    settings.TRUSTED_PROXY_COUNT = 1
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    path = f"{API}/bookings/{booking.pk}/cancel/?token={booking.access_token}"

    response = client_for().post(path, {}, HTTP_IDEMPOTENCY_KEY="g", REMOTE_ADDR="10.0.0.2",
                                 HTTP_X_FORWARDED_FOR="203.0.113.66, 198.51.100.7")

    assert response.status_code == 200
    assert list(IdempotencyKey.objects.values_list("scope", flat=True)) == ["ip:198.51.100.7"]


@pytest.mark.django_db
@pytest.mark.parametrize("proxies", [0, 1])
def test_a_300_character_x_forwarded_for_is_no_500_on_an_idempotent_post(client_for, settings, tt, proxies):
    settings.TRUSTED_PROXY_COUNT = proxies
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    path = f"{API}/bookings/{booking.pk}/cancel/?token={booking.access_token}"

    response = client_for().post(path, {}, HTTP_IDEMPOTENCY_KEY="g", REMOTE_ADDR="203.0.113.7",
                                 HTTP_X_FORWARDED_FOR="7" * 300)

    assert response.status_code == 200, response.content
    assert list(IdempotencyKey.objects.values_list("scope", flat=True)) == ["ip:203.0.113.7"]


# --- A replay is answered only to a caller who may make the request now (issue 15 item 10) ----------


def event_body() -> dict:
    starts = timezone.now() + timedelta(days=30)
    return {"name": "Spring Gala", "venue": "Opera", "city": "Vienna", "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=3)).isoformat(), "organizer": "acme"}


@pytest.mark.django_db
def test_a_replayed_event_create_is_refused_to_a_member_who_left_the_organizer(client_for, assert_problem):
    member = UserFactory(username="member")
    acme = OrganizerFactory(slug="acme", members=[member])
    OrganizerFactory(slug="rival", members=[member])  # still creates events, for another organizer
    client, body = client_for(member), event_body()
    first = post(client, f"{API}/events/", body, "create-1")
    assert first.status_code == 201
    acme.members.remove(member)

    replay = post(client, f"{API}/events/", body, "create-1")

    body = assert_problem(replay, 403, "permission_denied")
    assert "Idempotent-Replayed" not in replay
    assert first.json()["id"] not in json.dumps(body)


@pytest.mark.django_db
def test_a_replayed_publish_is_refused_once_the_permission_is_withdrawn(client_for, assert_problem):
    member = UserFactory(username="member")
    event = EventFactory(organizer=OrganizerFactory(members=[member]), status="draft")
    TicketTypeFactory(event=event)
    client = client_for(member)
    assert post(client, f"{API}/events/{event.pk}/publish/", {}, "publish-1").status_code == 200
    member.groups.clear()

    assert_problem(post(client_for(member), f"{API}/events/{event.pk}/publish/", {}, "publish-1"), 403)


@pytest.mark.django_db
def test_a_replayed_organizer_refund_is_refused_once_the_permission_is_withdrawn(client_for, make_paid_booking,
                                                                                 assert_problem):
    member = UserFactory(username="member")
    tt = TicketTypeFactory(event=EventFactory(organizer=OrganizerFactory(members=[member])))
    booking = make_paid_booking(tt, buyer=UserFactory(username="buyer"))
    path = f"{API}/bookings/{booking.pk}/refund/"
    assert post(client_for(member), path, {}, "refund-1").status_code == 202
    member.groups.clear()
    member.user_permissions.add(*Permission.objects.filter(codename="view_booking"))  # still sees the booking

    replay = post(client_for(member), path, {}, "refund-1")

    assert_problem(replay, 403, "permission_denied")
    assert "Idempotent-Replayed" not in replay


@pytest.mark.django_db
def test_a_guest_cancel_is_not_replayed_to_a_neighbour_without_the_token(client_for, tt, assert_problem):
    """Anonymous keys are scoped by address: a caller behind the same address with the same key
    and body but a wrong token must not be handed the stored booking (with its access token)."""
    booking = make_booking(items=[(tt, 1)], email="guest@example.com")
    path = f"{API}/bookings/{booking.pk}/cancel/"
    first = client_for().post(f"{path}?token={booking.access_token}", {}, HTTP_IDEMPOTENCY_KEY="k",
                              REMOTE_ADDR="203.0.113.7")
    assert first.status_code == 200

    replay = client_for().post(f"{path}?token=guessed", {}, HTTP_IDEMPOTENCY_KEY="k", REMOTE_ADDR="203.0.113.7")

    body = assert_problem(replay, 404, "not_found")
    assert booking.access_token not in json.dumps(body)
