"""API authentication: django-rest-knox tokens, with the lookup cached."""

from __future__ import annotations

from django.utils import timezone
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework import exceptions

from core import tokens


class CachedTokenAuthentication(knox_auth.TokenAuthentication):
    """`Authorization: Token <key>`: django-rest-knox's hashed tokens, whose lookup is cached for a minute.

    A token stops working at once when it is revoked, its user's password changes or the
    user is saved (the cache entry is dropped or blocked, core/tokens.py), or when it
    expires (checked on every request). `request.auth` is the token's digest.
    """

    def authenticate_credentials(self, token: bytes):
        try:
            key = token.decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_INVALID_TOKEN) from None
        digest = hash_token(key)
        entry = tokens.cached_token(digest)
        if entry is None:
            row = AuthToken.objects.select_related("user").filter(digest=digest).first()
            if row is None or _expired(row.expiry):
                raise exceptions.AuthenticationFailed(_INVALID_TOKEN)
            user, expiry = row.user, row.expiry
            tokens.remember_token(digest, user, expiry)
        elif entry == tokens.REVOKED:
            raise exceptions.AuthenticationFailed(_INVALID_TOKEN)
        else:
            user, expiry = entry
            if expiry is not None and _expired(expiry):
                raise exceptions.AuthenticationFailed(_INVALID_TOKEN)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, digest


_INVALID_TOKEN = "Invalid token."  # noqa: S105 - a message, not a secret


def _expired(expiry) -> bool:
    return expiry is not None and expiry <= timezone.now()
