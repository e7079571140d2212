"""SQLAlchemy's aiosqlite adapter with one thread hop per statement.

aiosqlite runs each SQLite call on the connection's own thread, and every call is a hop: a
queue put, a thread wake-up, the GIL handed over, and the event loop woken through its
self-pipe to take the result. SQLAlchemy's adapter makes four calls a statement (open a
cursor, execute, fetch, close), so a transaction of two statements was about a dozen hops,
~0.95 ms of CPU. Here a statement is one function run on that thread (execute, read the rows
or the row count, close the cursor), one hop: the same transaction costs ~0.55 ms.

Everything else is SQLAlchemy's adapter unchanged: commit, rollback (the pool's reset of a
connection given back stays a hop of its own, even after a commit: a statement cancelled before
it ran, a BEGIN say, may still be queued on the thread, and the rollback must come after it),
server-side cursors, isolation level, termination. `create_engine` passes the adapter as the
engine's DBAPI `module`, so URLs stay `sqlite+aiosqlite://`.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)


def _run_statement(connection: sqlite3.Connection, operation: str,
                   parameters: Any) -> tuple[Any, list[Any] | None, int | None, int]:
    """On the connection's thread: the statement's description, rows, lastrowid, rowcount."""
    cursor = connection.cursor()
    try:
        cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        # aiosqlite has no public "run this on the connection's thread"; `_execute` is what
        # each of its own methods calls (SQLAlchemy's adapter reaches in likewise, for the
        # isolation level). tests/ run every statement through here, on every SQLite test.
        connection: aiosqlite.Connection = self._connection
        try:
            description, rows, lastrowid, rowcount = self.await_(connection._execute(
                _run_statement, connection._conn, operation,
                () if parameters is None else parameters))
        except ValueError as error:  # a closed connection: an OperationalError, as SQLAlchemy's
            self._adapt_connection._handle_exception(error)
        if description:
            self.description = description
            self.lastrowid = self.rowcount = -1
            self._rows = deque(rows or ())
        else:
            self.description = None
            self.lastrowid = lastrowid
            self.rowcount = rowcount


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:
            return super().cursor(server_side=True)
        return OneHopCursor(self)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*args, **kwargs)
        if type(adapted) is not AsyncAdapt_aiosqlite_connection:
            return adapted  # the sync fallback mode, which the bot never uses
        return OneHopConnection(self, adapted._connection)


def one_hop_dbapi() -> OneHopDBAPI:
    """The DBAPI module to give `create_async_engine(..., module=...)` for SQLite."""
    return OneHopDBAPI(aiosqlite, sqlite3)
