"""The locking rules of DESIGN.md section 6, checked on every test of the suite (issue 15, item 3).

1. Rows are locked in one global order: Event -> TicketType -> Booking -> Payment -> Refund
   (`LOCK_ORDER`). Every statement that locks rows is recorded per transaction: a `SELECT ...
   FOR [NO KEY] UPDATE | SHARE` (the tables of its `OF`, else every table of its FROM), an
   UPDATE or a DELETE (its target), also inside CTEs and prepared statements. A transaction
   may not lock a table of the order once it holds a later one, and one statement may not
   lock two tables it did not hold yet (the order between them would be the planner's). A
   table already locked may be touched again (the rows are re-locked, not waited for).
2. Nothing slow under a lock: no e-mail is handed to a mail backend and no payment gateway
   is called while a transaction opened by the code is open.

Only transactions the code opens are checked. The test database's own transaction
(pytest-django wraps non-transactional tests in one) and the transactions a test opens itself
(a stand-in that holds a lock on purpose, an example rolled back) are the test's: the services
called inside them are checked one by one, as they run in production. A breach raises
`LockRuleBroken` where it happens and fails the test at teardown even if the code swallowed
it. `@pytest.mark.lock_rules_off("why")` exempts a test that runs code breaking a rule on
purpose (`seed_demo` builds each demo event, payments included, in one transaction).

Registered for the whole suite in the root conftest's `pytest_plugins`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import django.db
import pytest
from django.apps import apps
from django.core import mail
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.transaction import Atomic

from core.db import statement_sql

LOCK_ORDER = ("events.Event", "events.TicketType", "bookings.Booking", "payments.Payment", "payments.Refund")
GATEWAY_OPERATIONS = ("authorize", "capture", "void", "refund")


class LockRuleBroken(AssertionError):
    pass


def lock_ranks() -> dict[str, int]:
    """Table name -> its place in the global lock order."""
    return {apps.get_model(label)._meta.db_table: rank for rank, label in enumerate(LOCK_ORDER)}


# --- What a statement locks ------------------------------------------------------------------

_LOCKING_CLAUSE = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b"
    r"(?:\s+OF\s+(?P<of>(?:\"[^\"]+\"|\w+)(?:\s*,\s*(?:\"[^\"]+\"|\w+))*))?", re.IGNORECASE)
_FROM_OR_JOIN = re.compile(r"\b(?:FROM|JOIN)\s+\"(?P<table>[^\"]+)\"(?:\s+(?:AS\s+)?(?P<alias>\"[^\"]+\"|\w+))?",
                           re.IGNORECASE)
_WRITE_TARGET = re.compile(r"\b(?:UPDATE|DELETE\s+FROM)\s+\"(?P<table>[^\"]+)\"", re.IGNORECASE)
# Only statements with one of these words can lock rows (a cheap test before parsing).
_MAY_LOCK = re.compile(r"UPDATE|DELETE|SHARE|EXECUTE ", re.IGNORECASE)
_NOT_ALIASES = {"on", "where", "inner", "left", "right", "full", "cross", "join", "order", "group", "limit",
                "offset", "for", "having", "window", "union", "set", "using"}


def _levels(statement: str) -> list[str]:
    """Each parenthesized level of one statement as its own text, nested levels blanked to "()";
    string literals and comments dropped."""
    stack: list[list[str]] = [[]]
    done: list[str] = []
    i, n = 0, len(statement)
    while i < n:
        char = statement[i]
        if char == "'":
            end = i + 1
            while end < n and not (statement[end] == "'" and statement[end + 1:end + 2] != "'"):
                end += 2 if statement[end] == "'" else 1
            stack[-1].append("''")
            i = end + 1
            continue
        if statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if statement.startswith("--", i):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if char == "(":
            stack[-1].append("()")
            stack.append([])
        elif char == ")" and len(stack) > 1:
            done.append("".join(stack.pop()))
        else:
            stack[-1].append(char)
        i += 1
    return ["".join(level) for level in stack] + done


def _statements(sql: str) -> list[str]:
    """The statements of one simple query (several, separated by `;` outside literals)."""
    statements, start, depth, quoted = [], 0, 0, False
    for i, char in enumerate(sql):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ";":
            statements.append(sql[start:i])
            start = i + 1
    statements.append(sql[start:])
    return [s.strip() for s in statements if s.strip()]


def tables_locked(sql: str) -> list[list[str]]:
    """For each statement of `sql`, the tables whose rows it locks, in the order they appear."""
    result = []
    for statement in _statements(statement_sql(sql)):
        tables: list[str] = []
        for level in _levels(statement):
            tables += [m["table"] for m in _WRITE_TARGET.finditer(level)]
            clause = _LOCKING_CLAUSE.search(level)
            if clause is None or not re.match(r"\s*SELECT\b", level, re.IGNORECASE):
                continue
            sources = {}
            for m in _FROM_OR_JOIN.finditer(level[:clause.start()]):
                alias = (m["alias"] or "").strip('"')
                sources[m["table"]] = m["table"]
                if alias and alias.lower() not in _NOT_ALIASES:
                    sources[alias] = m["table"]
            if clause["of"]:
                named = [name.strip().strip('"') for name in clause["of"].split(",")]
                tables += [sources.get(name, name) for name in named]
            else:
                tables += list(dict.fromkeys(sources.values()))
        result.append(list(dict.fromkeys(tables)))
    return result


# --- Per transaction -----------------------------------------------------------------------


@dataclass
class _Transaction:
    locked: list[str] = field(default_factory=list)  # tables of the order, in the order first locked


def _code_depth(db) -> int:
    """How many `atomic` blocks the code (not the test) has open on this connection."""
    return sum(1 for block in db.atomic_blocks
               if not block._from_testcase and not getattr(block, "_lock_rules_test", False))


ROOT = Path(__file__).resolve().parent.parent.parent
# Frames between an `atomic` block and whoever wrote it: Django's database layer (a model's
# `delete()` opens one for its caller) and contextlib (`@transaction.atomic` on a function).
_TRANSACTION_MACHINERY = (str(Path(django.db.__file__).parent) + os.sep, contextlib.__file__)


def _is_test_file(filename: str) -> bool:
    path = Path(filename)
    if not path.is_relative_to(ROOT) or ".venv" in path.parts:
        return False
    return path.name.startswith("test_") or path.name == "conftest.py" or "tests" in path.relative_to(ROOT).parts


def _opened_by_test(frame) -> bool:
    """Whether the `atomic` block being entered was written in a test (not in the code it tests)."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == contextlib.__file__ and callable(frame.f_locals.get("func")):
            # `@transaction.atomic` on a function: the block is that function's.
            code = getattr(frame.f_locals["func"], "__code__", None)
            return code is not None and _is_test_file(code.co_filename)
        if not filename.startswith(_TRANSACTION_MACHINERY):
            return _is_test_file(filename)
        frame = frame.f_back
    return False


