"""Transactions that lock scarce rows (ticket types, events, bookings).

Every service that takes row locks runs inside `locking_atomic()`: on PostgreSQL
it bounds how long any statement waits for a lock (`SET LOCAL lock_timeout`), and
a lock that cannot be had in time, or a deadlock the server broke, becomes the
domain error `Busy` ("very busy, try again") instead of a hung request or a 500.
On SQLite (IMMEDIATE transactions) the database-wide write lock plays the same
role; "database is locked" becomes `Busy` too.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError, connection, transaction

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
