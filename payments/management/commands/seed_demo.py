"""`python manage.py seed_demo`: demo logins and events, created through the services (idempotent).

It lives in the payments app because it touches every app: the sold tickets
of the nearly sold-out event are bought with a test card like any other.
"""

import itertools
import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from bookings.services import LineItem, booking_reserve
from events.models import Event, Organizer
from events.organizer_group import organizer_member_add
from events.services import event_create, event_publish, ticket_type_create
from payments.gateway import Card
from payments.services import payment_authorize, payment_capture

ORGANIZER_SLUG = "demo-productions"
TEST_CARD = Card(number="4111111111111111", exp_month=12, exp_year=2099, cvc="123", holder_name="Demo Buyer")

EVENTS = [
    {
        "name": "Midnight Jazz Quartet", "venue": "Blue Note Hall", "city": "Berlin", "category": "music",
        "timezone": "Europe/Berlin", "currency": "EUR", "days": 14, "hours": 3,
        "description": "Four musicians, one long night of standards and new pieces.",
        "types": [("Standing", "29.00", 200), ("Seated", "49.00", 80), ("Front row", "89.00", 20)],
    },
    {
        "name": "Hamlet", "venue": "Old Vic", "city": "London", "category": "theatre",
        "timezone": "Europe/London", "currency": "GBP", "days": 21, "hours": 3, "capacity": 120,
        "description": "Shakespeare's tragedy in a new production. The venue holds 120.",
        "types": [("Stalls", "45.00", 100), ("Circle", "30.00", 60)],
    },
    {
        "name": "City Marathon After-Party", "venue": "Harbour Warehouse", "city": "Oslo", "category": "festival",
        "timezone": "Europe/Oslo", "currency": "NOK", "days": 30, "hours": 5,
        "description": "Nearly sold out: only a handful of VIP tickets left.",
        "types": [("General", "350.00", 300), ("VIP", "900.00", 50)],
        "sold": {"VIP": 47, "General": 120},
    },
    {
        "name": "Python Web Conference", "venue": "Congress Center", "city": "Berlin", "category": "conference",
        "timezone": "Europe/Berlin", "currency": "EUR", "days": 45, "hours": 9, "hour": 9,
        "description": "Two tracks of talks on building web applications.",
        "types": [("Early bird", "199.00", 100), ("Regular", "299.00", 400)],
    },
]


def local_start(spec: dict) -> datetime:
    """The event's start: `days` from today at `hour` o'clock (19 unless given) on its own zone's clock."""
    zone = zoneinfo.ZoneInfo(spec["timezone"])
    day = timezone.localdate(timezone=zone) + timedelta(days=spec["days"])
    return datetime.combine(day, time(spec.get("hour", 19)), tzinfo=zone)


class Command(BaseCommand):
    help = ("Create the demo organizer, logins and published events (running it again changes nothing). "
            "Refused with DJANGO_DEBUG off (outside demo mode) unless --force: the logins have well-known passwords.")

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true",
                            help="run even with DJANGO_DEBUG off (a demo deployment, e.g. docker-compose.yml's)")

    def handle(self, *args, **options):
        if not (settings.DEBUG or settings.DEMO) and not options["force"]:
            raise CommandError(
                "seed_demo creates logins with well-known passwords (admin/admin, organizer/organizer, buyer/buyer) "
                "and DJANGO_DEBUG and DJANGO_DEMO are off, so this looks like production. "
                "Run it with --force for a demo."
            )
        with transaction.atomic():
            organizer, users = self._logins()
        created = 0
        for spec in EVENTS:
            # The slug event_create gives the event: a rerun finds it and skips it.
            if Event.objects.filter(organizer=organizer, slug=slugify(spec["name"])).exists():
                continue
            # All or nothing per event, so an interrupted run leaves no half-made event behind.
            with transaction.atomic():
                self._event(organizer, spec)
            created += 1
        self.stdout.write(self.style.SUCCESS(
            f"Demo data ready ({created} event(s) created). Logins: organizer/organizer, buyer/buyer, admin/admin."
        ))

    def _logins(self):
        User = get_user_model()
        organizer, _ = Organizer.objects.get_or_create(slug=ORGANIZER_SLUG, defaults={"name": "Demo Productions"})
        users = {}
        for username, staff, superuser in (("admin", True, True), ("organizer", True, False),
                                           ("buyer", False, False)):
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username, f"{username}@example.com", username,
                                                is_staff=staff, is_superuser=superuser)
            users[username] = user
        # Exactly what `create_organizer` makes: a staff member in the "Organizer" group. Direct
        # permissions an older seed_demo gave this demo login (Organizers included) are taken back.
        users["organizer"].user_permissions.clear()
        organizer_member_add(organizer=organizer, user=users["organizer"])
        return organizer, users

    def _event(self, organizer, spec):
        starts = local_start(spec)
        event = event_create(
            organizer=organizer, name=spec["name"], description=spec["description"], venue=spec["venue"],
            city=spec["city"], category=spec["category"], timezone=spec["timezone"], currency=spec["currency"],
            starts_at=starts, ends_at=starts + timedelta(hours=spec["hours"]), capacity=spec.get("capacity"),
        )
        types = {}
        for position, (name, price, capacity) in enumerate(spec["types"]):
            types[name] = ticket_type_create(event=event, name=name, price=Decimal(price), capacity=capacity,
                                             position=position)
        event_publish(event=event)
        fans = itertools.count(1)
        for name, count in spec.get("sold", {}).items():
            while count > 0:
                n = min(count, types[name].max_per_booking)
                # A guest buyer per booking: one buyer may have only so many tickets of an event
                # (BOOKING_MAX_TICKETS_PER_BUYER).
                booking = booking_reserve(event=event, items=[LineItem(types[name], n)],
                                          email=f"fan{next(fans)}@demo.example.com")
                payment = payment_authorize(booking=booking, card=TEST_CARD)
                payment_capture(payment_id=payment.pk)  # the queued capture finds it done
                count -= n
        return event


