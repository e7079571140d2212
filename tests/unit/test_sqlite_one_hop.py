"""SQLite statements run on the event loop's thread, or take one hop to the connection's thread
(`storage.sqlite_driver`), and behave as SQLAlchemy's own aiosqlite adapter either way: rows,
row counts, new ids, errors, a lock held elsewhere, a task cancelled while it waits. (SQLite
only by nature: PostgreSQL has no connection thread.)"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import burst_writer, close_burst_writer, create_engine, is_unavailable
from storage.sqlite_driver import OneHopDBAPI

ROOT = Path(__file__).resolve().parents[2]


ON_LOOP, HOPPING = "on the loop", "hopping"


@pytest.fixture(params=[ON_LOOP, HOPPING])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def engine(tmp_path: Any, mode: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'hops.db'}", sqlite_on_loop=mode == ON_LOOP)
    async with engine.begin() as connection:
        await connection.execute(text(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call aiosqlite runs on a connection's thread, by name."""
    calls: list[str] = []
    run_on_thread = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(fn, "__name__", repr(fn))
        if name == "_counted":  # the adapter's own hops: what they run
            name = getattr(args[0], "__name__", repr(args[0]))
        calls.append(name)
        return await run_on_thread(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_the_engine_runs_sqlite_through_the_one_hop_adapter(engine):
    assert isinstance(engine.sync_engine.dialect.dbapi, OneHopDBAPI)
    assert engine.url.drivername == "sqlite+aiosqlite"


async def test_a_statement_is_one_hop_or_none(engine, hops, mode):
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        hops.clear()
        await connection.execute(text("SELECT body FROM notes"))
        assert hops == ([] if mode == ON_LOOP else ["_run_statement"])


async def test_a_transaction_of_two_statements_is_no_hop_or_four(engine, hops, mode):
    async with engine.connect():  # the pool's connection, opened once
        pass
    hops.clear()
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
        await connection.execute(text("SELECT body FROM notes"))
    # the two statements (BEGIN IMMEDIATE with the first), COMMIT, the pool's reset
    # (SQLAlchemy's stock adapter, with the BEGIN as a statement of its own: sixteen hops);
    # on the loop, all of them there, the COMMIT's sync to disk too
    assert hops == ([] if mode == ON_LOOP else
                    ["_run_statement", "_run_statement", "commit", "rollback"])
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT body FROM notes"))).scalars().all() == [
            "a"]


async def test_a_commit_waits_behind_a_hop_still_under_way(engine, hops, mode):
    """On the loop too, a COMMIT asked for while a hop is under way on the connection's thread
    goes there after it, never beside it."""
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
        adapted = (await connection.get_raw_connection()).dbapi_connection
        slow = queue_counted_hop(adapted, time.sleep, 0.2)
        await asyncio.sleep(0)  # under way on the thread
        hops.clear()
    assert hops == ["commit"] + ([] if mode == ON_LOOP else ["rollback"])
    await slow


def queue_counted_hop(adapted: Any, function: Any, *args: Any) -> asyncio.Future[Any]:
    """`adapted.hop(function, *args)` from a plain task: queued on the connection's thread and
    counted as under way until it has run (`hop` itself awaits through SQLAlchemy's
    greenlet)."""
    adapted._hops_sent += 1
    return asyncio.ensure_future(adapted._connection._execute(adapted._counted, function, *args))


async def test_a_transaction_holds_the_write_lock_from_its_first_statement(engine, tmp_path):
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0)
    async with engine.begin() as connection:
        await connection.execute(text("SELECT body FROM notes"))  # a read, yet IMMEDIATE
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # committed: free again
    other.execute("ROLLBACK")
    other.close()


async def test_a_transaction_without_statements_sends_nothing(engine, hops, mode):
    async with engine.connect():  # the pool's connection, opened once
        pass
    hops.clear()
    async with engine.begin():
        pass
    assert hops == ([] if mode == ON_LOOP else ["rollback"])  # the pool's reset only


async def test_rows_counts_and_new_ids_are_read(engine):
    async with engine.begin() as connection:
        first = await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
        second = await connection.execute(text("INSERT INTO notes (body) VALUES ('b')"))
        assert (first.lastrowid, second.lastrowid) == (1, 2)
        changed = await connection.execute(text("UPDATE notes SET body = body || '!'"))
        assert changed.rowcount == 2
        returned = await connection.execute(text(
            "UPDATE notes SET body = 'c' WHERE id = :id RETURNING id, body"), {"id": 2})
        assert returned.all() == [(2, "c")]
        rows = await connection.execute(text("SELECT id, body FROM notes ORDER BY id"))
        assert rows.all() == [(1, "a!"), (2, "c")]
        empty = await connection.execute(text("SELECT id FROM notes WHERE id = 99"))
        assert empty.first() is None


