"""API tokens (issue 15, item 12): stored as digests, expiring, revoked with the password, a throttled endpoint.

`POST /api/v1/auth/token/` answers `{"token": <key>}` and the key authenticates as
`Authorization: Token <key>` (DESIGN.md section 9). Only a digest of the key is
stored; the token -> user lookup is cached (one cache read per request on the hot
path), so every test that revokes or expires a token checks it stops working even
while its lookup is cached.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from events.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"
PASSWORD = "secret-pass-123"
NEW_PASSWORD = "An0ther-long-passw0rd"
GENEROUS = {"anon": "1000/min", "user": "1000/min", "ip": "1000/min", "bookings": "1000/min", "pay": "1000/min",
            "login": "1000/min"}


@pytest.fixture
def buyer():
    return UserFactory(username="buyer", email="buyer@example.com")


@pytest.fixture
def rates(settings):
    def apply(**overrides):
        merged = {**GENEROUS, **overrides}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}
        return merged

    return apply


def obtain(client_for, username="buyer", password=PASSWORD, **extra):
    return client_for().post(f"{API}/auth/token/", {"username": username, "password": password}, **extra)


def token_of(client_for, username="buyer", password=PASSWORD) -> str:
    response = obtain(client_for, username, password)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def bookings_status(client_for, key: str) -> int:
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(f"{API}/bookings/").status_code


def rows_of_token_tables() -> list[str]:
    """Every row of every table whose name mentions tokens, as text."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if "token" in table:
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - a table name the database gave
                rows += [" ".join(map(str, row)) for row in cursor.fetchall()]
    return rows


# --- Stored hashed -----------------------------------------------------------------------------


def test_the_key_is_not_stored_only_a_digest_of_it(client_for, buyer):
    key = token_of(client_for)

    rows = rows_of_token_tables()
    assert rows, "no token row at all"
    assert not any(key in row for row in rows)
    assert bookings_status(client_for, key) == 200


def test_every_login_gets_a_key_of_its_own_and_all_of_them_work(client_for, buyer):
    first, second = token_of(client_for), token_of(client_for)

    assert first != second
    assert bookings_status(client_for, first) == bookings_status(client_for, second) == 200


def test_the_token_response_is_only_the_token(client_for, buyer):
    response = obtain(client_for)

    assert set(response.json()) == {"token"}
    assert len(response.json()["token"]) >= 40


def test_an_unknown_or_malformed_key_is_401(client_for, buyer, assert_problem):
    token_of(client_for)
    for header in ("Token " + "0" * 64, "Token not-hex-at-all", "Token \u00e9t\u00e9"):
        client = client_for()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert_problem(client.get(f"{API}/bookings/"), 401, "authentication_failed")


def test_a_user_keeps_at_most_the_newest_tokens_the_setting_allows(client_for, buyer, settings):
    settings.API_TOKEN_LIMIT_PER_USER = 2
    first, second, third = (token_of(client_for) for _ in range(3))

    assert bookings_status(client_for, first) == 401
    assert bookings_status(client_for, second) == bookings_status(client_for, third) == 200


# --- Expiry ------------------------------------------------------------------------------------