class LockRules:
    """Records the locks of every transaction on every connection; collects the breaches."""

    def __init__(self, *, enforce: bool = True, tests_too: bool = False) -> None:
        self.enforce = enforce
        self.tests_too = tests_too  # also check transactions opened by tests (the checker's own tests)
        self.ranks = lock_ranks()
        self.breaches: list[str] = []
        self.transactions: list[list[str]] = []  # the locked tables of each transaction, for tests
        self._lock = threading.Lock()

    # the transaction of a connection: begun when the code opens its outermost atomic block
    def begin(self, db) -> None:
        db._lock_rules_tx = _Transaction()
        with self._lock:
            self.transactions.append(db._lock_rules_tx.locked)

    def current(self, db) -> _Transaction | None:
        return getattr(db, "_lock_rules_tx", None) if _code_depth(db) else None

    def breach(self, message: str) -> None:
        with self._lock:
            self.breaches.append(message)
        if self.enforce:
            raise LockRuleBroken(message)

    # connection.execute_wrapper
    def __call__(self, execute, sql, params, many, context):
        tx = self.current(context["connection"])
        if tx is not None and isinstance(sql, str) and _MAY_LOCK.search(sql):
            for tables in tables_locked(sql):
                self._record(tx, [t for t in tables if t in self.ranks], sql)
        return execute(sql, params, many, context)

    def _record(self, tx: _Transaction, tables: list[str], sql: str) -> None:
        new = [t for t in tables if t not in tx.locked]
        if len(new) > 1:
            before = list(tx.locked)
            tx.locked += new
            self.breach(f"one statement locks {', '.join(new)} together (after {before or 'nothing'}); "
                        f"lock one table per statement (`of=('self',)`): {sql[:300]}")
            return
        for table in new:
            later = [held for held in tx.locked if self.ranks[held] > self.ranks[table]]
            tx.locked.append(table)
            if later:
                self.breach(f"{table} locked after {', '.join(later)}, against the global order "
                            f"{' -> '.join(LOCK_ORDER)}: {sql[:300]}")

    def check_outside_transactions(self, what: str) -> None:
        db = connections["default"]
        tx = self.current(db)
        if tx is not None:
            self.breach(f"{what} inside a transaction (holding locks on {tx.locked or 'no table yet'}): "
                        "send it after commit (`transaction.on_commit`, or lock, commit, then send)")

    # installation
    def install(self, db) -> None:
        if self not in db.execute_wrappers:
            db.execute_wrappers.insert(0, self)

    def uninstall(self, db) -> None:
        if self in db.execute_wrappers:
            db.execute_wrappers.remove(self)


