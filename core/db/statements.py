"""Writes as SQL and parameters (`Statement`), built without running them.

`update_statement` and `insert_statement` give what the ORM would run; `with_ctes` joins several
statements into one; `guarded_update` and `guarded_insert` build, from the models' `_meta`, writes
that change rows only where a condition holds (tests/test_db.py checks that they are Django's own
UPDATE and INSERT plus the condition).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.models import Model, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery

Statement = tuple[str, Sequence[Any]]


def update_statement(queryset: QuerySet, **changes: Any) -> Statement:
    """The SQL and parameters `queryset.update(**changes)` would run, without running it."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(changes)
    return query.get_compiler(queryset.db).as_sql()


def insert_statement(objs: Sequence[Model]) -> Statement:
    """The SQL and parameters that insert `objs` (one model; defaults and auto_now filled in) in one
    statement, as `bulk_create` would, without running it. `mark_saved` once it has run.

    The SQL is Django's, compiled once per model, number of rows and vendor; later calls only
    prepare the values in the compiled layout (one row after another, or one array per column).
    """
    db = connections[DEFAULT_DB_ALIAS]  # resolved once: each field's preparation reads it several times
    model = type(objs[0])
    fields = _insert_fields(model)
    shape = (model, len(objs), db.vendor)
    rows = [[field.pre_save(obj, True) for field in fields] for obj in objs]
    sql, layout = _INSERTS.get(shape, (None, None))
    if layout is None or _any_expression(rows):
        query = InsertQuery(model)
        query.insert_values(fields, objs, raw=True)  # raw: the values were just taken (pre_save) above
        [(sql, params)] = query.get_compiler(using=router.db_for_write(model)).as_sql()
        if shape not in _INSERTS:
            _INSERTS[shape] = (sql, _insert_layout(params, len(fields), len(objs)))
        return sql, params
    prepared = _prepared_rows(fields, rows, db)
    if layout == "columns":
        return sql, [list(column) for column in zip(*prepared, strict=True)]
    return sql, [value for row in prepared for value in row]


# (model, rows, vendor) -> (SQL, layout); layout None: compiled on every call (an unusual field).
_INSERTS: dict[tuple, tuple[str, str | None]] = {}


def _insert_fields(model: type[Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.generated]


def _any_expression(rows: list[list]) -> bool:
    return any(hasattr(value, "resolve_expression") for row in rows for value in row)


def _prepared_rows(fields: list, rows: list[list], db) -> list[list]:
    return [[field.get_db_prep_save(value, db) for field, value in zip(fields, row, strict=True)] for row in rows]


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


def with_ctes(statements: Sequence[Statement]) -> Statement:
    """One PostgreSQL statement from several: all but the last become the CTEs `w0`, `w1`, ... of
    the last, in order (`WITH w0 AS (UPDATE ...), w1 AS (INSERT ...) SELECT ...`). Each runs
    exactly once, all on the same snapshot: one may read what another RETURNS, never what it
    writes."""
    *ctes, (sql, last_params) = statements
    if ctes:
        sql = "WITH " + ", ".join(f"w{i} AS ({cte_sql})" for i, (cte_sql, _p) in enumerate(ctes)) + f" {sql}"
    return sql, [p for _sql, cte_params in ctes for p in cte_params] + list(last_params)


# --- Writes guarded by a condition, built from the models' metadata -----------------------------


def guarded_update(model: type[Model], *, pks: Sequence[Any], add: Mapping[str, Sequence[int]],
                   condition: str, params: Sequence[Any] = ()) -> Statement:
    """An UPDATE of `model`'s rows `pks` that adds `add[name][i]` to field `name` of row `pks[i]`,
    only where `condition` (SQL, with `params`) holds: Django's SQL for
    `update_statement(model.objects.filter(pk__in=pks), name=F(name) + delta)` (delta a `Value`,
    or a `Case` per pk for several rows) with `AND condition` after its WHERE. PostgreSQL."""
    if not pks or not add or any(len(deltas) != len(pks) for deltas in add.values()):
        raise ValueError("guarded_update takes one delta per pk for each field")
    db = connections[DEFAULT_DB_ALIAS]
    pk_field = model._meta.pk
    keys = [pk_field.get_db_prep_value(pk, db) for pk in pks]
    names = tuple(add)
    values = [value for name in names
              for value in ([int(add[name][0])] if len(keys) == 1 else
                            [v for key, delta in zip(keys, add[name], strict=True) for v in (key, int(delta))])]
    return _update_sql(model, names, len(keys), condition), [*values, *keys, *params]


@cache
def _update_sql(model: type[Model], names: tuple[str, ...], n_rows: int, condition: str) -> str:
    q = connections[DEFAULT_DB_ALIAS].ops.quote_name
    meta = model._meta
    table = q(meta.db_table)
    pk = f"{table}.{q(meta.pk.column)}"
    delta = "%s" if n_rows == 1 else f"CASE {' '.join([f'WHEN ({pk} = %s) THEN %s'] * n_rows)} ELSE NULL END"
    sets = ", ".join(f"{q(column)} = ({table}.{q(column)} + {delta})"
                     for column in (meta.get_field(name).column for name in names))
    return f"UPDATE {table} SET {sets} WHERE {pk} IN ({', '.join(['%s'] * n_rows)}) AND {condition}"  # noqa: S608


def guarded_insert(objs: Sequence[Model], *, condition: str, params: Sequence[Any] = ()) -> Statement:
    """An INSERT of `objs` (one model; defaults and auto_now filled in, as `insert_statement`) whose
    rows are SELECTed only where `condition` (SQL, with `params`) holds: Django's INSERT of the same
    rows with `SELECT <the row>` for `VALUES (<the row>)`, or, for several rows, its
    `SELECT * FROM UNNEST(...)`, followed by `WHERE condition`. PostgreSQL. `mark_saved` once it has run."""
    db = connections[DEFAULT_DB_ALIAS]
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise ValueError("guarded_insert takes objects of one model")
    fields = _insert_fields(model)
    rows = [[field.pre_save(obj, True) for field in fields] for obj in objs]
    if _any_expression(rows):
        raise ValueError("guarded_insert takes values, not expressions")
    prepared = _prepared_rows(fields, rows, db)
    values = [list(column) for column in zip(*prepared, strict=True)] if len(objs) > 1 else prepared[0]
    return _insert_sql(model, len(objs), condition), [*values, *params]


@cache
def _insert_sql(model: type[Model], n_rows: int, condition: str) -> str:
    db = connections[DEFAULT_DB_ALIAS]
    q = db.ops.quote_name
    fields = _insert_fields(model)
    if any(hasattr(field, "get_placeholder") for field in fields):
        raise ValueError(f"{model.__name__} has a field with its own placeholder")
    columns = ", ".join(q(field.column) for field in fields)
    if n_rows == 1:
        select = ", ".join(["%s"] * len(fields))
    else:  # as Django's PostgreSQL compiler: one array per column, types without their parameters
        select = "* FROM UNNEST({})".format(
            ", ".join(f"(%s)::{field.db_type(db).split('(')[0]}[]" for field in fields))
    return f"INSERT INTO {q(model._meta.db_table)} ({columns}) SELECT {select} WHERE {condition}"  # noqa: S608
