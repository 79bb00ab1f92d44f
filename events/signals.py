"""An event saved or deleted in this process is read again by the next request here (events/permissions.py
keeps one-second copies of events); the site's cached availability of an event whose ticket types or
cap an organizer changed is forgotten at once (events.availability)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from events.availability import availability_changed
from events.models import Event, TicketType
from events.permissions import forget_recent_event


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
def _event_changed(sender, instance, **kwargs):
    forget_recent_event(instance.pk)
    availability_changed(instance.pk)


@receiver(post_save, sender=TicketType)
@receiver(post_delete, sender=TicketType)
def _ticket_type_changed(sender, instance, **kwargs):
    availability_changed(instance.event_id)
