"""An event saved or deleted in this process is read again by the next request here (events/permissions.py
keeps one-second copies of events)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from events.models import Event
from events.permissions import forget_recent_event


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
def _event_changed(sender, instance, **kwargs):
    forget_recent_event(instance.pk)