@contextmanager
def lock_rules(*, enforce: bool = True, tests_too: bool = False) -> Iterator[LockRules]:
    """Check the rules on every connection (this thread's and any opened meanwhile) while inside."""
    rules = LockRules(enforce=enforce, tests_too=tests_too)
    original_enter = Atomic.__enter__

    def enter(block):
        db = connections[block.using or "default"]
        if not block._from_testcase:
            block._lock_rules_test = not rules.tests_too and _opened_by_test(sys._getframe(1))
            if not block._lock_rules_test and _code_depth(db) == 0:
                rules.begin(db)
        return original_enter(block)

    def on_connection(sender, connection, **kwargs):
        rules.install(connection)

    def checked_connection(*args, **kwargs):
        backend = original_get_connection(*args, **kwargs)
        send = backend.send_messages

        def send_messages(messages):
            rules.check_outside_transactions("an e-mail is sent")
            return send(messages)

        backend.send_messages = send_messages
        return backend

    def checked_gateway_class(path):
        # A subclass whose operations check first, then call the class's own method as it is at call
        # time: tests that monkeypatch the gateway class still work, and no patch of ours can outlive
        # the context in the class itself (it would, restored out of order by a test's monkeypatch).
        cls = original_gateway_class(path)

        def operation(name):
            def call(self, *args, **kwargs):
                rules.check_outside_transactions(f"the payment gateway is called ({name})")
                return getattr(super(checked, self), name)(*args, **kwargs)
            return call

        checked = type(cls.__name__, (cls,), {name: operation(name) for name in GATEWAY_OPERATIONS})
        return checked

    from payments import gateway as gateway_module

    original_gateway_class = gateway_module._gateway_class
    original_get_connection = mail.get_connection
    db = connections["default"]
    connection_created.connect(on_connection)
    rules.install(db)
    try:
        with mock.patch.object(Atomic, "__enter__", enter), \
                mock.patch.object(mail, "get_connection", checked_connection), \
                mock.patch.object(gateway_module, "_gateway_class", checked_gateway_class):
            yield rules
    finally:
        connection_created.disconnect(on_connection)
        rules.uninstall(db)


# --- The suite-wide fixture ----------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line("markers", "lock_rules_off(reason): the test's own stand-in transactions break the "
                                       "lock rules on purpose; do not check them")


@pytest.fixture(autouse=True)
def lock_rules_record(request):
    """Every test: services lock in the global order and send no mail or gateway call under a lock.

    A test may ask for it to read what was locked (`LockRules.transactions`)."""
    if request.node.get_closest_marker("lock_rules_off"):
        yield None
        return
    with lock_rules() as rules:
        yield rules
    if rules.breaches:
        pytest.fail("lock rules broken (DESIGN.md section 6):\n  " + "\n  ".join(dict.fromkeys(rules.breaches)),
                    pytrace=False)