async def test_a_constraint_error_is_sqlalchemys_and_the_transaction_is_rolled_back(engine):
    with pytest.raises(exc.IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
            await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
    async with engine.connect() as connection:
        count = await connection.scalar(text("SELECT count(*) FROM notes"))
    assert count == 0


async def test_a_commit_that_fails_writes_nothing_and_frees_the_write_lock(engine, tmp_path,
                                                                           hops, mode):
    """A COMMIT SQLite refuses (here a deferred foreign key, checked only at COMMIT; a full
    disk or an I/O error fails there too) is SQLAlchemy's error, and the transaction it leaves
    open is rolled back: nothing written, the write lock free for other writers, and the
    connection used again as before (on the loop: still no hop)."""
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE cases (id INTEGER PRIMARY KEY)"))
        await connection.execute(text(
            "CREATE TABLE replies (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL "
            "REFERENCES cases (id) DEFERRABLE INITIALLY DEFERRED)"))
    hops.clear()
    with pytest.raises(exc.IntegrityError, match="FOREIGN KEY"):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('kept?')"))
            await connection.execute(text("INSERT INTO replies (case_id) VALUES (7)"))
    assert ("commit" in hops) == (mode == HOPPING)  # where the refused COMMIT ran

    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")  # the write lock is free again
    other.execute("ROLLBACK")
    other.close()
    hops.clear()
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO cases (id) VALUES (7)"))
        await connection.execute(text("INSERT INTO replies (case_id) VALUES (7)"))
        await connection.execute(text("INSERT INTO notes (body) VALUES ('after')"))
    async with engine.connect() as connection:
        notes = (await connection.execute(text("SELECT body FROM notes"))).scalars().all()
    assert notes == ["after"]
    if mode == ON_LOOP:
        assert hops == []


async def test_a_bad_statement_leaves_the_connection_usable(engine):
    async with engine.connect() as connection:
        with pytest.raises(exc.OperationalError):
            await connection.execute(text("SELECT nothing FROM nowhere"))
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT 1")) == 1


async def test_a_write_lock_held_elsewhere_is_unavailable_to_the_burst_writer(engine,
                                                                            tmp_path):
    writer = burst_writer(engine)
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(exc.OperationalError) as raised:
            async with writer.begin() as connection:
                await connection.execute(text("INSERT INTO notes (body) VALUES ('x')"))
        assert is_unavailable(raised.value)
    finally:
        other.execute("ROLLBACK")
    async with writer.begin() as connection:  # the lock is free: the same writer writes
        await connection.execute(text("INSERT INTO notes (body) VALUES ('x')"))
    await close_burst_writer(writer)
    other.close()


async def test_statements_from_many_tasks_all_land(engine):
    async def add(index: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:b)"),
                                     {"b": f"note {index}"})

    await asyncio.gather(*(add(i) for i in range(50)))
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM notes")) == 50


async def test_a_streamed_read_begins_its_transaction_too(engine, tmp_path):
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO notes (body) VALUES ('a'), ('b')"))
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0)
    async with engine.begin() as connection:
        streamed = await connection.stream(text("SELECT body FROM notes ORDER BY id"))
        assert [row.body async for row in streamed] == ["a", "b"]
        adapted = (await connection.get_raw_connection()).dbapi_connection
        assert not adapted.free_to_run_here()  # a streaming connection keeps to its thread
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.close()


async def test_a_statement_cancelled_while_it_waits_for_the_lock_commits_nothing(engine,
                                                                                 tmp_path):
    """A task cancelled mid-statement (a shutdown, a timeout) while its BEGIN IMMEDIATE waits
    for the write lock (on the loop; hopping, queued with its INSERT on the connection's thread,
    where they run once the lock is free): nothing of them is kept, the file's lock is not left
    held, and the engine goes on working."""
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")

    async def insert(body: str) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": body})

    cancelled = asyncio.create_task(insert("cancelled"))
    await asyncio.sleep(0.2)  # waiting for the write lock
    cancelled.cancel()
    await asyncio.sleep(0.05)  # the task's clean-up waits behind its queued statement
    other.execute("ROLLBACK")  # the queued BEGIN and INSERT run, then the clean-up
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    await insert("after")
    async with engine.connect() as connection:
        bodies = (await connection.execute(text("SELECT body FROM notes"))).scalars().all()
    assert bodies == ["after"]
    other.execute("BEGIN IMMEDIATE")  # nobody holds the write lock
    other.execute("ROLLBACK")
    other.close()


async def test_statements_wait_behind_a_hop_still_under_way(engine, tmp_path, hops, mode):
    """A task cancelled while its BEGIN waits for the write lock: hopping, that hop goes on
    running (it inserts once the lock is free) and what follows goes to the thread after it
    (SQLAlchemy closes that connection there); on the loop the wait ends with the task. Either
    way the cancelled connection is closed and the next transaction writes alone."""
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    async def insert(body: str) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": body})

    try:
        cancelled = asyncio.create_task(insert("cancelled"))
        await asyncio.sleep(0.1)  # waiting on the thread
        hops.clear()
        cancelled.cancel()
        after = asyncio.create_task(insert("after"))
        await asyncio.sleep(0.1)
        assert not after.done()  # behind the waiting BEGIN
    finally:
        await asyncio.to_thread(other.execute, "ROLLBACK")
    await after
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert "create_function" in hops  # a new connection: the cancelled one was closed
    async with engine.connect() as connection:
        bodies = (await connection.execute(text("SELECT body FROM notes"))).scalars().all()
    assert bodies == ["after"]
    hops.clear()
    async with engine.connect() as connection:  # the hop ended: back on the loop
        await connection.execute(text("SELECT body FROM notes"))
    assert hops == ([] if mode == ON_LOOP else ["_run_statement", "rollback"])
    other.close()


