"""Database engines and sessions for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_driver import begin_immediate, one_hop_dbapi

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
SQLITE_BUSY_MS = 10_000  # how long a SQLite write waits for the file's write lock
# How often a burst writer asks SQLite for the write lock again (see `burst_writer`).
SQLITE_LOCK_POLL_SECONDS = 0.0005
T = TypeVar("T")
# sqlite3 connections are used from the event loop's thread too, never from two at once.
_SQLITE_CONNECT_ARGS = {"timeout": 30, "check_same_thread": False}


def async_url(url: str) -> URL:
    """Turn a plain `sqlite:///bot.db` or `postgresql://...` URL into its asyncio driver's URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"database.url: unsupported database {backend!r}; use sqlite:///file.db or "
            "postgresql://user@host/db"
        )
    return parsed.set(drivername=_ASYNC_DRIVERS[backend])


def _enable_sqlite_pragmas(dbapi_connection: Any, _record: Any, *,
                           busy_ms: int = SQLITE_BUSY_MS) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.close()


def _sqlite_connect(dbapi_connection: Any, record: Any, *, busy_ms: int = SQLITE_BUSY_MS,
                    on_loop: bool = True) -> None:
    _enable_sqlite_pragmas(dbapi_connection, record, busy_ms=busy_ms)
    # Transactions are begun by hand, as BEGIN IMMEDIATE (`sqlite_driver.begin_immediate`),
    # which waits for the write lock itself, asking often.
    dbapi_connection.isolation_level = None
    dbapi_connection.wait_for_write_lock(busy_ms / 1000)
    if on_loop:
        dbapi_connection.run_statements_on_loop()


def create_engine(url: str, *, pool_size: int = 10, sqlite_on_loop: bool = True
                  ) -> AsyncEngine:
    """An asyncio engine; SQLite runs in WAL mode with foreign keys enforced.

    SQLite: one connection per process (one writer: transactions queue in the process, in order,
    instead of racing for the file lock and sleep-polling in the busy handler), each transaction
    BEGIN IMMEDIATE, each statement run on the event loop's thread, or with `sqlite_on_loop`
    False one hop to the connection's thread, which a statement that reads much does not hold
    the loop up for (`storage.sqlite_driver`).
    PostgreSQL: no pre-ping on every checkout (three round trips each); a connection that died
    is noticed by its next statement, which fails as "unavailable" and is retried like any
    outage (the worker's sweep, Slack's redelivery), and connections are recycled after an hour.
    """
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(target, module=one_hop_dbapi(),
                                     connect_args=_SQLITE_CONNECT_ARGS, pool_size=1,
                                     max_overflow=0, pool_timeout=60)
        event.listen(engine.sync_engine, "connect", partial(_sqlite_connect,
                                                            on_loop=sqlite_on_loop))
        event.listen(engine.sync_engine, "begin", begin_immediate)
        return engine
    return create_async_engine(target, pool_size=pool_size, max_overflow=pool_size,
                               pool_recycle=3600)


def burst_writer(engine: AsyncEngine) -> AsyncEngine:
    """The engine the Slack front stores deliveries with before their acks (one statement a
    transaction): PostgreSQL, `engine` in autocommit (one round trip instead of BEGIN, INSERT,
    COMMIT). SQLite, a connection of its own that never sleeps in SQLite's busy handler, whose
    waits grow to 100 ms and let a busy writer in another process (the worker) take the lock
    again and again meanwhile (an ack waited 0.56 s in a burst): `write_when_free` asks for the
    lock every half millisecond instead. A SQLite writer is the caller's to dispose of."""
    if engine.dialect.name != "sqlite":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    writer = create_async_engine(engine.url, module=one_hop_dbapi(),
                                 connect_args={**_SQLITE_CONNECT_ARGS, "timeout": 0}, pool_size=1,
                                 max_overflow=0, pool_timeout=60)
    event.listen(writer.sync_engine, "connect", partial(_sqlite_connect, busy_ms=0))
    event.listen(writer.sync_engine, "begin", begin_immediate)
    return writer


async def close_burst_writer(writer: AsyncEngine) -> None:
    """Dispose of a `burst_writer`'s own connection (SQLite); PostgreSQL's shares the pool."""
    if writer.dialect.name == "sqlite":
        await writer.dispose()


async def write_when_free(engine: AsyncEngine,
                          work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work` in one write transaction. On a `burst_writer` SQLite engine, a write lock
    held elsewhere is asked for again every `SQLITE_LOCK_POLL_SECONDS`, up to SQLite's usual
    wait; `work` runs once the lock is taken (BEGIN IMMEDIATE)."""
    deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
    while True:
        try:
            async with engine.begin() as connection:
                return await work(connection)
        except exc.OperationalError as error:
            if (engine.dialect.name != "sqlite" or "locked" not in str(error.orig)
                    or time.monotonic() > deadline):
                raise
        await asyncio.sleep(SQLITE_LOCK_POLL_SECONDS)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


_UNAVAILABLE_NAMES = frozenset({
    "CannotConnectNowError", "ConnectionDoesNotExistError", "ConnectionFailureError",
    "AdminShutdownError", "TooManyConnectionsError",
})


def is_unavailable(error: BaseException) -> bool:
    """True when `error` says the database cannot be reached right now (a restart, a network
    fault, a locked SQLite file), as opposed to a bug or a constraint: retry later."""
    seen: BaseException | None = error
    for _ in range(6):  # the error and the causes it wraps
        if seen is None:
            return False
        if isinstance(seen, exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError,
                             ConnectionError, OSError)):
            return True
        if type(seen).__name__ in _UNAVAILABLE_NAMES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def ping(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
