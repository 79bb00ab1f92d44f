"""Django's PostgreSQL backend: a transaction's BEGIN sent with its first statement, and a health
check that costs no round trip.

psycopg opens a transaction with a `BEGIN` of its own, one round trip before the first
statement. Here psycopg stays in autocommit mode and the backend opens the transaction
itself: when Django wants one (an `atomic` block) and the server is idle, the first
statement goes out as one simple query `BEGIN; <statement>` (psycopg's client-side binding,
Django's default, sends it that way), and the cursor moves on to the statement's own result.
Every transaction saves a round trip; a reservation (which also sends its COMMIT with its
writes, `core.db.write_together`) went from four round trips to two (BENCHMARKS.md).

Everything else is Django's: `atomic`, savepoints and `on_commit` work unchanged; COMMIT and
ROLLBACK are psycopg's, which send nothing when the server is idle (an empty `atomic`
block costs no round trip at all). Statements that cannot carry the BEGIN (`executemany`,
composed SQL, a named cursor's DECLARE) get it sent on its own first, as psycopg would.
Named cursors are declared `WITH HOLD`, since psycopg's autocommit flag no longer tells
whether a transaction is open.

The health check (`CONN_HEALTH_CHECKS`, before each request's first query) is Django's
`SELECT 1` only when the idle connection's socket has something to read: a server that ends a
connection (restart, `pg_terminate_backend`, an idle timeout) sends its FATAL notice and closes
its end, which leaves the socket readable. A socket with nothing to read is a live connection,
checked with one `poll()` system call instead of a round trip.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from django.db.transaction import TransactionManagementError
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus


def _begin_statement(connection) -> str:
    level = connection.isolation_level
    if level is None:
        return "BEGIN"
    return "BEGIN ISOLATION LEVEL " + IsolationLevel(level).name.replace("_", " ")


def _begin_due(connection) -> bool:
    """True when Django has asked for a transaction that the server has not opened yet."""
    if not getattr(connection, "transaction_wanted", False):
        return False
    if getattr(connection, "transaction_ended", False):
        raise TransactionManagementError(
            "This atomic block's transaction was committed with its last statement "
            "(core.db.write_together): nothing may run after it in the block.")
    return connection.pgconn.transaction_status == TransactionStatus.IDLE


def end_transaction_early(connection) -> None:
    """Record that the transaction Django still thinks open was committed (`...; COMMIT`)."""
    connection.transaction_ended = True


def begin_now(connection) -> None:
    """Open the transaction Django asked for, in a round trip of its own, if it is not open yet."""
    if _begin_due(connection):
        connection.execute(_begin_statement(connection))


class Cursor(base.Cursor):
    """Django's client-side binding cursor, sending a pending BEGIN with its statement."""

    def execute(self, query, params=None, **kwargs):
        if not _begin_due(self.connection):
            return super().execute(query, params, **kwargs)
        if isinstance(query, bytes):
            query = _begin_statement(self.connection).encode() + b"; " + query
        elif isinstance(query, str):
            query = f"{_begin_statement(self.connection)}; {query}"
        else:  # composed SQL: BEGIN on its own
            begin_now(self.connection)
            return super().execute(query, params, **kwargs)
        super().execute(query, params, **kwargs)
        self.nextset()  # past BEGIN's result, to the statement's
        return self

    def executemany(self, query, params_seq, **kwargs):
        begin_now(self.connection)
        return super().executemany(query, params_seq, **kwargs)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("cursor_factory") is base.Cursor:
            params["cursor_factory"] = Cursor
        return params

    def _set_autocommit(self, autocommit):
        # psycopg stays in autocommit mode: the transaction is opened by the first statement.
        with self.wrap_database_errors:
            if not self.connection.autocommit:
                self.connection.autocommit = True
            self.connection.transaction_wanted = not autocommit
            self.connection.transaction_ended = False

    def is_usable(self):
        if self.connection is None or self.connection.closed:
            return False
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(self.connection.fileno(), select.POLLIN)
            if not poller.poll(0):  # nothing from the server: it has not ended the connection
                return True
        return super().is_usable()  # something came: find out with a query

    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        if name:  # psycopg declares a named cursor itself: the transaction must be open first
            with self.wrap_database_errors:
                begin_now(self.connection)
        return cursor
