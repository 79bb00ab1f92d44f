"""Statements prepared on the server (PostgreSQL's PREPARE), then sent as `EXECUTE name(...)`.

Parsing and planning the reservation's statements costs PostgreSQL several times what running
them does; each text is PREPAREd once per connection, then only executed (docs/hot-path.md).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from django.conf import settings

from core.db.statements import Statement

# SQL text -> the name it is prepared under on this process's connections. The hot path's SQL is
# compiled once per shape, so the texts are few; past the limit, statements go out as they are.
_STATEMENT_NAMES: dict[str, str] = {}
_STATEMENT_NUMBERS = itertools.count(1)
_MAX_STATEMENT_NAMES = 500


def server_prepared(db, statements: Sequence[Statement]) -> list[Statement]:
    """`statements` as EXECUTEs of statements prepared on this connection, with the same values.

    A text met for the first time on a connection is PREPAREd there first, in a query of its own on
    the raw connection (PREPARE is not transactional). The EXECUTEs still fit in one query with
    others. On SQLite, or with `DATABASE_PREPARED_STATEMENTS=false`, `statements` as they are.
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
                cursor.execute("; ".join(prepare_sql(name, sql, params) for name, (sql, params) in missing.items()))
            except psycopg.Error:
                # The PREPAREs before the failing one stand (PREPARE is not transactional): these
                # texts get new names next time, so that none is prepared twice under one name.
                for sql, _params in missing.values():
                    _STATEMENT_NAMES.pop(sql, None)
                raise
        on_connection.update(missing)
    return executes


def prepare_sql(name: str, sql: str, params: Sequence[Any]) -> str:
    """`PREPARE name (types) AS sql`, each parameter typed by its value (`param_type`)."""
    if not params:
        return f"PREPARE {name} AS {numbered(sql)}"
    return f"PREPARE {name} ({', '.join(param_type(p) for p in params)}) AS {numbered(sql)}"


def statement_sql(sql: str) -> str:
    """`sql` with each `EXECUTE name` of `server_prepared` written out as the statement it runs (for
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


def param_type(value: Any) -> str:
    """The PostgreSQL type a prepared statement declares for a parameter with this value."""
    if isinstance(value, list | tuple):
        element = next((param_type(v) for v in value if v is not None), "unknown")
        return "unknown" if element == "unknown" else f"{element}[]"
    return next((name for kind, name in _PG_TYPES if isinstance(value, kind)), "unknown")


def numbered(sql: str) -> str:
    """psycopg's `%s` placeholders as PostgreSQL's `$1`, `$2`, ...; `%%` as `%`."""
    counter = iter(range(1, 10**6))
    return re.sub(r"%[s%]", lambda m: "%" if m[0] == "%%" else f"${next(counter)}", sql)
