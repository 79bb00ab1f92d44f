"""A ticket type saved or deleted in this process is read again by the next reservation here (the
reservation keeps one-second copies of ticket types)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from bookings.services import forget_recent_ticket_type
from events.models import TicketType


@receiver(post_save, sender=TicketType)
@receiver(post_delete, sender=TicketType)
def _ticket_type_changed(sender, instance, **kwargs):
    forget_recent_ticket_type(instance.pk)
