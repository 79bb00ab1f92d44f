"""core.postgresql: Django's backend with a transaction's BEGIN sent with its first statement and
a health check without a round trip; and core.db's reads and writes sent together.

These tests run on real transactions (`transaction=True`): the test's own transaction would
otherwise be the one every statement joins.
"""

import re
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from django.conf import settings
from django.db import IntegrityError, ProgrammingError, connection, connections, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from psycopg.pq import TransactionStatus

from core.db import (
    CompiledQuery,
    guarded_insert,
    insert_statement,
    read_then_write,
    read_together,
    server_prepared,
    statement_sql,
    with_ctes,
    write_together,
)
from core.postgresql.base import _begin_statement
from events.models import Organizer

pytestmark = pytest.mark.django_db(transaction=True)

MARKERS = {"BEGIN", "COMMIT", "ROLLBACK"}  # what Django logs for set_autocommit/commit/rollback calls


def sent(ctx) -> list[str]:
    """The statements that went to the server, as psycopg sent them (Django's markers and statements
    refused before sending, logged as None, left out), prepared statements written out."""
    return [re.sub(r" /\* EXECUTE \w+ \*/", "", statement_sql(q["sql"]))
            for q in ctx.captured_queries if q["sql"] and q["sql"] not in MARKERS]


def server_status():
    return connection.connection.pgconn.transaction_status


def other_connection():
    db = connection.settings_dict
    return psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432,
                           autocommit=True)


def names_seen_by(other) -> set[str]:
    return {name for (name,) in other.execute("SELECT name FROM events_organizer").fetchall()}


def organizer(name: str, **fields) -> Organizer:
    return Organizer(name=name, slug=f"{name}-{uuid.uuid4().hex[:8]}", **fields)


def test_the_backend_is_in_use():
    assert settings.DATABASES["default"]["ENGINE"] == "core.postgresql"
    assert type(connections["default"]).__module__ == "core.postgresql.base"


def test_a_transaction_opens_with_its_first_statement_in_the_same_round_trip():
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        assert connection.connection.autocommit  # psycopg never sends a BEGIN of its own
        assert server_status() == TransactionStatus.IDLE  # nothing sent yet
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::int + 1", [41])
            assert cursor.fetchall() == [(42,)]  # the statement's result, not BEGIN's
            assert server_status() == TransactionStatus.INTRANS
            cursor.execute("SELECT txid_current_if_assigned() IS NULL")
            assert cursor.fetchone() == (True,)
    assert server_status() == TransactionStatus.IDLE
    assert sent(ctx) == ["BEGIN; SELECT 41::int + 1", "SELECT txid_current_if_assigned() IS NULL"]


def test_an_atomic_block_is_still_one_transaction_committed_or_rolled_back_as_a_whole():
    with other_connection() as other:
        with transaction.atomic():
            organizer("first").save()
            organizer("second").save()
            assert names_seen_by(other) == set()  # not committed yet
        assert names_seen_by(other) == {"first", "second"}

        with pytest.raises(IntegrityError), transaction.atomic():
            organizer("third").save()
            Organizer.objects.create(name="fourth", slug=Organizer.objects.get(name="first").slug)
        assert names_seen_by(other) == {"first", "second"}
    assert server_status() == TransactionStatus.IDLE


def test_savepoints_roll_back_only_their_part():
    with transaction.atomic():
        organizer("kept").save()
        with pytest.raises(ZeroDivisionError), transaction.atomic():
            organizer("dropped").save()
            1 / 0  # noqa: B018
    assert set(Organizer.objects.values_list("name", flat=True)) == {"kept"}


def test_an_empty_atomic_block_opens_no_transaction():
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        pass
    assert sent(ctx) == [] and server_status() == TransactionStatus.IDLE


@pytest.mark.parametrize("first", ["executemany", "iterator"])
def test_statements_that_cannot_carry_the_begin_open_the_transaction_first(first):
    Organizer.objects.bulk_create([organizer("a"), organizer("b")])
    with transaction.atomic():
        if first == "executemany":
            with connection.cursor() as cursor:
                cursor.executemany("UPDATE events_organizer SET name = name || %s WHERE name = %s",
                                   [["!", "a"], ["!", "b"]])
        else:  # a named (server-side) cursor, declared by psycopg itself
            assert sorted(o.name for o in Organizer.objects.order_by().iterator(chunk_size=1)) == ["a", "b"]
            Organizer.objects.update(name="c")
        assert server_status() == TransactionStatus.INTRANS
        transaction.set_rollback(True)
    assert sorted(Organizer.objects.values_list("name", flat=True)) == ["a", "b"]


