"""A ticket type saved or deleted in this process is read again by the next reservation here (the
reservation keeps one-second copies of ticket types); the event page asks which holds lapsed
(events.availability.lapsed_holds)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bookings.selectors import lapsed_holds_per_type
from bookings.services import forget_recent_ticket_type
from events.availability import lapsed_holds
from events.models import TicketType


@receiver(post_save, sender=TicketType)
@receiver(post_delete, sender=TicketType)
def _ticket_type_changed(sender, instance, **kwargs):
    forget_recent_ticket_type(instance.pk)


@receiver(lapsed_holds)
def _lapsed_holds(sender, event, now, **kwargs):
    return lapsed_holds_per_type(event=event, now=now)
