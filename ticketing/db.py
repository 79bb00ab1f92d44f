"""Transactions that lock scarce rows (ticket types, events, bookings).

Every service that takes row locks runs inside `locking_atomic()`: on PostgreSQL
it bounds how long any statement waits for a lock (`SET LOCAL lock_timeout`), and
a lock that cannot be had in time, or a deadlock the server broke, becomes the
domain error `Busy` ("very busy, try again") instead of a hung request or a 500.
On SQLite (IMMEDIATE transactions) the database-wide write lock plays the same
role; "database is locked" becomes `Busy` too.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, router, transaction
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery

from ticketing.errors import Busy

# SQLSTATE codes: lock_not_available, deadlock_detected.
_BUSY_SQLSTATES = {"55P03", "40P01"}


def _is_busy_error(exc: OperationalError) -> bool:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate in _BUSY_SQLSTATES:
        return True
    return connection.vendor == "sqlite" and "database is locked" in str(exc)


@contextmanager
def locking_atomic() -> Iterator[None]:
    """`transaction.atomic()` with a bounded lock wait; lock timeouts raise `Busy`."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    # SET cannot take a bind parameter; the value is an int setting.
                    cursor.execute(f"SET LOCAL lock_timeout = {int(settings.LOCK_TIMEOUT_MS)}")
            yield
    except OperationalError as exc:
        if _is_busy_error(exc):
            raise Busy() from exc
        raise


# --- Several writes in one round trip ----------------------------------------------------------

Statement = tuple[str, Sequence[Any]]


def update_statement(queryset: QuerySet, **changes: Any) -> Statement:
    """The SQL and parameters `queryset.update(**changes)` would run, without running it."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(changes)
    return query.get_compiler(queryset.db).as_sql()


def insert_statement(objs: Sequence[Model]) -> Statement:
    """The SQL and parameters that insert `objs` (one model, defaults and auto_now filled in)
    in one statement, as `bulk_create` would, without running it. The objects are marked saved
    once the statement has run (`mark_saved`)."""
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not f.generated]
    query = InsertQuery(model)
    query.insert_values(fields, objs, raw=False)
    [statement] = query.get_compiler(using=router.db_for_write(model)).as_sql()
    return statement


def mark_saved(objs: Iterable[Model], using: str = DEFAULT_DB_ALIAS) -> None:
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def execute_together(writes: Sequence[Statement], then: Statement) -> tuple | None:
    """Run `writes` (INSERT/UPDATE/DELETE statements, in order), then the query `then`; return its
    first row.

    On PostgreSQL this is one statement, so one round trip: the writes become data-modifying
    CTEs (`WITH w0 AS (UPDATE ...), w1 AS (INSERT ...) SELECT ...`), which PostgreSQL runs
    exactly once each, whether or not the query refers to them. The query sees the database as
    it was when the statement started — in a transaction that already holds its row locks, the
    latest committed state — but not the writes' own effects: it must not read the rows the
    writes touch. Elsewhere (SQLite) the statements run one after the other.

    This is how a reservation keeps its locked section short: the hot row is locked by one
    statement, and everything else it writes goes in this one before the commit.
    """
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            for sql, params in writes:
                cursor.execute(sql, params)
            cursor.execute(*then)
            return cursor.fetchone()
        ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _params) in enumerate(writes))
        params = [p for _sql, write_params in writes for p in write_params]
        cursor.execute(f"WITH {ctes} {then[0]}", [*params, *then[1]])
        return cursor.fetchone()
