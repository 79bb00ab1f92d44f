from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from events.models import Event, Organizer, TicketType
from events.organizer_group import ORGANIZER_GROUP, organizer_group_sync


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("secret-pass-123")


class OrganizerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organizer
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Organizer {n}")
    slug = factory.Sequence(lambda n: f"organizer-{n}")

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        """Members as `create_organizer` makes them: in the "Organizer" group, with its permissions.

        A member with other permissions (a view-only one) is added with `organizer.members.add(user)`.
        """
        if create and extracted:
            self.members.add(*extracted)
            group = Group.objects.filter(name=ORGANIZER_GROUP).first() or organizer_group_sync()
            group.user_set.add(*extracted)


class EventFactory(factory.django.DjangoModelFactory):
    """A published event a week from now (status is set directly: test setup only)."""

    class Meta:
        model = Event

    organizer = factory.SubFactory(OrganizerFactory)
    name = factory.Sequence(lambda n: f"Event {n}")
    slug = factory.Sequence(lambda n: f"event-{n}")
    venue = "Town Hall"
    city = "Berlin"
    category = Event.Category.MUSIC
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    ends_at = factory.LazyAttribute(lambda e: e.starts_at + timedelta(hours=3))
    timezone = "Europe/Berlin"
    currency = "EUR"
    status = Event.Status.PUBLISHED
    capacity = None


class TicketTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketType

    event = factory.SubFactory(EventFactory)
    name = factory.Sequence(lambda n: f"Type {n}")
    price = Decimal("49.00")
    capacity = 100
