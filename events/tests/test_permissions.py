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
