"""core.db: queries compiled once, and the lock timeout set with a transaction's first statement."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Case, F, IntegerField, Value, When
from django.db.models.sql import InsertQuery
from django.test.utils import CaptureQueriesContext

from bookings.models import Booking, Ticket
from core.db import (
    CompiledQuery,
    guarded_insert,
    guarded_update,
    locking_atomic,
    update_statement,
    with_ctes,
)
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db


def field_values(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_prepared_read_gives_what_the_orm_gives_for_any_number_of_keys():
    event = EventFactory()
    types = [TicketTypeFactory(event=event) for _ in range(3)]
    TicketTypeFactory()  # another event's
    built = []
    query = CompiledQuery(lambda event, types: built.append(len(types))
                          or TicketType.objects.filter(event_id=event, pk__in=types).order_by("pk"))

    for wanted in ([types[0].pk], [types[2].pk, types[1].pk], [t.pk for t in types], [types[1].pk, uuid.uuid4()]):
        rows = query.fetch(event=event.pk, types=wanted)
        expected = list(TicketType.objects.filter(event_id=event.pk, pk__in=wanted).order_by("pk"))
        assert [field_values(r) for r in rows] == [field_values(e) for e in expected]
        assert all(not r._state.adding and r._state.db == "default" for r in rows)
    assert built == [1, 2, 3]  # compiled once per number of keys: the fourth call reused the second shape
    assert query.fetch(event=uuid.uuid4(), types=[types[0].pk]) == []


def test_a_prepared_values_read_converts_its_values_as_the_orm_does():
    event = EventFactory(capacity=40)
    query = CompiledQuery(lambda event: Event.objects.filter(pk=event).order_by().values_list("starts_at", "capacity"))

    expected = list(Event.objects.filter(pk=event.pk).values_list("starts_at", "capacity"))
    assert query.fetch(event=str(event.pk)) == expected
    [(starts_at, _capacity)] = query.fetch(event=event.pk)
    assert starts_at == event.starts_at and starts_at.tzinfo is not None


def test_a_prepared_write_binds_keys_and_whole_numbers_in_their_places():
    a, b = TicketTypeFactory(capacity=100), TicketTypeFactory(capacity=100)
    update = CompiledQuery(lambda tt, held, sold: update_statement(
        TicketType.objects.filter(pk=tt), held=F("held") + held, sold=F("sold") + sold))

    for tt, held, sold in ((a, 5, 1), (b, 7, 2), (a, -2, 3)):
        with connection.cursor() as cursor:
            cursor.execute(*update.statement(tt=tt.pk, held=held, sold=sold))
    assert TicketType.objects.values_list("held", "sold").get(pk=a.pk) == (3, 4)
    assert TicketType.objects.values_list("held", "sold").get(pk=b.pk) == (7, 2)


def test_a_prepared_query_binds_datetimes_as_the_orm_does():
    soon = EventFactory()
    later = EventFactory(starts_at=soon.starts_at + timedelta(days=3), ends_at=soon.ends_at + timedelta(days=3))
    query = CompiledQuery(
        lambda after: Event.objects.filter(starts_at__gt=after).order_by("starts_at").values_list("pk"))

    for moment in (soon.starts_at - timedelta(seconds=1), soon.starts_at, later.starts_at):
        expected = list(Event.objects.filter(starts_at__gt=moment).order_by("starts_at").values_list("pk"))
        assert query.fetch(after=moment) == expected
    assert query.fetch(after=soon.starts_at) == [(later.pk,)]


def test_a_value_the_query_does_not_use_is_refused():
    with pytest.raises(ValueError, match="every value"):
        CompiledQuery(lambda event: Event.objects.all()).fetch(event=uuid.uuid4())


def test_a_bad_key_is_refused_before_any_query_like_the_orm_refuses_it():
    from django.core.exceptions import ValidationError

    query = CompiledQuery(lambda event: Event.objects.filter(pk=event))
    with CaptureQueriesContext(connection) as ctx, pytest.raises(ValidationError):
        query.fetch(event="not-a-uuid")
    assert ctx.captured_queries == []


@pytest.mark.parametrize("holds", [True, False])
@pytest.mark.parametrize("rows", [1, 3])
def test_a_guarded_write_changes_rows_only_where_its_condition_holds(holds, rows):
    """`guarded_update` and `guarded_insert` (one row or several), made conditional on a CTE of the
    same statement (`with_ctes`)."""
    event = EventFactory()
    tt = TicketTypeFactory(event=event, capacity=10)
    new = [TicketType(event=event, name=f"new {i}", price=1, capacity=5) for i in range(rows)]
    condition = "(SELECT ok FROM w0)"
    statement = with_ctes([
        ("SELECT %s::boolean AS ok", [holds]),
        guarded_update(TicketType, pks=[tt.pk], add={"held": [2]}, condition=condition),
        guarded_insert(new, condition=condition),
        ("SELECT ok FROM w0", []),
    ])
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        assert cursor.fetchall() == [(holds,)]

    assert TicketType.objects.get(pk=tt.pk).held == (2 if holds else 0)
    assert TicketType.objects.filter(name__startswith="new").count() == (rows if holds else 0)
    if holds:
        saved = TicketType.objects.get(name="new 0")
        assert (saved.pk, saved.price, saved.created_at) == (new[0].pk, 1, new[0].created_at)


GUARD = ("(SELECT ok FROM w0) AND %s", [True])


@pytest.mark.parametrize("rows", [1, 3])
def test_a_guarded_update_is_djangos_update_with_the_condition_after_its_where(rows):
    """Built from `_meta`, it is the SQL Django compiles for the same update, plus the guard: a
    Django upgrade that changes its SQL fails here."""
    pks = [uuid.uuid4() for _ in range(rows)]
    add = {"held": [1, -2, 3][:rows], "sold": [0, 4, -5][:rows]}

    def delta(values):
        if rows == 1:
            return Value(values[0])
        return Case(*[When(pk=pk, then=Value(n)) for pk, n in zip(pks, values, strict=True)],
                    output_field=IntegerField())

    sql, params = update_statement(TicketType.objects.filter(pk__in=pks),
                                   **{name: F(name) + delta(values) for name, values in add.items()})
    built_sql, built_params = guarded_update(TicketType, pks=pks, add=add, condition=GUARD[0], params=GUARD[1])
    assert built_sql == f"{sql} AND {GUARD[0]}"
    assert list(built_params) == [*params, *GUARD[1]]


@pytest.mark.parametrize("model", ["booking", "ticket"])
@pytest.mark.parametrize("rows", [1, 3])
def test_a_guarded_insert_is_djangos_insert_selected_where_the_condition_holds(model, rows, time_machine):
    """Django's INSERT of the same rows (as `bulk_create` compiles it), its `VALUES (...)` as a
    `SELECT ...` (one row) or its `SELECT * FROM UNNEST(...)` (several), then the guard."""
    time_machine.move_to(datetime(2030, 1, 1, tzinfo=UTC), tick=False)  # auto_now fields: the same moment
    event = EventFactory()
    booking = Booking(event=event, email="a@example.com", expires_at=event.starts_at, total=Decimal("9.50"),
                      currency="EUR", client_ip="192.0.2.0")
    objs = [booking] if model == "booking" else [
        Ticket(booking=booking, ticket_type=TicketTypeFactory(event=event), price=Decimal("9.50"))
        for _ in range(rows)]
    objs = objs * rows if model == "booking" and rows > 1 else objs
    query = InsertQuery(type(objs[0]))
    query.insert_values([f for f in type(objs[0])._meta.concrete_fields if not f.generated], objs)
    [(sql, params)] = query.get_compiler(using="default").as_sql()

    built_sql, built_params = guarded_insert(objs, condition=GUARD[0], params=GUARD[1])
    if rows == 1:
        head, _values, row = sql.partition(" VALUES (")
        assert built_sql == f"{head} SELECT {row[:-1]} WHERE {GUARD[0]}"
    else:
        assert " SELECT * FROM UNNEST(" in sql and built_sql == f"{sql} WHERE {GUARD[0]}"
    assert list(built_params) == [*params, *GUARD[1]]


def test_only_writes_that_can_be_built_are_guarded():
    with pytest.raises(ValueError, match="one delta per pk"):
        guarded_update(TicketType, pks=[uuid.uuid4()], add={"held": [1, 2]}, condition="true")
    with pytest.raises(ValueError, match="one model"):
        guarded_insert([TicketType(), Event()], condition="true")
    with pytest.raises(ValueError, match="not expressions"):
        guarded_insert([TicketType(held=F("held") + 1)], condition="true")


@pytest.mark.django_db(transaction=True)  # locking_atomic is the outermost transaction
@pytest.mark.parametrize("first", ["execute", "executemany"])
def test_locking_atomic_sets_the_lock_timeout_with_its_first_statement(settings, first):
    settings.LOCK_TIMEOUT_MS = 1234
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        [(before,)] = cursor.fetchall()
    with CaptureQueriesContext(connection) as ctx, locking_atomic(), connection.cursor() as cursor:
        if first == "execute":
            cursor.execute("SELECT %s::int + 1", [41])
            assert cursor.fetchall() == [(42,)]  # the statement's own result, not the SET's
        else:
            cursor.executemany("SELECT %s::int", [[1], [2]])
        cursor.execute("SELECT current_setting('lock_timeout')")
        assert cursor.fetchall() == [("1234ms",)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        assert cursor.fetchall() == [(before,)]  # SET LOCAL: for that transaction only
    sent = [q["sql"] for q in ctx.captured_queries]
    if first == "execute":  # one round trip: the SET travels with the first statement (and the BEGIN)
        assert sent[:2] == ["BEGIN", "BEGIN; SET LOCAL lock_timeout = 1234; SELECT 41::int + 1"]
    assert sum("SET LOCAL" in q for q in sent) == 1


def test_a_409_is_not_logged_as_a_warning_but_other_client_errors_are(caplog):
    import logging

    from core.logs import NotAConflict

    conflict = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Conflict: /x", None, None)
    conflict.status_code = 409
    not_found = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: /x", None, None)
    not_found.status_code = 404
    assert not NotAConflict().filter(conflict)
    assert NotAConflict().filter(not_found)
    assert any(isinstance(f, NotAConflict) for f in logging.getLogger("django.request").filters)


@pytest.mark.parametrize("value, expected", [(None, True), ("false", False), ("true", True)])
def test_connection_health_checks_follow_database_conn_health_checks(value, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_CONN_HEALTH_CHECKS"}
    env.update(DJANGO_SETTINGS_MODULE="ticketing.settings", DJANGO_DEBUG="true",
               DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused")
    if value is not None:
        env["DATABASE_CONN_HEALTH_CHECKS"] = value
    code = "from django.conf import settings; print(settings.DATABASES['default']['CONN_HEALTH_CHECKS'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(expected)
