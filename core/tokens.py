"""API tokens: issued at login, stored as digests, optionally expiring, revoked with the password.

django-rest-knox tokens: a random key handed out once, of which only a SHA-512 digest is
stored (the row's primary key), with an optional expiry (`REST_KNOX["TOKEN_TTL"]`, from
API_TOKEN_TTL_HOURS). Clients send `Authorization: Token <key>` (DESIGN.md section 9).

The lookup digest -> (user, expiry) is cached for a minute
(`core.api.CachedTokenAuthentication`). Whatever ends a token also ends its cache entry:
- deleting a token drops the entry at once and, when the deleting transaction commits,
  leaves a "revoked" marker for the cache's lifetime; lookups only add entries, never
  overwrite them, so a request that read the row before that commit cannot cache it again;
- saving a user drops the entries of all their tokens, now and again at commit;
- an expiry is kept with the cached entry and checked on every request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import is_password_usable
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.crypto import hash_token
from knox.models import AuthToken, get_digest_token
from knox.settings import CONSTANTS, knox_settings

from core.errors import InvalidInput, LoginLockedOut

TOKEN_CACHE_SECONDS = 60
REVOKED = "revoked"


# --- The cached lookup ----------------------------------------------------------------------------


def token_cache_key(digest: str) -> str:
    return "knox-token:" + digest


def cached_token(digest: str):
    """(user, expiry) cached for `digest`; `REVOKED` for a revoked token; None when not cached."""
    return cache.get(token_cache_key(digest))


def remember_token(digest: str, user, expiry: datetime | None) -> None:
    """Cache a token read from the database, unless something (a revocation marker) is there already."""
    seconds = TOKEN_CACHE_SECONDS
    if expiry is not None:
        seconds = max(1, min(seconds, int((expiry - timezone.now()).total_seconds())))
    cache.add(token_cache_key(digest), (user, expiry), seconds)


def token_revoked(digest: str) -> None:
    """A token row was deleted: its cache entry goes now; at commit a marker keeps it out for the cache's lifetime."""
    key = token_cache_key(digest)
    cache.delete(key)
    _on_commit(lambda: cache.set(key, REVOKED, TOKEN_CACHE_SECONDS))


def user_changed(user) -> None:
    """A user was saved: the cached copies of them (one per token) are read again, now and after commit."""
    keys = [token_cache_key(digest) for digest in AuthToken.objects.filter(user_id=user.pk)
            .values_list("digest", flat=True)]
    if keys:
        cache.delete_many(keys)
        _on_commit(lambda: cache.delete_many(keys))


def _on_commit(callback) -> None:
    if connection.in_atomic_block:
        transaction.on_commit(callback)


# --- Services ----------------------------------------------------------------------------------


def api_token_login(*, request, username: str, password: str) -> str:
    """A new API token for the user these credentials log in, under the login lockout (django-axes).

    `request` goes to `authenticate` so django-axes counts the attempt and refuses a
    locked-out username and address (LoginLockedOut) like the admin and site logins.
    """
    user = authenticate(request=request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        raise LoginLockedOut(retry_after=int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if user is None:
        message = str(_("Unable to log in with provided credentials."))
        raise InvalidInput(message, errors={"non_field_errors": [message]})
    return api_token_create(user=user)


@transaction.atomic
def api_token_create(*, user) -> str:
    """A new token of `user` (expiring after REST_KNOX["TOKEN_TTL"], if set); the key, which is not stored.

    A user keeps at most API_TOKEN_LIMIT_PER_USER tokens: the oldest beyond that are revoked.
    """
    _token, key = AuthToken.objects.create(user=user)
    limit = settings.API_TOKEN_LIMIT_PER_USER
    if limit:
        surplus = list(AuthToken.objects.filter(user=user).order_by("-created", "-digest")
                       .values_list("digest", flat=True)[limit:])
        if surplus:
            AuthToken.objects.filter(digest__in=surplus).delete()
    return key


def api_tokens_create_many(*, users: Iterable, key_length: int | None = None) -> list[str]:
    """One new token for each of `users` in one statement (seed data: no per-user cap); their keys, in order.

    `key_length`: keys of that many hex characters instead of the default length.
    """
    rows, keys = [], []
    for user in users:
        if key_length is None:
            digest, key = get_digest_token()
        else:
            key = secrets.token_hex(key_length // 2)
            digest = hash_token(key)
        rows.append(AuthToken(user=user, digest=digest, token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH],
                              expiry=_expiry()))
        keys.append(key)
    AuthToken.objects.bulk_create(rows)
    return keys


def api_tokens_revoke(*, user) -> int:
    """Revoke every token of `user` (their cache entries go too); how many there were."""
    deleted, _by_model = AuthToken.objects.filter(user_id=user.pk).delete()
    return deleted


def api_tokens_purge_expired() -> int:
    """Delete the tokens whose expiry has passed (they are refused already); how many."""
    deleted, _by_model = AuthToken.objects.filter(expiry__lte=timezone.now()).delete()
    return deleted


def password_changed(user, update_fields) -> bool:
    """Whether saving `user` now changes their password (and so must revoke their tokens).

    `set_password()` since the last save, or a usable password made unusable (the admin's
    "disable password-based authentication"). A hash that Django upgrades when its owner
    logs in is the same password: `check_password` saves it without `set_password`'s mark.
    """
    if update_fields is not None and "password" not in update_fields:
        return False
    if getattr(user, "_password", None) is not None:  # AbstractBaseUser.set_password's mark, cleared by save()
        return True
    if user.pk is None or is_password_usable(user.password):
        return False
    stored = type(user)._default_manager.filter(pk=user.pk).values_list("password", flat=True).first()
    return stored is not None and is_password_usable(stored)


def _expiry() -> datetime | None:
    ttl = knox_settings.TOKEN_TTL
    return timezone.now() + ttl if ttl is not None else None