def test_tokens_do_not_expire_by_default(client_for, buyer, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    key = token_of(client_for)

    time_machine.move_to("2031-01-01 12:00Z", tick=False)

    assert bookings_status(client_for, key) == 200


def test_an_expired_token_is_401_even_while_its_lookup_is_cached(client_for, buyer, settings, time_machine,
                                                                  assert_problem):
    settings.REST_KNOX = {**getattr(settings, "REST_KNOX", {}), "TOKEN_TTL": timedelta(hours=1)}
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    key = token_of(client_for)
    assert bookings_status(client_for, key) == 200  # cached now

    time_machine.move_to("2030-01-01 12:59Z", tick=False)
    assert bookings_status(client_for, key) == 200
    time_machine.move_to("2030-01-01 13:01Z", tick=False)

    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_problem(client.get(f"{API}/bookings/"), 401, "authentication_failed")


def test_an_expired_token_is_401_when_its_lookup_is_not_cached(client_for, buyer, settings, time_machine):
    from django.core.cache import cache

    settings.REST_KNOX = {**getattr(settings, "REST_KNOX", {}), "TOKEN_TTL": timedelta(hours=1)}
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    key = token_of(client_for)

    time_machine.move_to("2030-01-01 13:01Z", tick=False)
    cache.clear()

    assert bookings_status(client_for, key) == 401


def test_expired_tokens_are_purged(client_for, buyer, settings, time_machine):
    from knox.models import AuthToken

    from core.tasks import api_tokens_purge_task

    settings.REST_KNOX = {**getattr(settings, "REST_KNOX", {}), "TOKEN_TTL": timedelta(hours=1)}
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    old = token_of(client_for)
    time_machine.move_to("2030-01-01 12:30Z", tick=False)
    young = token_of(client_for)

    time_machine.move_to("2030-01-01 13:10Z", tick=False)
    api_tokens_purge_task()

    assert AuthToken.objects.filter(user=buyer).count() == 1
    assert bookings_status(client_for, old) == 401
    assert bookings_status(client_for, young) == 200


# --- Revoked with the password -----------------------------------------------------------------


@pytest.fixture
def cached_key(client_for, buyer):
    """A key of the buyer whose lookup is already cached, and one of another user that must survive."""
    key = token_of(client_for)
    assert bookings_status(client_for, key) == 200
    UserFactory(username="other")
    other = token_of(client_for, "other")
    return key, other


def assert_revoked(client_for, keys):
    key, other = keys
    assert bookings_status(client_for, key) == 401
    assert bookings_status(client_for, other) == 200


def test_set_password_revokes_every_token_of_the_user(client_for, buyer, cached_key):
    second = token_of(client_for)

    buyer.set_password(NEW_PASSWORD)
    buyer.save()

    assert_revoked(client_for, cached_key)
    assert bookings_status(client_for, second) == 401


def test_a_password_change_on_the_site_revokes_the_tokens(client_for, buyer, cached_key):
    site = Client()
    site.force_login(buyer)

    response = site.post("/accounts/password_change/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                                       "new_password2": NEW_PASSWORD})

    assert response.status_code == 302, response.content[:300]
    assert_revoked(client_for, cached_key)


def test_a_password_reset_revokes_the_tokens(client_for, buyer, cached_key):
    site = Client()
    uid = urlsafe_base64_encode(force_bytes(buyer.pk))
    response = site.get(f"/accounts/reset/{uid}/{default_token_generator.make_token(buyer)}/")
    assert response.status_code == 302

    response = site.post(response["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.status_code == 302, response.content[:300]
    assert_revoked(client_for, cached_key)


def test_an_admin_password_change_revokes_the_tokens(client_for, buyer, cached_key):
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD))

    response = admin.post(f"/admin/auth/user/{buyer.pk}/password/",
                          {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})

    assert response.status_code == 302, response.content[:300]
    assert_revoked(client_for, cached_key)


def test_disabling_password_login_in_the_admin_revokes_the_tokens(client_for, buyer, cached_key):
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD))

    response = admin.post(f"/admin/auth/user/{buyer.pk}/password/",
                          {"usable_password": "false", "unset-password": "Disable password-based authentication"})

    assert response.status_code == 302, response.content[:300]
    buyer.refresh_from_db()
    assert not buyer.has_usable_password()
    assert_revoked(client_for, cached_key)


def test_saving_the_user_otherwise_keeps_the_tokens(client_for, buyer, cached_key):
    buyer.first_name = "Ada"
    buyer.save()
    buyer.last_login = timezone.now()
    buyer.save(update_fields=["last_login"])

    key, other = cached_key
    assert bookings_status(client_for, key) == bookings_status(client_for, other) == 200