async def test_a_connection_runs_nothing_on_the_loop_while_a_hop_is_under_way(engine, mode):
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        adapted = (await connection.get_raw_connection()).dbapi_connection
        assert adapted.free_to_run_here() is (mode == ON_LOOP)
        under_way = asyncio.create_task(
            connection.run_sync(lambda _: adapted.hop(time.sleep, 0.2)))
        await asyncio.sleep(0.05)
        assert not adapted.free_to_run_here()
        await under_way
        assert adapted.free_to_run_here() is (mode == ON_LOOP)


async def test_a_commit_cancelled_on_the_thread_closes_its_connection_and_leaves_no_task(
        engine):
    """A task cancelled while its COMMIT waits on the connection's thread: SQLAlchemy drops
    the connection (a close in a task of its own, and when the task is cancelled again, the
    thread stopped at once). Every task ends, nothing waits for a thread that is gone, and the
    engine goes on."""
    queued: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def write() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('a')"))
            adapted = (await connection.get_raw_connection()).dbapi_connection
            # something slow ahead of the COMMIT on the thread
            queued.set_result(queue_counted_hop(adapted, time.sleep, 0.3))
            await asyncio.sleep(0)  # queued on the thread before the COMMIT

    writing = asyncio.create_task(write())
    slow = await queued
    await asyncio.sleep(0.05)  # the COMMIT waits behind the sleep
    writing.cancel()
    await asyncio.sleep(0.05)  # SQLAlchemy's close of the connection waits on the thread too
    writing.cancel()  # a shutdown cancels again
    with pytest.raises(asyncio.CancelledError):
        await writing
    await slow
    others = asyncio.all_tasks() - {asyncio.current_task()}
    _, waiting = await asyncio.wait(others, timeout=2) if others else (set(), set())
    assert not waiting
    async with engine.begin() as connection:  # a new connection
        await connection.execute(text("INSERT INTO notes (body) VALUES ('b')"))
    async with engine.connect() as connection:
        assert "b" in (await connection.execute(text("SELECT body FROM notes"))).scalars().all()


async def test_a_transaction_waits_for_a_write_lock_held_elsewhere_then_writes(
        engine, tmp_path, hops, mode):
    """The BEGIN asks again while another writer holds the lock (SQLite's busy handler is off:
    `PRAGMA busy_timeout` is 0), on the loop between pauses that let other tasks run, or on the
    connection's thread, and writes once it is free."""
    async with engine.connect():  # the pool's connection, opened once
        pass
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    async def insert() -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES ('waited')"))

    hops.clear()
    waiting = asyncio.create_task(insert())
    await asyncio.sleep(0.1)  # this task runs: the wait does not hold the loop
    assert not waiting.done()  # still asking
    await asyncio.to_thread(other.execute, "COMMIT")
    await waiting
    assert hops == ([] if mode == ON_LOOP else ["_run_statement", "commit", "rollback"])
    async with engine.connect() as connection:
        assert await connection.scalar(text("PRAGMA busy_timeout")) == 0
        assert (await connection.execute(text("SELECT body FROM notes"))).scalars().all() == [
            "waited"]
    other.close()


async def test_a_write_lock_held_past_the_wait_is_unavailable(engine, tmp_path):
    async with engine.connect() as connection:  # the pool's one connection: a short wait
        await connection.run_sync(
            lambda sync: sync.connection.dbapi_connection.wait_for_write_lock(0.2))
    other = sqlite3.connect(tmp_path / "hops.db", isolation_level=None, timeout=0,
                            check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(exc.OperationalError, match="locked") as raised:
            async with engine.begin() as connection:
                await connection.execute(text("SELECT 1"))
        assert is_unavailable(raised.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


WRITER = """
import asyncio, sys
from sqlalchemy import text
from storage.db import create_engine

async def main(url, name, on_loop):
    engine = create_engine(url, sqlite_on_loop=on_loop == "on the loop")
    for n in range(150):
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO notes (body) VALUES (:b)"),
                                     {"b": f"{name} {n}"})
    await engine.dispose()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_writing_at_once_both_land_every_transaction(engine, tmp_path,
                                                                          mode):
    url = f"sqlite:///{tmp_path / 'hops.db'}"
    writers = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, url, name, mode, cwd=ROOT,
        stderr=asyncio.subprocess.PIPE) for name in ("first", "second")]
    for writer in writers:
        _, err = await writer.communicate()
        assert writer.returncode == 0, err.decode()[-2000:]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM notes")) == 300
