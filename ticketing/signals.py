"""Keep the caches honest: a revoked token or a changed user stops working at once, a changed password
revokes the user's API tokens; an event or a ticket type saved in this process is read again by the
next reservation here."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from knox.models import AuthToken

from bookings.services import forget_recent_ticket_type
from events.models import Event, TicketType
from events.permissions import forget_recent_event
from ticketing import tokens


@receiver(post_delete, sender=AuthToken)
def _token_deleted(sender, instance, **kwargs):
    tokens.token_revoked(instance.digest)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def _user_saving(sender, instance, update_fields=None, raw=False, **kwargs):
    # Decided before the save: afterwards the stored password is the new one.
    instance._revoke_api_tokens = not raw and tokens.password_changed(instance, update_fields)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _user_saved(sender, instance, **kwargs):
    if getattr(instance, "_revoke_api_tokens", False):
        instance._revoke_api_tokens = False
        tokens.api_tokens_revoke(user=instance)
    tokens.user_changed(instance)


@receiver(post_save, sender=Event)
@receiver(post_delete, sender=Event)
def _event_changed(sender, instance, **kwargs):
    forget_recent_event(instance.pk)


@receiver(post_save, sender=TicketType)
@receiver(post_delete, sender=TicketType)
def _ticket_type_changed(sender, instance, **kwargs):
    forget_recent_ticket_type(instance.pk)
