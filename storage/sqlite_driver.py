"""SQLAlchemy's aiosqlite adapter with one thread hop per statement, and SQLite transactions
begun with `BEGIN IMMEDIATE` in the hop of their first statement.

aiosqlite runs each SQLite call on the connection's own thread, and every call is a hop: a
queue put, a thread wake-up, the GIL handed over, and the event loop woken through its
self-pipe to take the result. SQLAlchemy's adapter makes four calls a statement (open a
cursor, execute, fetch, close), so a transaction of two statements was about a dozen hops,
~0.95 ms of CPU. Here a statement is one function run on that thread (execute, read the rows
or the row count, close the cursor), one hop.

SQLite has one writer, and a transaction that reads then writes must hold the write lock from
its start, or it fails half-way with "database is locked" when another process wrote since it
read: every transaction begins with `BEGIN IMMEDIATE` (`begin_immediate`, SQLAlchemy's
"begin" event). The BEGIN goes with the transaction's first statement, in its hop. If SQLite
refuses the lock, that statement fails with the OperationalError the BEGIN raised.

While another writer (another process) holds the write lock, the BEGIN is asked again every
50 µs at first and at most every millisecond, for the connection's `lock_wait`
(`wait_for_write_lock`). SQLite's own busy handler sleeps 1, 2, 5 … up to 100 ms between tries,
so a writer that had waited a little then slept through most of the next writers' turns: two
worker processes answered no more than one.

On a connection told to `run_statements_on_loop`, a statement takes no hop at all: it runs on
the event loop's thread, as do its COMMIT and a rollback (SQLite answers a statement in tens of
microseconds, less than a hop costs; a burst's answers took 0.7-0.87x the CPU), and a BEGIN
that finds the write lock held waits there too, between tries in `asyncio.sleep`, so the loop
runs its other tasks meanwhile. Under load a hop costs more than its own work: the connection's
thread must win the GIL from a busy loop (up to its 5 ms switch interval), and the loop must
come back for the result, while the write lock stays held. The COMMIT syncs the log to disk
while the loop waits, ~0.25 ms here; its hop had cost more (docs/performance.md, twelfth
session). What goes to the connection's thread there is only what comes while a hop is still
under way (one whose caller was cancelled goes on running: what follows it waits its turn on
the thread, so a connection is never used from two threads at once). A statement that reads
much, or a slow disk's sync, stops the loop while it runs:
`storage.db.create_engine(sqlite_on_loop=False)` keeps every statement, COMMIT and wait on the
connection's thread, for the Slack front of worker processes, whose acks share its loop with
slow commands (reports; `bot.process.wiring` decides). A connection that opens one of
SQLAlchemy's server-side cursors (a streamed read; the bot makes none), whose every call is
aiosqlite's own hop, keeps to its thread from then on.

The graceful close of a dropped connection stops its thread only while it still runs (see
`_terminate_graceful_close`). Everything else is SQLAlchemy's adapter unchanged: isolation
level, forced termination. `storage.db` passes the adapter as the engine's DBAPI `module`, so
URLs stay `sqlite+aiosqlite://`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Connection

BEGIN = "BEGIN IMMEDIATE"
FIRST_LOCK_POLL_SECONDS = 0.00005
MAX_LOCK_POLL_SECONDS = 0.001

Outcome = tuple[Any, list[Any] | None, int | None, int]
T = TypeVar("T")


def _lock_pauses(lock_wait: float) -> Iterator[float]:
    """The pauses between tries of a BEGIN IMMEDIATE that finds the write lock held by another
    writer: 50 µs at first, doubling up to a millisecond, for `lock_wait` seconds in all."""
    deadline, pause = time.monotonic() + lock_wait, FIRST_LOCK_POLL_SECONDS
    while time.monotonic() < deadline:
        yield pause
        pause = min(pause * 2, MAX_LOCK_POLL_SECONDS)


def _try_begin(connection: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE; False when another writer holds the write lock (nothing began)."""
    try:
        connection.execute(BEGIN)
        return True
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # its extended codes too
            raise
        return False


