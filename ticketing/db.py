"""Transactions that lock scarce rows (ticket types, events, bookings).

Every service that takes row locks runs inside `locking_atomic()`: on PostgreSQL
it bounds how long any statement waits for a lock (`SET LOCAL lock_timeout`), and
a lock that cannot be had in time, or a deadlock the server broke, becomes the
domain error `Busy` ("very busy, try again") instead of a hung request or a 500.
On SQLite (IMMEDIATE transactions) the database-wide write lock plays the same
role; "database is locked" becomes `Busy` too.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, router, transaction
from django.db.models import DateTimeField, Model, QuerySet, UUIDField
from django.db.models.query import ModelIterable
from django.db.models.sql import InsertQuery, UpdateQuery

from ticketing.errors import Busy
from ticketing.postgresql.base import end_transaction_early

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
            db = connections[DEFAULT_DB_ALIAS]
            if db.vendor == "postgresql":
                with db.execute_wrapper(_LockTimeoutFirst(int(settings.LOCK_TIMEOUT_MS))):
                    yield
            else:
                yield
    except OperationalError as exc:
        if _is_busy_error(exc):
            raise Busy() from exc
        raise


class _LockTimeoutFirst:
    """Sets the transaction's `lock_timeout` (`SET LOCAL`) with its first statement, in the same
    round trip: psycopg's client-side binding (Django's default) sends a query as one simple
    query, which may hold several statements; the cursor then moves on to the statement's own
    result. With server-side binding the SET goes first, on its own."""

    def __init__(self, timeout_ms: int) -> None:
        self.pending: str | None = f"SET LOCAL lock_timeout = {timeout_ms}"  # SET takes no bind parameter

    def __call__(self, execute, sql, params, many, context):
        if self.pending is None:
            return execute(sql, params, many, context)
        setting, self.pending = self.pending, None
        cursor = context["cursor"]
        if many or not isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute(setting)
            return execute(sql, params, many, context)
        result = execute(f"{setting}; {sql}", params, many, context)
        cursor.nextset()
        return result


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
    once the statement has run (`mark_saved`).

    The SQL is compiled once per model and number of rows; later calls only prepare the
    values, as the compiler does (`pre_save`, `get_db_prep_save`), in the compiled layout:
    one row after another, or one array per column (PostgreSQL's UNNEST for several rows).
    """
    db = connections[DEFAULT_DB_ALIAS]  # resolved once: each field's preparation reads it several times
    model = type(objs[0])
    fields = _insert_fields(model)
    shape = (model, len(objs), db.vendor)
    rows = [[field.pre_save(obj, True) for field in fields] for obj in objs]
    sql, layout = _INSERTS.get(shape, (None, None))
    if layout is None or any(hasattr(value, "resolve_expression") for row in rows for value in row):
        query = InsertQuery(model)
        query.insert_values(fields, objs, raw=True)  # raw: the values were just taken (pre_save) above
        [(sql, params)] = query.get_compiler(using=router.db_for_write(model)).as_sql()
        if shape not in _INSERTS:
            _INSERTS[shape] = (sql, _insert_layout(params, len(fields), len(objs)))
        return sql, params
    prepared = [[field.get_db_prep_save(value, db) for field, value in zip(fields, row, strict=True)]
                for row in rows]
    if layout == "columns":
        return sql, [list(column) for column in zip(*prepared, strict=True)]
    return sql, [value for row in prepared for value in row]


# (model, rows, vendor) -> (SQL, layout); layout None: compiled on every call (an unusual field).
_INSERTS: dict[tuple, tuple[str, str | None]] = {}


