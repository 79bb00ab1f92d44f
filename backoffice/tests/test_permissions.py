"""Who sees which event: the queryset (lists) and the single-event check (the reservation path) agree."""

import itertools
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser

from events.models import Event
from events.permissions import event_visible_to, events_visible_to
from events.tests.factories import EventFactory, OrganizerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_event_visible_to_agrees_with_events_visible_to_for_every_caller_and_status():
    mine, theirs = OrganizerFactory(), OrganizerFactory()
    member = UserFactory()
    mine.members.add(member)
    callers = {"anonymous": AnonymousUser(), "buyer": UserFactory(), "member": member,
               "superuser": UserFactory(is_superuser=True, is_staff=True)}
    events = [EventFactory(organizer=org, status=status)
              for org, status in itertools.product((mine, theirs), Event.Status.values)]

    for name, user in callers.items():
        listed = set(events_visible_to(user).values_list("pk", flat=True))
        single = {e.pk for e in events if event_visible_to(user, e.pk) is not None}
        assert single == listed, name
        assert event_visible_to(user, uuid.uuid4()) is None
    assert {e.status for e in events if e.pk in listed} == set(Event.Status.values)  # the superuser sees all
    visible_to_buyer = {e.status for e in events if event_visible_to(callers["buyer"], e.pk)}
    assert visible_to_buyer == {Event.Status.PUBLISHED, Event.Status.CANCELLED}


# --- One permission model for the admin and the API (issue 15 item 9) ------------------------------


def _callers(organizer):
    """Every kind of caller of an organizer's rows, made as production makes them."""
    from django.contrib.auth.models import Permission

    member = UserFactory(username="member")  # in the Organizer group (the factory, like create_organizer)
    OrganizerFactory(members=[member])  # ... of another organizer too: no matter
    organizer.members.add(member)
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    organizer.members.add(viewer)
    bare = UserFactory(username="bare", is_staff=True)  # a member without any permission
    organizer.members.add(bare)
    return {
        "member": member, "viewer": viewer, "bare": bare,
        "other_member": OrganizerFactory(members=[UserFactory(username="other")]).members.get(),
        "buyer": UserFactory(username="buyer"), "anonymous": AnonymousUser(),
        "superuser": UserFactory(username="root", is_superuser=True, is_staff=True),
    }


def test_the_admin_asks_the_functions_the_api_asks():
    from django.contrib import admin
    from django.test import RequestFactory

    from bookings.models import Booking
    from bookings.tests.factories import make_booking
    from events import permissions as p
    from events.models import TicketType
    from events.tests.factories import TicketTypeFactory
    from payments.models import Refund

    organizer = OrganizerFactory()
    tt = TicketTypeFactory(event=EventFactory(organizer=organizer))
    event, booking = tt.event, make_booking(items=[(tt, 1)], email="guest@example.com")
    admins = {model: admin.site._registry[model] for model in (Event, TicketType, Booking, Refund)}
    pairs = [
        (lambda r: admins[Event].has_add_permission(r), lambda u: p.can_create_event(u)),
        (lambda r: admins[Event].has_view_permission(r, event), lambda u: p.can_view_event(u, event)),
        (lambda r: admins[Event].has_change_permission(r, event), lambda u: p.can_change_event(u, event)),
        (lambda r: admins[Event].has_delete_permission(r, event), lambda u: p.can_delete_event(u, event)),
        (lambda r: admins[Event].has_export_permission(r, event), lambda u: p.can_export_bookings(u, event)),
        (lambda r: admins[TicketType].has_add_permission(r), lambda u: p.can_add_ticket_type(u)),
        (lambda r: admins[TicketType].has_change_permission(r, tt), lambda u: p.can_change_ticket_type(u, event)),
        (lambda r: admins[TicketType].has_delete_permission(r, tt), lambda u: p.can_delete_ticket_type(u, event)),
        (lambda r: admins[Booking].has_view_permission(r, booking), lambda u: p.can_view_bookings(u, event)),
        (lambda r: admins[Booking].has_refund_permission(r), lambda u: p.can_refund_booking(u)),
        (lambda r: admins[Booking].has_cancel_permission(r), lambda u: p.can_cancel_booking(u)),
        (lambda r: admins[Refund].has_retry_permission(r), lambda u: p.can_retry_refund(u)),
    ]
    callers = _callers(organizer)
    answers = {}
    for name, user in callers.items():
        request = RequestFactory().get("/admin/")
        request.user = user
        row = [(admin_check(request), api_check(user)) for admin_check, api_check in pairs]
        assert all(a == b for a, b in row), (name, row)
        answers[name] = [a for a, _ in row]

    assert all(answers["member"]) and all(answers["superuser"])
    assert answers["viewer"] == [False, True, False, False, True, False, False, False, True, False, False, False]
    for name in ("bare", "buyer", "anonymous"):
        assert not any(answers[name]), name
    # Another organizer's member: the model-level checks (no row: its own rows) pass, none on these rows.
    assert answers["other_member"] == [True, False, False, False, False, True, False, False, False, True, True, True]


def test_membership_without_permissions_writes_nothing_and_permissions_without_membership_nothing_here():
    from events.permissions import can_change_event, can_create_event, has_organizer_permission

    organizer, elsewhere = OrganizerFactory(), OrganizerFactory()
    event = EventFactory(organizer=organizer)
    callers = _callers(organizer)
    elsewhere.members.add(callers["member"])

    assert has_organizer_permission(callers["member"], "events.change_event", event)
    assert not can_change_event(callers["bare"], event) and not can_create_event(callers["bare"])
    assert not can_change_event(callers["other_member"], event)
    assert can_create_event(callers["member"], elsewhere) and not can_create_event(callers["other_member"], organizer)
    callers["member"].is_active = False
    assert not can_change_event(callers["member"], event)