def _begin(connection: sqlite3.Connection, lock_wait: float) -> None:
    """On the connection's thread: BEGIN IMMEDIATE, asked again while another writer holds the
    write lock, for `lock_wait` seconds at most (then SQLite's "database is locked")."""
    for pause in _lock_pauses(lock_wait):
        if _try_begin(connection):
            return
        time.sleep(pause)
    connection.execute(BEGIN)  # the last try: SQLite's own error if the lock is still held


def _run_statement(connection: sqlite3.Connection, begin: float | None,
                   execute: Callable[[sqlite3.Cursor], object]) -> Outcome:
    """On the connection's thread: begin if asked (`begin`: how long to wait for the write
    lock), run the statement, and return its description, rows, lastrowid and rowcount."""
    if begin is not None:
        _begin(connection, begin)
    cursor = connection.cursor()
    try:
        execute(cursor)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def _run_here(connection: sqlite3.Connection, begin: bool,
              execute: Callable[[sqlite3.Cursor], object]) -> Outcome | None:
    """On the event loop's thread: `_run_statement`, beginning first if asked, without waiting;
    None when another writer holds the write lock (nothing ran)."""
    if begin and not _try_begin(connection):
        return None
    return _run_statement(connection, None, execute)


async def _now(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` as an awaitable that never suspends: SQLAlchemy's adapter runs what it
    awaits on the loop's thread, and wants each statement to await something."""
    return function(*args)


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        arguments = () if parameters is None else parameters
        self._run(lambda cursor: cursor.execute(operation, arguments))

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        self._run(lambda cursor: cursor.executemany(operation, seq_of_parameters))

    def _run(self, execute: Callable[[sqlite3.Cursor], object]) -> None:
        adapted: OneHopConnection = self._adapt_connection  # type: ignore[assignment]
        connection: aiosqlite.Connection = self._connection
        begin = adapted.take_pending_begin()
        try:
            if adapted.free_to_run_here():
                outcome = adapted.run_here(begin, execute)
            else:
                outcome = adapted.hop(_run_statement, connection._conn,
                                      adapted.lock_wait if begin else None, execute)
        except ValueError as error:  # a closed connection: an OperationalError, as SQLAlchemy's
            adapted._handle_exception(error)
        description, rows, lastrowid, rowcount = outcome
        if description:
            self.description = description
            self.lastrowid = self.rowcount = -1
            self._rows = deque(rows or ())
        else:
            self.description = None
            self.lastrowid = lastrowid
            self.rowcount = rowcount


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_begin_pending", "_hops_done", "_hops_sent", "_on_loop", "lock_wait")

    def __init__(self, dbapi: Any, connection: aiosqlite.Connection) -> None:
        super().__init__(dbapi, connection)
        self._begin_pending = False
        self.lock_wait = 0.0
        self._on_loop = False
        self._hops_sent = 0
        self._hops_done = 0  # counted on the connection's thread as each hop ends

    def wait_for_write_lock(self, seconds: float) -> None:
        """How long a transaction's BEGIN waits for the write lock; the waiting is this
        module's from here on, not SQLite's busy handler (which only BEGIN IMMEDIATE needs:
        the statements after it hold the lock already)."""
        self.lock_wait = seconds
        cursor = self.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    def run_statements_on_loop(self) -> None:
        """From now on, statements, commits and rollbacks run on the event loop's thread (see the
        module's docstring); only after `wait_for_write_lock`, so that none can sleep in
        SQLite's busy handler there."""
        self._on_loop = True

    def free_to_run_here(self) -> bool:
        """True when this connection runs statements on the loop's thread and no hop is still
        under way on its own."""
        return self._on_loop and self._hops_done == self._hops_sent

    def run_here(self, begin: bool, execute: Callable[[sqlite3.Cursor], object]) -> Outcome:
        """On the loop's thread: the statement, begun first if asked. While another writer
        holds the write lock, the BEGIN is asked again after a pause on the loop (its other
        tasks run meanwhile), for `lock_wait` at most."""
        connection: sqlite3.Connection = self._connection._conn
        outcome = self.await_(_now(_run_here, connection, begin, execute))
        if outcome is not None:
            return outcome
        for pause in _lock_pauses(self.lock_wait):
            self.await_(asyncio.sleep(pause))
            outcome = self.await_(_now(_run_here, connection, True, execute))
            if outcome is not None:
                return outcome
        # the last try: SQLite's own "database is locked" if the lock is still held
        return self.await_(_now(_run_statement, connection, 0.0, execute))

    def hop(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the connection's thread, counted until it has run there.
        aiosqlite has no public "run this on the connection's thread"; `_execute` is what each
        of its own methods calls (SQLAlchemy's adapter reaches in likewise)."""
        self._hops_sent += 1
        return self.await_(self._connection._execute(self._counted, function, *args))

    def _counted(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return function(*args)
        finally:
            self._hops_done += 1

    async def _terminate_graceful_close(self) -> None:
        """Close the connection after what is queued on its thread, and end the thread.
        SQLAlchemy runs this in a task of its own when a cancelled statement or commit
        invalidates the connection, and ends the thread at once (`stop`) when the wait is
        cancelled too; aiosqlite's `close` after that waits forever for a thread that is gone
        (it hung a shutdown), so this asks the thread to stop only while it still runs."""
        connection = self._connection
        if connection._running:
            stopped = connection.stop()  # closes the SQLite connection, then ends the thread
            if stopped is not None:
                await stopped

    def begin_with_next_statement(self) -> None:
        self._begin_pending = True

    def take_pending_begin(self) -> bool:
        begin, self._begin_pending = self._begin_pending, False
        return begin

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        if server_side:  # SQLAlchemy's own cursor, which knows nothing of the pending BEGIN
            self._on_loop = False  # nor of the hops under way: from now on, all of them
            if self.take_pending_begin():
                self.hop(_begin, self._connection._conn, self.lock_wait)
            return super().cursor(server_side=True)
        return OneHopCursor(self)

    def commit(self) -> None:
        if self.take_pending_begin():
            return  # no statement since the BEGIN was asked for: nothing began, nothing to send
        try:
            if self.free_to_run_here():
                self.await_(_now(self._connection._conn.commit))  # its sync to disk too
            else:  # after what is still under way on the thread
                self.hop(self._connection._conn.commit)
        except Exception as error:  # noqa: BLE001 - as SQLAlchemy's adapter handles it
            self._handle_exception(error)

    def rollback(self) -> None:
        self._begin_pending = False
        try:
            if self.free_to_run_here():
                self.await_(_now(self._connection._conn.rollback))
            else:  # after what is still under way on the thread
                self.hop(self._connection._conn.rollback)
        except Exception as error:  # noqa: BLE001 - as SQLAlchemy's adapter handles it
            self._handle_exception(error)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*args, **kwargs)
        if type(adapted) is not AsyncAdapt_aiosqlite_connection:
            return adapted  # the sync fallback mode, which the bot never uses
        return OneHopConnection(self, adapted._connection)


def one_hop_dbapi() -> OneHopDBAPI:
    """The DBAPI module to give `create_async_engine(..., module=...)` for SQLite."""
    return OneHopDBAPI(aiosqlite, sqlite3)


def begin_immediate(connection: Connection) -> None:
    """SQLAlchemy's "begin" event of a SQLite engine on this adapter: the transaction begins
    with `BEGIN IMMEDIATE`, sent with its first statement."""
    adapted = connection.connection.dbapi_connection
    assert isinstance(adapted, OneHopConnection), "a SQLite engine made by storage.db"
    adapted.begin_with_next_statement()