def _insert_fields(model: type[Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.generated]


def _insert_layout(params: Sequence[Any], n_fields: int, n_rows: int) -> str | None:
    if n_rows > 1 and len(params) == n_fields and all(isinstance(p, list) and len(p) == n_rows for p in params):
        return "columns"
    if len(params) == n_fields * n_rows and not any(isinstance(p, list) for p in params):
        return "rows"
    return None


def mark_saved(objs: Iterable[Model], using: str = DEFAULT_DB_ALIAS) -> None:
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


def execute_together(writes: Sequence[Statement], *, commit: bool = False) -> bool:
    """Run `writes` (INSERT/UPDATE/DELETE statements, in order); with `commit`, end the
    transaction with them. Returns whether it committed.

    On PostgreSQL this is one round trip: the writes but the last become data-modifying CTEs
    of the last (`WITH w0 AS (UPDATE ...), w1 AS (INSERT ...) INSERT ...`), which PostgreSQL
    runs exactly once each; the CTEs must not read what the others write. With `commit`,
    and when the caller's `atomic` block is the outermost one, the same simple query ends with
    `COMMIT`, so the transaction's locks are released without another round trip; Django's
    own commit at the end of the block then finds the transaction closed and sends nothing.
    Nothing may touch the database after it in that block (the backend refuses it), and
    nothing may raise: the data is committed. Inside an outer transaction (a nested block, a
    test) the commit is left to the outermost block. Elsewhere (SQLite) the statements run one
    after the other.

    This is how a reservation keeps its locked section short: the hot row is locked by one
    round trip, and everything it writes goes in this one, with the commit.
    """
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        if db.vendor != "postgresql":
            for sql, params in writes:
                cursor.execute(sql, params)
            return False
        *ctes, (sql, last_params) = writes
        if ctes:
            sql = "WITH " + ", ".join(f"w{i} AS ({cte_sql})" for i, (cte_sql, _p) in enumerate(ctes)) + f" {sql}"
        params = [p for _sql, cte_params in ctes for p in cte_params] + list(last_params)
        commit = commit and _commit_inline_possible(db, cursor)
        cursor.execute(f"{sql}; COMMIT" if commit else sql, params)
        if commit:
            end_transaction_early(db.connection)
        return commit


def _commit_inline_possible(db, cursor) -> bool:
    return (
        db.in_atomic_block and len(db.atomic_blocks) == 1 and not db.needs_rollback
        and getattr(db.connection, "transaction_wanted", False)  # ticketing.postgresql's connection
        and isinstance(cursor.cursor, psycopg.ClientCursor)  # one simple query, several statements
    )


def fetch_together(*reads: tuple[PreparedQuery, dict[str, Any]]) -> list[list]:
    """The rows of several prepared reads (`PreparedQuery`, values), run in this order in one round trip.

    On PostgreSQL with client-side binding they go out as one simple query; under READ
    COMMITTED each statement takes its own snapshot when it starts, so a read that follows a
    `SELECT ... FOR UPDATE` sees what was committed while the lock was waited for.
    """
    db = connections[DEFAULT_DB_ALIAS]
    compiled = [(query._compiled(values), values) for query, values in reads]
    with db.cursor() as cursor:
        if len(compiled) > 1 and db.vendor == "postgresql" and isinstance(cursor.cursor, psycopg.ClientCursor):
            cursor.execute("; ".join(c.sql for c, _values in compiled),
                           [p for c, values in compiled for p in c.bind(values)])
            results = []
            for c, _values in compiled:
                results.append(c.rows(cursor.fetchall()))
                cursor.nextset()
            return results
        results = []
        for c, values in compiled:
            cursor.execute(c.sql, c.bind(values))
            results.append(c.rows(cursor.fetchall()))
        return results


# --- Queries compiled once ---------------------------------------------------------------------


class PreparedQuery:
    """A query compiled to SQL once per shape, then run with new values.

    The ORM compiles a queryset on every evaluation, and on the hot path that costs more CPU
    than the query takes to run. `build(**values)` returns a queryset, or a write as a
    `Statement` (`update_statement`), for some values: keys (UUIDs), whole numbers and aware
    datetimes, one or a non-empty list of them per name. It is called once per shape (the
    names, the kind of each value, the length of each list) with stand-ins, and later calls
    bind their values into the compiled SQL in the stand-ins' places, as the ORM binds them. The SQL is that of the
    connection in use, so the same code runs on PostgreSQL and SQLite. Reads: querysets of one
    model (no select_related) or `values_list()`.
    """

    def __init__(self, build: Callable[..., QuerySet | Statement]) -> None:
        self._build = build
        self._shapes: dict[tuple, _Compiled] = {}

    def statement(self, **values: Any) -> Statement:
        compiled = self._compiled(values)
        return compiled.sql, compiled.bind(values)

    def fetch(self, **values: Any) -> list:
        """The rows: model instances, or tuples for a `values_list()` queryset."""
        [rows] = fetch_together((self, values))
        return rows

    def _compiled(self, values: dict[str, Any]) -> _Compiled:
        if any(isinstance(value, list | tuple) and not value for value in values.values()):
            raise ValueError("PreparedQuery takes non-empty lists")
        shape = tuple(
            (name, _kind(value[0] if is_list else value), len(value) if is_list else None)
            for name, value in sorted(values.items())
            for is_list in [isinstance(value, list | tuple)]
        )
        compiled = self._shapes.get(shape)
        if compiled is None:
            compiled = self._shapes[shape] = _Compiled(self._build, shape)
        return compiled


_KEY, _MOMENT = UUIDField(), DateTimeField()
_STAND_IN = {
    "key": lambda: uuid.uuid4(),
    "int": lambda: secrets.randbelow(10**15) + 10**15,
    "moment": lambda: datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=secrets.randbelow(10**15)),
}


