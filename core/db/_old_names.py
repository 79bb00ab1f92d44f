"""TEMPORARY: the old names, until bookings' services use the new ones (removed in this branch)."""

from collections.abc import Sequence
from typing import Any

from core.db.queries import CompiledQuery as PreparedQuery
from core.db.round_trips import can_combine_round_trips as round_trips_combine
from core.db.round_trips import read_then_write as fetch_and_execute
from core.db.round_trips import read_together as fetch_together
from core.db.round_trips import write_together as execute_together
from core.db.server_prepared import numbered as _numbered
from core.db.server_prepared import server_prepared as prepared
from core.db.statements import Statement


def guarded(statement: Statement, condition: str, params: Sequence[Any] = ()) -> Statement:
    sql, values = statement
    if sql.startswith("UPDATE ") and sql.count(" WHERE ") == 1 and " RETURNING " not in sql:
        head, _where, where = sql.partition(" WHERE ")
        return f"{head} WHERE ({where}) AND {condition}", [*values, *params]
    if sql.startswith("INSERT ") and " SELECT * FROM UNNEST(" in sql:
        return f"{sql} WHERE {condition}", [*values, *params]
    head, values_keyword, row = sql.partition(" VALUES (")
    if not sql.startswith("INSERT ") or not values_keyword or not row.endswith(")") or "), (" in row:
        raise ValueError(f"not an update_statement or insert_statement of this backend: {sql[:80]}")
    return f"{head} SELECT {row[:-1]} WHERE {condition}", [*values, *params]


__all__ = ["PreparedQuery", "_numbered", "execute_together", "fetch_and_execute", "fetch_together", "guarded",
           "prepared", "round_trips_combine"]
