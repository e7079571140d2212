"""What the database layer costs an answer in CPU: one hot-path statement, and one transaction
around it, run through SQLAlchemy's `AsyncSession` (as the bot runs them), its
`AsyncConnection` (Core, no ORM session), and the driver alone (asyncpg; sqlite3 on the loop),
on each database, with the engines the bot makes (`storage.db.create_engine`).

    .venv/bin/python -m bench.bench_statements [--database sqlite postgresql://postgres@127.0.0.1:5432]
        [--n 3000] [--rounds 3] [--json PATH]

The statement is the shape of the bot's claims (`UPDATE ... SET n = n + 1 WHERE id = :id
RETURNING n`) on a one-row table of this benchmark's own, in a fresh database. Each way runs
`--n` statements in one transaction, then `--n / 3` one-statement transactions; the ways take
turns `--rounds` times and the medians of CPU time (this process: the client's side only, not
the server's) are reported. An answer's share is that cost times the statements and
transactions an answer commits (`tests/e2e/test_transactions_per_answer.py` bounds them): what
the bot's own database work costs an answer on top of the bare app, and what the driver alone
would cost for the same work.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.harness import ROOT, fresh_database, table
from storage.db import create_engine, create_session_factory
from tests.e2e.test_transactions_per_answer import COMMITS_PER_ANSWER, STATEMENTS_PER_ANSWER

_METADATA = MetaData()
_COUNTERS = Table("bench_counters", _METADATA, Column("id", Integer, primary_key=True),
                  Column("n", Integer, nullable=False))
_BUMP = (update(_COUNTERS).where(_COUNTERS.c.id == bindparam("row"))
         .values(n=_COUNTERS.c.n + 1).returning(_COUNTERS.c.n))
_BUMP_SQL = {"postgresql": "UPDATE bench_counters SET n = n + 1 WHERE id = $1 RETURNING n",
             "sqlite": "UPDATE bench_counters SET n = n + 1 WHERE id = ? RETURNING n"}

Run = Callable[[int], Awaitable[None]]


class Ways:
    """The three ways to run the statement on one database, each as (statements in one
    transaction, one-statement transactions)."""

    def __init__(self, engine: AsyncEngine, driver: Any, dialect: str) -> None:
        self._engine = engine
        self._sessions = create_session_factory(engine)
        self._driver = driver
        self._dialect = dialect

    async def session_statements(self, n: int) -> None:
        async with self._sessions() as session:
            for _ in range(n):
                (await session.execute(_BUMP, {"row": 1})).scalar_one()
            await session.commit()

    async def session_transactions(self, n: int) -> None:
        for _ in range(n):
            async with self._sessions() as session:
                (await session.execute(_BUMP, {"row": 1})).scalar_one()
                await session.commit()

    async def core_statements(self, n: int) -> None:
        async with self._engine.begin() as connection:
            for _ in range(n):
                (await connection.execute(_BUMP, {"row": 1})).scalar_one()

    async def core_transactions(self, n: int) -> None:
        for _ in range(n):
            async with self._engine.begin() as connection:
                (await connection.execute(_BUMP, {"row": 1})).scalar_one()

    async def driver_statements(self, n: int) -> None:
        sql = _BUMP_SQL[self._dialect]
        if self._dialect == "postgresql":
            async with self._driver.transaction():
                for _ in range(n):
                    await self._driver.fetchval(sql, 1)
            return
        self._driver.execute("BEGIN IMMEDIATE")
        for _ in range(n):
            self._driver.execute(sql, (1,)).fetchone()
        self._driver.execute("COMMIT")

    async def driver_transactions(self, n: int) -> None:
        sql = _BUMP_SQL[self._dialect]
        for _ in range(n):
            if self._dialect == "postgresql":
                async with self._driver.transaction():
                    await self._driver.fetchval(sql, 1)
            else:
                self._driver.execute("BEGIN IMMEDIATE")
                self._driver.execute(sql, (1,)).fetchone()
                self._driver.execute("COMMIT")


async def cpu_per_call(run: Run, n: int) -> float:
    """Microseconds of this process's CPU per statement (or transaction) of `run(n)`."""
    started = time.process_time()
    await run(n)
    return (time.process_time() - started) * 1e6 / n


async def measure(url: str, dialect: str, n: int, rounds: int) -> list[dict[str, Any]]:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_METADATA.create_all)
        await connection.execute(_COUNTERS.insert().values(id=1, n=0))
    if dialect == "postgresql":
        driver: Any = await asyncpg.connect(url)
    else:
        driver = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        driver.execute("PRAGMA journal_mode=WAL")
    ways = Ways(engine, driver, dialect)
    paths = {"AsyncSession (the bot)": (ways.session_statements, ways.session_transactions),
             "AsyncConnection (Core)": (ways.core_statements, ways.core_transactions),
             "driver alone": (ways.driver_statements, ways.driver_transactions)}
    samples: dict[str, tuple[list[float], list[float]]] = {p: ([], []) for p in paths}
    try:
        for statements, transactions in paths.values():  # warm: caches, prepared statements
            await statements(200)
            await transactions(100)
        for _ in range(rounds):
            for path, (statements, transactions) in paths.items():
                samples[path][0].append(await cpu_per_call(statements, n))
                samples[path][1].append(await cpu_per_call(transactions, max(1, n // 3)))
    finally:
        if dialect == "postgresql":
            await driver.close()
        else:
            driver.close()
        await engine.dispose()
    driver_statement = statistics.median(samples["driver alone"][0])
    driver_transaction = statistics.median(samples["driver alone"][1])
    rows = []
    for path, (per_statement, per_transaction) in samples.items():
        statement, transaction = (statistics.median(per_statement),
                                  statistics.median(per_transaction))
        # A transaction's own cost (BEGIN, COMMIT, the session, the pool) is what a
        # one-statement transaction costs beyond its statement.
        per_answer = (STATEMENTS_PER_ANSWER * statement
                      + COMMITS_PER_ANSWER * max(0.0, transaction - statement)) / 1000
        rows.append({"database": dialect, "path": path, "statement_us": statement,
                     "transaction_of_one_us": transaction,
                     "statement_vs_driver": statement / driver_statement,
                     "transaction_vs_driver": transaction / driver_transaction,
                     "answer_ms": per_answer})
    return rows


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", nargs="+",
                        default=["sqlite", "postgresql://postgres@127.0.0.1:5432"])
    parser.add_argument("--n", type=int, default=3000, help="statements a round, per way")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="where the figures go (- for stdout)",
                        default=str(ROOT / "bench" / "results" / "statements-latest.json"))
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for spec in args.database:
        with tempfile.TemporaryDirectory(prefix="bench-statements-") as tmp:
            async with fresh_database(spec, Path(tmp)) as url:
                dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
                rows += await measure(url, dialect, args.n, args.rounds)
    print(f"CPU of this process, medians of {args.rounds} rounds; an answer: "
          f"{STATEMENTS_PER_ANSWER} statements in {COMMITS_PER_ANSWER} transactions")
    print(table(["database", "path", "µs/statement", "µs/transaction of 1", "× driver",
                 "tx × driver", "ms/answer"],
                [[r["database"], r["path"], r["statement_us"], r["transaction_of_one_us"],
                  r["statement_vs_driver"], r["transaction_vs_driver"], r["answer_ms"]]
                 for r in rows]))
    output = json.dumps({"n": args.n, "rounds": args.rounds, "rows": rows}, indent=1)
    if args.json == "-":
        print(output)
    else:
        Path(args.json).write_text(output + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
