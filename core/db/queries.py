"""Reads and writes compiled to SQL once per shape on the client, then run with new values.

The ORM compiles a queryset on every evaluation; on the hot path that costs more CPU than the
query takes to run. A `CompiledQuery` compiles once per shape and binds new values into the SQL
as the ORM would. (Server-side PREPARE is another matter: `core.db.server_prepared`.)
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import DateTimeField, QuerySet, UUIDField
from django.db.models.query import ModelIterable

from core.db.round_trips import read_together
from core.db.statements import Statement


class SQLRead:
    """A read written as SQL (`%s` placeholders, values already prepared for the database), to run
    beside `CompiledQuery` reads in `read_together` and `read_then_write`: its values are
    `{"params": [...]}`, its rows tuples. For SQL the ORM cannot write, built once per shape."""

    def __init__(self, sql: str) -> None:
        self.sql = sql

    def _compiled(self, values: dict[str, Any]) -> SQLRead:
        return self

    def bind(self, values: dict[str, Any]) -> list:
        return list(values["params"])

    def rows(self, rows: list[tuple]) -> list[tuple]:
        return [tuple(row) for row in rows]


class CompiledQuery:
    """A query compiled to SQL on the client once per shape, then run with new values.

    `build(**values)` returns a queryset (of one model, no select_related, or `values_list()`), or
    a write as a `Statement`. Values are keys (UUIDs), whole numbers or aware datetimes, one or a
    non-empty list per name; the shape is the names, each value's kind and each list's length.
    Rows and bound values are those the ORM gives for the same queryset, on PostgreSQL and SQLite.
    """

    def __init__(self, build: Callable[..., QuerySet | Statement]) -> None:
        self._build = build
        self._shapes: dict[tuple, _Compiled] = {}

    def statement(self, **values: Any) -> Statement:
        compiled = self._compiled(values)
        return compiled.sql, compiled.bind(values)

    def fetch(self, **values: Any) -> list:
        """The rows: model instances, or tuples for a `values_list()` queryset."""
        [rows] = read_together((self, values))
        return rows

    def _compiled(self, values: dict[str, Any]) -> _Compiled:
        if any(isinstance(value, list | tuple) and not value for value in values.values()):
            raise ValueError("CompiledQuery takes non-empty lists")
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
                    raise ValueError("CompiledQuery does not load related models")
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
