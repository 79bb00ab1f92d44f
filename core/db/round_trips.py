"""Several statements sent as one query: one round trip to PostgreSQL instead of several.

On PostgreSQL with psycopg's client-side binding (Django's default) a query may hold several
statements; each takes its own snapshot when it starts (READ COMMITTED), so a statement that
follows a `SELECT ... FOR UPDATE` sees what was committed while the lock was waited for.
Elsewhere (SQLite, server-side binding) the statements run one after the other, with the same
results. Why and what it saves: docs/hot-path.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections

from core.db.server_prepared import server_prepared
from core.db.statements import Statement, with_ctes
from core.postgresql.base import end_transaction_early

if TYPE_CHECKING:
    from core.db.queries import CompiledQuery, SQLRead

    Read = tuple[CompiledQuery | SQLRead, dict[str, Any]]


def can_combine_round_trips() -> bool:
    """Whether reads and writes can go out together as one query (`read_then_write`):
    PostgreSQL with psycopg's client-side binding, Django's default."""
    db = connections[DEFAULT_DB_ALIAS]
    return db.vendor == "postgresql" and not db.settings_dict["OPTIONS"].get("server_side_binding")


def read_together(*reads: Read) -> list[list]:
    """The rows of each read (`CompiledQuery` or `SQLRead`, values), run in this order; one round
    trip where the statements can be combined."""
    db = connections[DEFAULT_DB_ALIAS]
    compiled = [(query._compiled(values), values) for query, values in reads]
    with db.cursor() as cursor:
        statements = server_prepared(db, [(c.sql, c.bind(values)) for c, values in compiled])
        if len(compiled) > 1 and db.vendor == "postgresql" and isinstance(cursor.cursor, psycopg.ClientCursor):
            _send_as_one_query(db, cursor, statements)
            return _rows_in_order(cursor, compiled)
        results = []
        for (c, _values), (sql, params) in zip(compiled, statements, strict=True):
            cursor.execute(sql, params)
            results.append(c.rows(cursor.fetchall()))
        return results


def write_together(writes: Sequence[Statement], *, commit: bool = False) -> bool:
    """Run `writes` (INSERT/UPDATE/DELETE, in order); with `commit`, end the transaction with them.
    Returns whether it committed.

    On PostgreSQL: one statement (all but the last write become CTEs of the last, `with_ctes`, so
    they must not read what the others write), one round trip. With `commit`, when the caller's
    `atomic` block is the outermost, the query ends with `COMMIT`: nothing may touch the database
    after it in that block (the backend refuses it) and nothing may raise. Inside an outer
    transaction the commit is left to it. Elsewhere (SQLite) the writes run one by one.
    """
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        if db.vendor != "postgresql":
            for sql, params in writes:
                cursor.execute(sql, params)
            return False
        return _send_as_one_query(db, cursor, server_prepared(db, [with_ctes(writes)]), commit=commit)


def read_then_write(reads: Sequence[Read], statement: Statement, *,
                    commit: bool = False) -> tuple[list[list], list[tuple], bool]:
    """`read_together(*reads)`, then `statement` (a write returning rows), in one round trip; with
    `commit`, as in `write_together`. Returns the rows of each read, the rows of the statement, and
    whether it committed. Only where `can_combine_round_trips()` (else `TypeError`)."""
    db = connections[DEFAULT_DB_ALIAS]
    compiled = [(query._compiled(values), values) for query, values in reads]
    with db.cursor() as cursor:
        if not isinstance(cursor.cursor, psycopg.ClientCursor):
            raise TypeError("read_then_write needs client-side binding (can_combine_round_trips())")
        statements = server_prepared(db, [*((c.sql, c.bind(values)) for c, values in compiled), statement])
        committed = _send_as_one_query(db, cursor, statements, commit=commit)
        return _rows_in_order(cursor, compiled), [tuple(row) for row in cursor.fetchall()], committed


def _send_as_one_query(db, cursor, statements: Sequence[Statement], *, commit: bool = False) -> bool:
    """`statements` as one query; with `commit`, ending the outermost transaction with them
    (`_commit_inline_possible`). Returns whether it committed."""
    commit = commit and _commit_inline_possible(db, cursor)
    cursor.execute("; ".join([*(sql for sql, _params in statements), *(["COMMIT"] if commit else [])]),
                   [p for _sql, params in statements for p in params])
    if commit:
        end_transaction_early(db.connection)
    return commit


def _rows_in_order(cursor, compiled: Sequence[tuple[Any, dict[str, Any]]]) -> list[list]:
    """The rows of each compiled read, from the results of one query, moving past each."""
    results = []
    for c, _values in compiled:
        results.append(c.rows(cursor.fetchall()))
        cursor.nextset()
    return results


def _commit_inline_possible(db, cursor) -> bool:
    return (
        db.in_atomic_block and len(db.atomic_blocks) == 1 and not db.needs_rollback
        and getattr(db.connection, "transaction_wanted", False)  # core.postgresql's connection
        and isinstance(cursor.cursor, psycopg.ClientCursor)  # one query, several statements
    )