def test_a_password_hash_upgraded_at_login_keeps_the_tokens(client_for, buyer, settings):
    """Django re-hashes a password with a newer hasher when its owner logs in: not a password change."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    buyer.set_password(PASSWORD)
    buyer.save()
    key = token_of(client_for)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]

    token_of(client_for)  # logs in: the stored hash is upgraded to the first hasher

    buyer.refresh_from_db()
    assert buyer.password.startswith("pbkdf2_sha1$")
    assert bookings_status(client_for, key) == 200


def test_a_deactivated_user_is_refused_at_once(client_for, buyer, cached_key, assert_problem):
    buyer.is_active = False
    buyer.save()

    assert_revoked(client_for, cached_key)


def test_a_revoked_token_cached_by_a_request_racing_the_revocation_stays_revoked(
        client_for, buyer, django_capture_on_commit_callbacks):
    """A request that read the token row before the revoking transaction committed, and caches it after the
    revocation dropped the cache entry, must not make the token work again once the revocation commits."""
    from knox.crypto import hash_token

    from core.tokens import remember_token

    key = token_of(client_for)
    with django_capture_on_commit_callbacks(execute=True):
        buyer.set_password(NEW_PASSWORD)
        buyer.save()
        remember_token(hash_token(key), buyer, None)  # the racing request caches what it read

    assert bookings_status(client_for, key) == 401


def test_a_deleted_token_stops_working_at_once_despite_the_cache(client_for, buyer):
    from knox.models import AuthToken

    key = token_of(client_for)
    assert bookings_status(client_for, key) == 200

    AuthToken.objects.filter(user=buyer).delete()

    assert bookings_status(client_for, key) == 401


# --- The token endpoint: throttled and locked out like the other logins ------------------------------


def test_the_token_endpoint_has_its_own_tight_throttle(client_for, buyer, rates, assert_problem, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    rates(login="3/min")

    assert [obtain(client_for).status_code for _ in range(3)] == [200, 200, 200]
    response = obtain(client_for)

    assert_problem(response, 429, "throttled")
    assert response["Retry-After"] == "60"
    time_machine.move_to("2030-01-01 12:01:01Z", tick=False)
    assert obtain(client_for).status_code == 200


def test_the_login_throttle_counts_per_address_whatever_the_username(client_for, buyer, rates, time_machine):
    time_machine.move_to("2030-01-01 12:00Z", tick=False)
    rates(login="3/min")

    statuses = [obtain(client_for, f"guess{i}", "wrong").status_code for i in range(3)]
    assert statuses == [400, 400, 400]
    assert obtain(client_for).status_code == 429
    assert obtain(client_for, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_the_default_rates_throttle_logins_tighter_than_anonymous_calls():
    from ticketing.settings import DEFAULT_THROTTLE_RATES

    def per_minute(rate: str) -> float:
        count, period = rate.split("/")
        return int(count) / {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[period[0]]

    assert per_minute(DEFAULT_THROTTLE_RATES["login"]) < per_minute(DEFAULT_THROTTLE_RATES["anon"])


def test_five_failures_lock_the_username_out_with_a_429(client_for, buyer, rates, assert_problem):
    rates()
    answers = [obtain(client_for, password="wrong") for _ in range(5)]

    assert [a.status_code for a in answers] == [400, 400, 400, 400, 429]
    body = assert_problem(answers[-1], 429, "login_locked_out")
    assert int(answers[-1]["Retry-After"]) == 15 * 60
    assert "token" not in body
    locked = obtain(client_for)  # even the right password
    assert_problem(locked, 429, "login_locked_out")
    assert obtain(client_for, REMOTE_ADDR="10.9.8.7").status_code == 200


def test_the_lockout_answer_is_the_same_for_unknown_usernames(client_for, buyer, rates):
    rates()
    known = [obtain(client_for, password="wrong") for _ in range(5)][-1]
    unknown = [obtain(client_for, "nobody-at-all", "wrong") for _ in range(5)][-1]

    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json()


def test_a_stale_token_header_does_not_stop_a_login(client_for, buyer):
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)

    response = client.post(f"{API}/auth/token/", {"username": "buyer", "password": PASSWORD})

    assert response.status_code == 200


# --- Upgrade -----------------------------------------------------------------------------------


def test_the_migration_keeps_the_old_plain_keys_working_and_deletes_them(client_for, buyer):
    """Tokens issued before (DRF's `authtoken_token`, plain keys) become digests of the same keys."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps

    migration = importlib.import_module("core.migrations.0002_api_tokens_hashed")
    old_key = "f66bfc046cbbaabd125914de4c3107250d81c935"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
                       "user_id integer NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [old_key, buyer.pk])

    migration.tokens_hash(apps, SimpleNamespace(connection=connection))

    assert bookings_status(client_for, old_key) == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0
    assert not any(old_key in row for row in rows_of_token_tables())
