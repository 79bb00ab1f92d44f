"""Transactions that lock scarce rows (ticket types, events, bookings).

Every service that takes row locks runs inside `locking_atomic()`: on PostgreSQL
it bounds how long any statement waits for a lock (`SET LOCAL lock_timeout`), and
a lock that cannot be had in time, or a deadlock the server broke, becomes the
domain error `Busy` ("very busy, try again") instead of a hung request or a 500.
On SQLite (IMMEDIATE transactions) the database-wide write lock plays the same
role; "database is locked" becomes `Busy` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections, transaction

from core.errors import Busy

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