def test_an_isolation_level_set_in_the_options_goes_with_the_begin():
    class Conn:
        isolation_level = psycopg.IsolationLevel.REPEATABLE_READ

    assert _begin_statement(Conn()) == "BEGIN ISOLATION LEVEL REPEATABLE READ"
    Conn.isolation_level = None
    assert _begin_statement(Conn()) == "BEGIN"


def test_a_failing_first_statement_leaves_a_usable_connection():
    with pytest.raises(ProgrammingError, match="no_such_table"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert server_status() == TransactionStatus.IDLE  # rolled back
    assert Organizer.objects.count() == 0


# --- core.db on real transactions ---------------------------------------------------------


def test_writes_can_commit_in_their_own_round_trip_when_the_block_is_the_outermost():
    with other_connection() as other, CaptureQueriesContext(connection) as ctx:
        with transaction.atomic():
            first, second = organizer("one", id=10**9 + 1), organizer("two", id=10**9 + 2)  # keys set: no RETURNING
            assert write_together([insert_statement([first]), insert_statement([second])], commit=True)
            assert names_seen_by(other) == {"one", "two"}  # committed before the block ends
            assert server_status() == TransactionStatus.IDLE
            with pytest.raises(TransactionManagementError), connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # nothing may follow the commit in this block
        assert Organizer.objects.count() == 2  # the next block works as usual
    statements = sent(ctx)
    assert statements[0].startswith("BEGIN; WITH w0 AS (INSERT") and statements[0].endswith("; COMMIT")
    assert len(statements) == 2 and statements[1].startswith("SELECT COUNT(*)")


def test_writes_inside_an_outer_transaction_leave_the_commit_to_it():
    with other_connection() as other, transaction.atomic():
        with transaction.atomic():
            assert not write_together([insert_statement([organizer("inner", id=10**9)])], commit=True)
        assert names_seen_by(other) == set()
        transaction.set_rollback(True)
    assert Organizer.objects.count() == 0


def test_reads_run_together_go_out_in_one_round_trip_and_come_back_in_order():
    Organizer.objects.bulk_create([organizer("a"), organizer("b")])
    [a, b] = Organizer.objects.order_by("name")
    lock = CompiledQuery(lambda pk: Organizer.objects.select_for_update().filter(pk=pk))
    names = CompiledQuery(lambda pks: Organizer.objects.filter(pk__in=pks).order_by("name").values_list("name"))
    with CaptureQueriesContext(connection) as ctx, transaction.atomic():
        locked, named = read_together((lock, {"pk": b.pk}), (names, {"pks": [a.pk, b.pk]}))
    assert locked == [b] and locked[0].slug == b.slug
    assert named == [("a",), ("b",)]
    [statement] = sent(ctx)  # one round trip
    assert statement.startswith("BEGIN; SELECT") and "FOR UPDATE; SELECT" in statement


def test_reads_and_a_write_go_out_in_one_round_trip_and_can_commit_with_it():
    """`read_then_write`: a lock and a read, then a write that depends on what it finds, and
    COMMIT, as one simple query; the write's snapshot is taken after the lock was granted."""
    a = organizer("a")
    a.save()
    lock = CompiledQuery(lambda pk: Organizer.objects.select_for_update().filter(pk=pk))
    count = CompiledQuery(lambda pk: Organizer.objects.filter(pk=pk).values_list("pk"))
    b = organizer("b", id=10**9 + 3)
    write = with_ctes([("SELECT count(*) = 1 AS ok FROM events_organizer WHERE name = %s", ["a"]),
                       guarded_insert([b], condition="(SELECT ok FROM w0)"),
                       ("SELECT ok FROM w0", [])])
    with other_connection() as other, CaptureQueriesContext(connection) as ctx:
        with transaction.atomic():
            (locked, counted), rows, committed = read_then_write(
                [(lock, {"pk": a.pk}), (count, {"pk": a.pk})], write, commit=True)
            assert names_seen_by(other) == {"a", "b"}  # committed before the block ends
        with transaction.atomic():
            inner = transaction.atomic()
            with inner:
                *_, committed_inside = read_then_write([(count, {"pk": a.pk})], ("SELECT 1", []), commit=True)
    assert (locked, counted, rows, committed, committed_inside) == ([a], [(a.pk,)], [(True,)], True, False)
    [statement, *_rest] = sent(ctx)
    assert statement.startswith("BEGIN; SELECT") and "FOR UPDATE; SELECT" in statement
    assert statement.endswith("FROM w0; COMMIT")


# --- statements prepared on the server (core.db.server_prepared) ------------------------------------


@pytest.fixture
def prepared_on(settings):
    settings.DATABASE_PREPARED_STATEMENTS = True  # the default, whatever the environment says


def prepared_here() -> dict[str, tuple[int, int]]:
    """This connection's prepared statements: name -> (generic plans, custom plans) so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements")
        return {name: (generic, custom) for name, generic, custom in cursor.fetchall()}


@pytest.mark.usefixtures("prepared_on")
def test_a_hot_path_statement_is_prepared_once_per_connection_then_only_executed():
    a, b = organizer("a"), organizer("b")
    Organizer.objects.bulk_create([a, b])
    names = CompiledQuery(lambda pks: Organizer.objects.filter(pk__in=pks).order_by("name").values_list("name"))

    with CaptureQueriesContext(connection) as ctx:
        rows = [names.fetch(pks=[a.pk, b.pk]) for _ in range(8)]
    assert rows == [[("a",), ("b",)]] * 8
    [name] = {re.match(r"EXECUTE (ticketing_\d+)\(", q["sql"])[1] for q in ctx.captured_queries}
    assert len(ctx.captured_queries) == 8  # the PREPARE went on the raw connection, before the first
    generic, custom = prepared_here()[name]
    assert generic + custom == 8 and generic > 0  # planned once for all calls after the first few
    assert statement_sql(ctx.captured_queries[0]["sql"]).startswith('SELECT "events_organizer"."name"')

    connection.close()  # a new connection prepares it again
    assert names.fetch(pks=[b.pk]) == [("b",)] and names.fetch(pks=[a.pk, b.pk]) == [("a",), ("b",)]
    assert prepared_here()[name] in {(0, 1), (1, 0)}


def test_prepared_statements_can_be_switched_off(settings):
    settings.DATABASE_PREPARED_STATEMENTS = False
    a = organizer("a")
    a.save()
    query = CompiledQuery(lambda pk: Organizer.objects.filter(pk=pk).values_list("name"))
    with CaptureQueriesContext(connection) as ctx:
        assert query.fetch(pk=a.pk) == [("a",)]
    assert ctx.captured_queries[0]["sql"].startswith('SELECT "events_organizer"."name"')


@pytest.mark.usefixtures("prepared_on")
def test_a_prepared_statement_takes_each_value_with_its_type_and_nulls_where_they_go():
    """A bare `%s` whose type only the value tells (in `CASE ... THEN %s`), and a value that is
    NULL the first time and set the next."""
    statement = ("SELECT CASE WHEN %s > 0 THEN %s ELSE %s END, %s::timestamptz", )
    when = datetime(2030, 1, 1, tzinfo=UTC)
    with connection.cursor() as cursor:
        for values, expected in (([1, 5, 0, None], (5, None)), ([0, 5, 7, when], (7, when))):
            [(sql, params)] = server_prepared(connection, [(statement[0], values)])
            cursor.execute(sql, params)
            assert sql.startswith("EXECUTE ticketing_") and cursor.fetchall() == [expected]


@pytest.mark.usefixtures("prepared_on")
def test_a_statement_that_cannot_be_prepared_fails_and_is_not_left_half_prepared():
    good = ("SELECT %s::int + 1", [1])
    bad = ("SELECT no_such_column FROM events_organizer WHERE id = %s", [1])
    with pytest.raises(ProgrammingError):
        server_prepared(connection, [good, bad])
    [(sql, params)] = server_prepared(connection, [good])  # prepared under a new name: no "already exists"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        assert cursor.fetchall() == [(2,)]


def spy_on_raw_cursors(monkeypatch) -> list:
    """Django's health check queries through psycopg's own cursor, which CaptureQueriesContext does not see."""
    opened, raw = [], connection.connection
    original = raw.cursor
    monkeypatch.setattr(raw, "cursor", lambda *a, **kw: opened.append(a) or original(*a, **kw))
    return opened


def test_the_health_check_sends_nothing_to_a_live_connection(monkeypatch):
    connection.ensure_connection()
    opened = spy_on_raw_cursors(monkeypatch)
    assert connection.is_usable()
    assert opened == []


def test_the_health_check_finds_a_connection_the_server_ended_and_django_replaces_it(monkeypatch):
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with other_connection() as other:
        [(ended,)] = other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchall()
    assert ended
    opened = spy_on_raw_cursors(monkeypatch)
    assert not connection.is_usable()
    assert len(opened) == 1  # the socket had the server's goodbye to read: Django's SELECT 1 found out
    monkeypatch.undo()

    connection.health_check_enabled, connection.health_check_done = True, False
    connection.close_if_health_check_failed()  # what Django does before a request's first query
    assert Organizer.objects.count() == 0  # on a new connection
    assert connection.connection.info.backend_pid != pid
