"""Transactions that lock scarce rows (ticket types, events, bookings).

Every service that takes row locks runs inside `locking_atomic()`: on PostgreSQL
it bounds how long any statement waits for a lock (`SET LOCAL lock_timeout`), and
a lock that cannot be had in time, or a deadlock the server broke, becomes the
domain error `Busy` ("very busy, try again") instead of a hung request or a 500.
On SQLite (IMMEDIATE transactions) the database-wide write lock plays the same
role; "database is locked" becomes `Busy` too.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, router, transaction
from django.db.models import DateTimeField, Model, QuerySet, UUIDField
from django.db.models.query import ModelIterable
from django.db.models.sql import InsertQuery, UpdateQuery

from core.errors import Busy
from core.postgresql.base import end_transaction_early

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
        return _send_together(db, cursor, prepared(db, [with_ctes(writes)]), commit=commit)


def with_ctes(statements: Sequence[Statement]) -> Statement:
    """One PostgreSQL statement from several: all but the last become the CTEs `w0`, `w1`, ... of
    the last, in order (`WITH w0 AS (UPDATE ...), w1 AS (INSERT ...) SELECT ...`). Each runs
    exactly once, all on the same snapshot: one may read what another RETURNS, never what it
    writes."""
    *ctes, (sql, last_params) = statements
    if ctes:
        sql = "WITH " + ", ".join(f"w{i} AS ({cte_sql})" for i, (cte_sql, _p) in enumerate(ctes)) + f" {sql}"
    return sql, [p for _sql, cte_params in ctes for p in cte_params] + list(last_params)


def guarded(statement: Statement, condition: str, params: Sequence[Any] = ()) -> Statement:
    """A write that changes rows only where `condition` (SQL, with `params`) holds, e.g. only when
    a CTE of the same statement (`with_ctes`) says so: an `update_statement` (the condition joins
    its WHERE) or an `insert_statement` (its rows are SELECTed WHERE the condition holds)."""
    sql, values = statement
    if sql.startswith("UPDATE ") and sql.count(" WHERE ") == 1 and " RETURNING " not in sql:
        head, _where, where = sql.partition(" WHERE ")
        return f"{head} WHERE ({where}) AND {condition}", [*values, *params]
    if sql.startswith("INSERT ") and " SELECT * FROM UNNEST(" in sql:  # several rows, one array per column
        return f"{sql} WHERE {condition}", [*values, *params]
    head, values_keyword, row = sql.partition(" VALUES (")
    if not sql.startswith("INSERT ") or not values_keyword or not row.endswith(")") or "), (" in row:
        raise ValueError(f"not an update_statement or insert_statement of this backend: {sql[:80]}")
    # One row: INSERT ... SELECT <the values> WHERE ... (the columns give the values their types).
    return f"{head} SELECT {row[:-1]} WHERE {condition}", [*values, *params]


def round_trips_combine() -> bool:
    """Whether reads and writes can go out together as one simple query (`fetch_and_execute`):
    PostgreSQL with psycopg's client-side binding, Django's default."""
    db = connections[DEFAULT_DB_ALIAS]
    return db.vendor == "postgresql" and not db.settings_dict["OPTIONS"].get("server_side_binding")


def fetch_and_execute(reads: Sequence[tuple[PreparedQuery, dict[str, Any]]], statement: Statement, *,
                      commit: bool = False) -> tuple[list[list], list[tuple], bool]:
    """`fetch_together(*reads)`, then `statement` (a write returning rows), in one round trip; with
    `commit`, the transaction ends with them, as in `execute_together`. Returns the rows of each
    read, the rows of the statement, and whether it committed. Only where `round_trips_combine()`.

    Under READ COMMITTED every statement of the simple query takes its snapshot when it starts,
    so a read or a write that follows a `SELECT ... FOR UPDATE` sees what was committed while
    the lock was waited for.
    """
    db = connections[DEFAULT_DB_ALIAS]
    compiled = [(query._compiled(values), values) for query, values in reads]
    with db.cursor() as cursor:
        if not isinstance(cursor.cursor, psycopg.ClientCursor):
            raise TypeError("fetch_and_execute needs client-side binding (round_trips_combine())")
        statements = prepared(db, [*((c.sql, c.bind(values)) for c, values in compiled), statement])
        committed = _send_together(db, cursor, statements, commit=commit)
        return _rows_in_order(cursor, compiled), [tuple(row) for row in cursor.fetchall()], committed


def _send_together(db, cursor, statements: Sequence[Statement], *, commit: bool = False) -> bool:
    """`statements` as one simple query; with `commit`, ending the outermost transaction with them
    (`_commit_inline_possible`). Returns whether it committed."""
    commit = commit and _commit_inline_possible(db, cursor)
    cursor.execute("; ".join([*(sql for sql, _params in statements), *(["COMMIT"] if commit else [])]),
                   [p for _sql, params in statements for p in params])
    if commit:
        end_transaction_early(db.connection)
    return commit


def _rows_in_order(cursor, compiled: Sequence[tuple[_Compiled, dict[str, Any]]]) -> list[list]:
    """The rows of each compiled read, from the results of one simple query, moving past each."""
    results = []
    for c, _values in compiled:
        results.append(c.rows(cursor.fetchall()))
        cursor.nextset()
    return results


def _commit_inline_possible(db, cursor) -> bool:
    return (
        db.in_atomic_block and len(db.atomic_blocks) == 1 and not db.needs_rollback
        and getattr(db.connection, "transaction_wanted", False)  # core.postgresql's connection
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
        statements = prepared(db, [(c.sql, c.bind(values)) for c, values in compiled])
        if len(compiled) > 1 and db.vendor == "postgresql" and isinstance(cursor.cursor, psycopg.ClientCursor):
            _send_together(db, cursor, statements)
            return _rows_in_order(cursor, compiled)
        results = []
        for (c, _values), (sql, params) in zip(compiled, statements, strict=True):
            cursor.execute(sql, params)
            results.append(c.rows(cursor.fetchall()))
        return results


# --- Statements prepared on the server ---------------------------------------------------------

# SQL text -> the name it is prepared under on this process's connections. The hot path's SQL is
# compiled once per shape, so the texts are few; past the limit, statements go out as they are.
_STATEMENT_NAMES: dict[str, str] = {}
_STATEMENT_NUMBERS = itertools.count(1)
_MAX_STATEMENT_NAMES = 500


def prepared(db, statements: Sequence[Statement]) -> list[Statement]:
    """`statements` as EXECUTEs of server-side prepared statements, on PostgreSQL.

    PostgreSQL parses and plans every statement it receives as text; for the reservation's
    statements that costs the server several times what running them does (BENCHMARKS.md). The
    first time a connection meets a statement, it is PREPAREd there (in a round trip of its own,
    on the raw connection: outside any transaction's bookkeeping, as PREPARE is not
    transactional, and not logged); from then on the statement goes out as `EXECUTE name(...)`
    with the same values, which still fits in one simple query with others. Off with
    `DATABASE_PREPARED_STATEMENTS=false` (and on SQLite): the statements are sent as they are.
    """
    if db.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        return list(statements)
    db.ensure_connection()
    raw = db.connection
    on_connection = getattr(raw, "ticketing_prepared", None)
    if on_connection is None:
        on_connection = raw.ticketing_prepared = set()
    executes, missing = [], {}
    for sql, params in statements:
        name = _STATEMENT_NAMES.get(sql)
        if name is None and len(_STATEMENT_NAMES) < _MAX_STATEMENT_NAMES:
            name = _STATEMENT_NAMES[sql] = f"ticketing_{next(_STATEMENT_NUMBERS)}"
        if name is None:
            executes.append((sql, params))
            continue
        if name not in on_connection:
            missing[name] = (sql, params)
        executes.append((f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}",
                         params))
    if missing:
        with db.wrap_database_errors, psycopg.ClientCursor(raw) as cursor:
            try:
                cursor.execute("; ".join(
                    f"PREPARE {name} ({', '.join(_param_type(p) for p in params)}) AS {_numbered(sql)}"
                    if params else f"PREPARE {name} AS {_numbered(sql)}"
                    for name, (sql, params) in missing.items()))
            except psycopg.Error:
                # The PREPAREs before the failing one stand (PREPARE is not transactional): these
                # texts get new names next time, so that none is prepared twice under one name.
                for sql, _params in missing.values():
                    _STATEMENT_NAMES.pop(sql, None)
                raise
        on_connection.update(missing)
    return executes


def statement_sql(sql: str) -> str:
    """`sql` with each `EXECUTE name` of `prepared` written out as the statement it runs (for
    reading what was sent: tests, the bench report)."""
    names = {name: text for text, name in _STATEMENT_NAMES.items()}
    return re.sub(r"EXECUTE (ticketing_\d+)(?:\((?:[^()']|'[^']*')*\))?",
                  lambda m: f"{names[m[1]]} /* EXECUTE {m[1]} */" if m[1] in names else m[0], sql)


# Parameter types of a prepared statement, from the values of its first use: each value is sent
# as a literal of its type, so the server need not guess (a bare `$1` in `CASE ... THEN $1` would
# be text). None is `unknown`: the server takes the type from where the value goes.
_PG_TYPES = [(bool, "boolean"), (int, "bigint"), (Decimal, "numeric"), (float, "double precision"),
             (str, "text"), (uuid.UUID, "uuid"), (datetime, "timestamptz"), (date, "date"),
             (timedelta, "interval"), (bytes, "bytea"), (ipaddress.IPv4Address | ipaddress.IPv6Address, "inet")]


def _param_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        element = next((_param_type(v) for v in value if v is not None), "unknown")
        return "unknown" if element == "unknown" else f"{element}[]"
    return next((name for kind, name in _PG_TYPES if isinstance(value, kind)), "unknown")


def _numbered(sql: str) -> str:
    """psycopg's `%s` placeholders as PostgreSQL's `$1`, `$2`, ...; `%%` as `%`."""
    counter = iter(range(1, 10**6))
    return re.sub(r"%[s%]", lambda m: "%" if m[0] == "%%" else f"${next(counter)}", sql)


# --- Queries compiled once ---------------------------------------------------------------------


class SQLRead:
    """A read written as SQL (`%s` placeholders, values already prepared for the database), to run
    beside `PreparedQuery` reads in `fetch_together` and `fetch_and_execute`: its values are
    `{"params": [...]}`, its rows tuples. For SQL the ORM cannot write, built once per shape."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def _compiled(self, values: dict[str, Any]) -> SQLRead:
        return self

    def bind(self, values: dict[str, Any]) -> list:
        return list(values["params"])

    def rows(self, rows: list[tuple]) -> list[tuple]:
        return [tuple(row) for row in rows]



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