def _kind(value: Any) -> str:
    if isinstance(value, datetime):
        return "moment"
    return "int" if isinstance(value, int) and not isinstance(value, bool) else "key"


def _prep(kind: str, value: Any, db=connection) -> Any:
    if kind == "int":
        return int(value)
    return (_MOMENT if kind == "moment" else _KEY).get_db_prep_value(value, db)


class _Compiled:
    def __init__(self, build: Callable[..., QuerySet | Statement], shape: tuple) -> None:
        stand_ins = {
            name: [_STAND_IN[kind]() for _ in range(n)] if n is not None else _STAND_IN[kind]()
            for name, kind, n in shape
        }
        kinds = {name: kind for name, kind, _n in shape}
        built = build(**stand_ins)
        if isinstance(built, QuerySet):
            self._compiler = compiler = built.query.get_compiler(using=built.db)
            self.sql, params = compiler.as_sql()
        else:
            self._compiler = None
            self.sql, params = built
        # Where each value goes: the stand-ins, as the ORM bound them, are found among the parameters.
        places = {}
        for name, value in stand_ins.items():
            for i, stand_in in enumerate(value if isinstance(value, list) else [value]):
                places[_prep(kinds[name], stand_in)] = (name, kinds[name], i if isinstance(value, list) else None)
        self._template = list(params)
        self._places = [(index, places[param]) for index, param in enumerate(params) if param in places]
        if {place for _index, place in self._places} != set(places.values()):
            raise ValueError("every value must appear in the compiled query")
        self._model = None
        self._converters = {}
        if self._compiler is not None:
            self._converters = compiler.get_converters([expression for expression, _sql, _alias in compiler.select])
            if built._iterable_class is ModelIterable:  # model instances, not values
                if compiler.klass_info.get("related_klass_infos"):
                    raise ValueError("PreparedQuery does not load related models")
                fields = compiler.klass_info["select_fields"]
                self._start, self._end = fields[0], fields[-1] + 1
                self._model, self._db = compiler.klass_info["model"], built.db
                self._init_list = [column[0].target.attname for column in compiler.select[self._start:self._end]]

    def bind(self, values: dict[str, Any]) -> list:
        params, db = list(self._template), connections[DEFAULT_DB_ALIAS]
        for index, (name, kind, position) in self._places:
            params[index] = _prep(kind, values[name] if position is None else values[name][position], db)
        return params

    def rows(self, rows: list[tuple]) -> list:
        if self._converters:
            rows = list(self._compiler.apply_converters(rows, self._converters))
        if self._model is None:
            return [tuple(row) for row in rows]
        return [self._model.from_db(self._db, self._init_list, row[self._start:self._end]) for row in rows]
