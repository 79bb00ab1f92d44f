"""Keep the token cache honest: a revoked token or a changed user stops working at once, and a changed
password revokes the user's API tokens."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from knox.models import AuthToken

from core import tokens


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
