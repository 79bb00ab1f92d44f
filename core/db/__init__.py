"""The foundation's database helpers (docs/hot-path.md tells how the hot path uses them).

- `transactions`: `locking_atomic`, a transaction whose lock waits are bounded and end in `Busy`.
- `statements`: writes as SQL and parameters, joined as CTEs, guarded by a condition.
- `round_trips`: several statements sent as one query.
- `server_prepared`: statements PREPAREd once per connection, then executed.
- `queries`: reads and writes compiled on the client once per shape.
"""

from core.db.queries import CompiledQuery, SQLRead
from core.db.round_trips import can_combine_round_trips, read_then_write, read_together, write_together
from core.db.server_prepared import server_prepared, statement_sql
from core.db.statements import (
    Statement,
    guarded_insert,
    guarded_update,
    insert_statement,
    mark_saved,
    update_statement,
    with_ctes,
)
from core.db.transactions import locking_atomic

__all__ = [
    "CompiledQuery",
    "SQLRead",
    "Statement",
    "can_combine_round_trips",
    "guarded_insert",
    "guarded_update",
    "insert_statement",
    "locking_atomic",
    "mark_saved",
    "read_then_write",
    "read_together",
    "server_prepared",
    "statement_sql",
    "update_statement",
    "with_ctes",
    "write_together",
]
