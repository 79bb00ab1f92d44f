"""`python manage.py check_inventory [--repair]`: counters against ticket rows."""

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from bookings.selectors import inventory_mismatches
from bookings.services import inventory_repair


class Command(BaseCommand):
    help = (
        "Compare every ticket type's and event's sold/held counters with its ticket rows, and every "
        "ticket's status with its booking's. Exits non-zero on any mismatch; --repair fixes counters "
        "under the same locks reservations take."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="set counters to what the ticket rows say")

    def handle(self, *args, repair: bool = False, **options):
        mismatches = inventory_mismatches()
        for mismatch in mismatches:
            self.stdout.write(f"MISMATCH {mismatch}")
        if not mismatches:
            self.stdout.write(self.style.SUCCESS("Inventory OK: every counter matches its ticket rows."))
            return
        if not repair:
            raise CommandError(f"{len(mismatches)} mismatch(es) found; run with --repair to fix counters.")
        event_ids = sorted({m.pk for m in mismatches if m.kind == "event"}
                           | set(_events_of_types([m.pk for m in mismatches if m.kind == "ticket_type"])))
        try:
            inventory_repair(event_ids=event_ids)
        except IntegrityError as exc:
            raise CommandError(f"Cannot repair: ticket rows exceed a capacity ({exc}).") from exc
        left = inventory_mismatches()
        for mismatch in left:
            self.stdout.write(f"STILL {mismatch}")
        if left:
            raise CommandError(f"{len(left)} mismatch(es) left that counters cannot fix (ticket/booking states).")
        self.stdout.write(self.style.SUCCESS(f"Repaired the counters of {len(event_ids)} event(s)."))


def _events_of_types(type_ids):
    from events.models import TicketType

    return TicketType.objects.filter(pk__in=type_ids).values_list("event_id", flat=True).distinct()
