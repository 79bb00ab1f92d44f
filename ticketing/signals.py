"""Keep the caches honest: a revoked token or a changed user stops working at once; an event or
a ticket type saved in this process is read again by the next reservation here."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from bookings.services import forget_recent_ticket_type
from events.models import Event, TicketType
from events.permissions import forget_recent_event
from ticketing.api import forget_token, forget_user_tokens


@receiver(post_delete, sender=Token)
def _token_deleted(sender, instance, **kwargs):
    forget_token(instance.key)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _user_saved(sender, instance, **kwargs):
    forget_user_tokens(instance)


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
def _event_changed(sender, instance, **kwargs):
    forget_recent_event(instance.pk)


@receiver(post_save, sender=TicketType)
@receiver(post_delete, sender=TicketType)
def _ticket_type_changed(sender, instance, **kwargs):
    forget_recent_ticket_type(instance.pk)
